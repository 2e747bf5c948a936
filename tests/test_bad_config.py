"""Bad configuration gets one clear line, before any work is spent (issue 18): the checks
themselves (`oversight.checks`), `validate` over composed configs (every default and preset
passes), and the real entry point on one bad value per config group, single runs and a sweep."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import pytest

from oversight.checks import (
    Count,
    Fraction,
    Rules,
    at_least,
    declared,
    each,
    ensure,
    existing_dir,
    one_of,
    problems,
    required,
    rule,
    within,
)
from oversight.errors import ConfigError
from oversight.experiment.config import _BUILDS, register, validate
from oversight.judges import RaterPool, SimulatedRater
from oversight.tasks import ArithmeticConfig
from tests import helpers
from tests.helpers import ROOT, TINY, composed, run_train

# ---- the checks, pure ----------------------------------------------------------------------


def test_each_check_says_what_is_allowed():
    assert list(Count.__metadata__[0](0)) == [("", 0, "must be a whole number ≥ 1")]
    assert list(Count.__metadata__[0](2)) == []
    assert list(Count.__metadata__[0](1.5)) != []  # a count is whole
    assert list(Count.__metadata__[0](True)) != []  # and not a bool
    assert list(at_least(0)(-1.0)) == [("", -1.0, "must be ≥ 0")]
    assert list(within(0, 0.5)(0.7)) == [("", 0.7, "must be in [0, 0.5]")]
    assert list(within(0, 0.5)("lots")) != []  # a string in an untyped node, not a crash
    assert list(one_of("a", "b")("c")) == [("", "c", "must be one of 'a', 'b'")]
    assert list(existing_dir()(str(ROOT))) == [] and list(existing_dir()("/nonexistent")) != []
    assert list(at_least(0)(None)) == []  # None: a knob left off
    assert list(required("a judge")(None)) == [("", None, "must be set: a judge")]


@dataclass
class _Knobs:
    lo: Count = 1
    hi: Count = 3
    p: Fraction = 0.5
    mode: Annotated[str, one_of("x", "y")] = "x"
    items: Annotated[list, each("w", at_least(0))] = dataclasses.field(default_factory=list)

    rules: ClassVar[Rules] = (rule("lo", "must be ≤ {hi}", lambda c: c.lo <= c.hi),)


@dataclass
class _Outer:
    inner: _Knobs = dataclasses.field(default_factory=_Knobs)
    n: Count = 1


def test_problems_name_the_key_the_value_and_what_is_allowed():
    assert list(problems(_Knobs, {"lo": 1, "hi": 3, "p": 0.5, "mode": "x"})) == []
    assert list(problems(_Knobs, {"p": 1.5, "mode": "z"}, "k.")) == [
        "k.p=1.5: must be in [0, 1]",
        "k.mode='z': must be one of 'x', 'y'",
    ]
    assert list(problems(_Knobs, {"lo": 5, "hi": 3})) == ["lo=5: must be ≤ hi=3"]
    assert list(problems(_Knobs, {"items": [{"w": 1}, {"w": -2}]})) == [
        "items[1].w=-2: must be ≥ 0"
    ]
    # values already out of range are reported once, not again by the rule between them
    assert list(problems(_Knobs, {"lo": 0, "hi": -1})) == [
        "lo=0: must be a whole number ≥ 1",
        "hi=-1: must be a whole number ≥ 1",
    ]
    # a field holding a settings dataclass is checked in turn, under its key
    assert list(problems(_Outer, {"inner": {"lo": 0}, "n": 1}, "o.")) == [
        "o.inner.lo=0: must be a whole number ≥ 1"
    ]
    assert list(problems(_Knobs, _Knobs(lo=4, hi=2))) == ["lo=4: must be ≤ hi=2"]  # an object


def test_constructors_hold_code_to_the_same_checks():
    with pytest.raises(ConfigError, match=r"^noise=0.7: must be in \[0, 0.5\]$"):
        SimulatedRater(name="x", noise=0.7)
    with pytest.raises(ConfigError, match=r"^min_steps=5: must be ≤ max_steps=3$"):
        ArithmeticConfig(min_steps=5, max_steps=3)
    with pytest.raises(ConfigError, match=r"^members\[\*\]\.weight=\[0.0\]: must include one > 0$"):
        RaterPool("p", [{"rater": SimulatedRater(name="a"), "weight": 0.0}])
    with pytest.raises(ConfigError, match=r"^members\[0\]\.weight=-1: must be ≥ 0$"):
        RaterPool("p", [{"rater": SimulatedRater(name="a"), "weight": -1}])
    ensure(_Knobs())  # the defaults pass
    assert issubclass(ConfigError, ValueError)


def test_every_registered_part_declares_its_checks():
    """New judges and protocols are checked by construction: `register` records the class each
    schema builds, and its hints must resolve for `declared` to read them."""
    register()
    assert {"oversight.judges.simulated.SimulatedRater", "protocols.rlhf.RLHF"} <= set(_BUILDS)
    for cls in _BUILDS.values():
        declared(cls)
    assert "noise" in declared(SimulatedRater).checks
    assert "members" in declared(RaterPool).checks  # read off its own __init__


# ---- validate over composed configs ------------------------------------------------------


def _axis_values(key: str, spec: str) -> list[str]:
    if spec.startswith("glob("):  # protocol: glob(*)
        return sorted(p.stem for p in (ROOT / "conf" / key).glob("*.yaml"))
    if spec.startswith("range("):
        return []  # seeds: any whole number
    return spec.split(",")


@pytest.mark.parametrize(
    "preset", [None, *sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))]
)
def test_defaults_and_every_preset_value_pass(preset):
    """The default config, and each preset at the tiny size with each value of its sweep axes
    (what its jobs will run), are valid: validation never stops a sweep the repo ships."""
    base = [f"experiment={preset}"] if preset else []
    base += ["experiment/size=tiny"]
    cfg = helpers.composed(*base, hydra=True)
    validate(cfg)
    validate(composed())  # full size; `${hydra:...}` in the store URL is never resolved
    for key, spec in cfg.hydra.sweeper.params.items():
        for value in _axis_values(key, str(spec)):
            validate(composed(*base, f"{key}={value}"))


def test_validate_reports_a_copied_value_once():
    """The pool's raters take `competence: ${competence}`: one bad value, one problem."""
    with pytest.raises(ConfigError) as e:
        validate(composed("competence=-1"))
    assert str(e.value) == "competence=-1: must be a whole number ≥ 0"
    with pytest.raises(ConfigError, match=r"^ppo.steps=-3: .*; ppo.kl_coef=-1.0: must be ≥ 0$"):
        validate(composed("ppo.steps=-3", "ppo.kl_coef=-1"))


# ---- the real entry point --------------------------------------------------------------------

CASES = [
    # the cases
    ("ppo.steps=-3", "ppo.steps=-3: must be a whole number ≥ 0"),
    ("ppo.kl_coef=-1", "ppo.kl_coef=-1.0: must be ≥ 0"),
    ("task.max_steps=0", "task.max_steps=0: must be a whole number ≥ 1"),
    ("task.min_steps=5 task.max_steps=3", "task.min_steps=5: must be ≤ task.max_steps=3"),
    # one per remaining group
    ("judge.members.0.rater.noise=0.7", "judge.members[0].rater.noise=0.7: must be in [0, 0.5]"),
    ("protocol.n_comparisons=0", "protocol.n_comparisons=0: must be a whole number ≥ 1"),
    ("policy.temperature=0", "policy.temperature=0.0: must be > 0"),
    ("eval.n_problems=0", "eval.n_problems=0: must be a whole number ≥ 1"),
    ("competence=-1", "competence=-1: must be a whole number ≥ 0"),
]


@pytest.mark.parametrize(("overrides", "line"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_value_is_one_line_and_nothing_is_done(overrides, line, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(
        [*TINY, f"policy.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}"]
        + overrides.split(),
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert _error_lines(proc.stderr) == [f"error: {line}"]
    assert "Traceback" not in proc.stderr
    _assert_nothing_done(run_dir, tmp_path)


def test_a_sweep_with_one_bad_value_stops_before_any_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train(
        ["-m", *TINY, f"policy.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}"]
        + ["ppo.steps=2,-3", "seed=0"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = _error_lines(proc.stderr)
    assert line.startswith("error: job 1 (") and "ppo.steps=-3" in line.split(")")[0]
    assert line.endswith("): ppo.steps=-3: must be a whole number ≥ 0")
    assert "Traceback" not in proc.stderr and "Forking" not in proc.stderr + proc.stdout
    assert [p.name for p in sweep.iterdir()] == ["multirun.yaml"]  # Hydra's record only
    _assert_nothing_done(sweep, tmp_path)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _assert_nothing_done(out: Path, tmp_path: Path) -> None:
    assert not list(out.rglob("summary.json")) and not list(out.rglob("metrics.jsonl"))
    assert not list(out.rglob("store.db"))  # the store was never opened
    assert not (tmp_path / "cache").exists()  # no base model built
