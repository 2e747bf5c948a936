"""The ladder of judge accuracy (oversight/experiment/judge_ladder.py): with scripted debaters whose
wrong answers err past the judge's reach, debate finds what the judge alone cannot; every rung
decides the same pairs; the summary over seeds and its plot are written."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import TINY, composed, correct_response
from omegaconf import DictConfig, OmegaConf
from test_debate import ctx_for

from oversight.errors import ConfigError
from oversight.experiment import judge_ladder
from oversight.experiment.harness import Harness
from oversight.experiment.judge_ladder import OVERRIDES, Rung, ladder, rungs, strength, summarise
from oversight.experiment.run import Sampler, build
from oversight.judges import SimulatedRater
from oversight.ladder import parse
from oversight.models.base_model import base_model
from oversight.models.policy import PolicyConfig
from oversight.tasks import build_task
from oversight.tasks.arithmetic import render_response, render_turn
from protocols.debate import Debate

RUNGS = [
    "naive",
    "consultancy (assigned)",
    "consultancy (open)",
    "debate",
    "interactive debate",
    "oracle",
]


def test_summary_is_mean_and_sd_over_seeds():
    by_seed = [
        [Rung("naive", 0.5, 10, 2.0), Rung("debate", 0.7, 10, 3.0)],
        [Rung("naive", 0.7, 12, 4.0), Rung("debate", None, 0, 0.0)],
    ]
    naive, debate = summarise(by_seed)
    assert naive["rung"] == "naive" and naive["accuracy"] == pytest.approx(0.6)
    assert naive["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert naive["items"] == 11 and naive["checks_per_item"] == 3.0
    # a seed with no items of a rung counts nowhere in its accuracy
    assert debate["accuracy"] == pytest.approx(0.7) and debate["sd"] == 0.0


def late_error(task, problem) -> str:
    """Right work up to a wrong last step: past what a judge checking two steps reaches."""
    steps = task.steps(correct_response(task, problem))
    x, rest = steps[-1].split("=")
    return render_response([*steps[:-1], f"{x}={(int(rest) + 1) % 10}"])


def scripted(task, problems):
    """The policy of a scripted ladder: a right answer, then one wrong at its last step; an
    honest debater attacks that step, a liar calls the other side's first step wrong; a
    consultant vouches for the first step."""
    by_prompt = {p.prompt: p for p in problems}
    seen: set[str] = set()

    def generate(prompts: list[str]) -> list[str]:
        out = []
        for q in prompts:
            first, *lines = q.split("\n")
            p = by_prompt[first + "\n"]
            right = correct_response(task, p)
            if not lines[0]:  # the problem alone: answer it
                out.append(late_error(task, p) if q in seen else right)
                seen.add(q)
            elif len(lines) == 2:  # a consultant's answer and no turns yet
                out.append(render_turn(0, task.steps(lines[0])[0], vouch=True))
            else:  # a debater: own answer, the other's, the turns so far
                other = task.steps(lines[1])
                i = len(other) - 1 if lines[0] == right else 0
                out.append(render_turn(i, other[i]))
        return out

    return generate


def test_debate_climbs_above_the_naive_judge_where_its_checks_cannot_reach(task):
    problems = [p for p in task.sample(300, seed=4) if p.difficulty >= 4][:60]
    judge = SimulatedRater(name="rater", competence=2, agreement_bias=2.0)
    judge.attach(task)
    debate = Debate()
    debate.setup(ctx_for(task, judge, scripted(task, problems)))
    by = {r.name: r for r in rungs(debate, Harness(task, 2, 0, 0), problems)}
    assert {r.items for r in by.values()} == {60}  # every rung decides every pair
    assert by["debate"].accuracy == 1.0 and by["oracle"].accuracy == 1.0
    # deciding alone it never finds the error: the user's belief and coins decide
    assert by["naive"].accuracy < 0.8
    # an assigned consultant of the wrong answer vouches for a right step: accepted half the time
    assert by["consultancy (assigned)"].accuracy < 0.9


def tiny_ladder(cache_dir: Path) -> Callable[[int], DictConfig]:
    """A seed's config of a ladder small enough for a test: the tiny model, 2-3 steps, competence 1."""

    def cfg_for_seed(seed: int) -> DictConfig:
        return composed(
            *OVERRIDES,
            *TINY,
            "task.min_steps=2",
            "task.max_steps=3",
            "competence=1",
            f"policy.cache_dir={cache_dir}",
            f"seed={seed}",
        )

    return cfg_for_seed


def test_ladder_end_to_end(tmp_path: Path, cache_dir: Path):
    cfg_for_seed = tiny_ladder(cache_dir)
    summary = ladder(cfg_for_seed, [0, 1], 128, tmp_path / "out", device="cpu")
    assert [s["rung"] for s in summary] == RUNGS
    record = json.loads((tmp_path / "out" / "ladder.json").read_text())
    assert (tmp_path / "out" / "ladder.png").stat().st_size > 0
    for seed in record["by_seed"]:
        # the same answer pairs on every rung (the tiny model writes few sound answers: the
        # scripted test above is the one that checks what the rungs find)
        assert len({r["items"] for r in seed}) == 1
        by = {r["name"]: r for r in seed}
        # competence 1 checks at most one step of each answer, each way round
        assert by["naive"]["checks_per_item"] <= 4
        assert by["oracle"]["checks_per_item"] >= by["naive"]["checks_per_item"]
    assert record["setting"]["steps"] == "2-3" and record["setting"]["seeds"] == [0, 1]


def test_the_command_line_takes_overrides_anywhere():
    args = parse(["--seeds", "0", "3", "judge.noise=0", "--problems", "8", "protocol.rounds=3"])
    assert args.seeds == [0, 3] and args.problems == 8 and args.best_of is None
    assert args.overrides == ["judge.noise=0", "protocol.rounds=3"]
    assert parse(["--best-of", "1", "4", "judge.noise=0"]).best_of == [1, 4]
    with pytest.raises(SystemExit):
        parse(["--seeds", "zero"])


def test_strength_lines_follow_each_debate_rung_across_best_of(tmp_path: Path):
    def summary(n: int, debate: float) -> list[dict]:
        best = "" if n == 1 else f", best of {n}"
        return [
            {"rung": "naive", "accuracy": 0.7, "sd": 0.0},
            {"rung": f"debate{best}", "accuracy": debate, "sd": 0.02},
            {"rung": f"interactive debate{best}", "accuracy": debate + 0.01, "sd": 0.02},
            {"rung": "oracle", "accuracy": 1.0, "sd": 0.0},
        ]

    record = strength({4: summary(4, 0.9), 1: summary(1, 0.8)}, tmp_path / "strength.png")
    assert record["best_of"] == [1, 4]
    assert record["rungs"]["debate"] == [0.8, 0.9]
    assert record["rungs"]["interactive debate"] == pytest.approx([0.81, 0.91])
    assert record["rungs"]["naive"] == [0.7, 0.7]
    assert (tmp_path / "strength.png").stat().st_size > 0
    assert json.loads((tmp_path / "strength.json").read_text()) == record


def test_trained_debaters_argue_in_place_of_the_base_model(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    cfg_for_seed = tiny_ladder(cache_dir)
    # a "trained" policy: the arguing base model with other weights, saved as a run saves it
    cfg = cfg_for_seed(0)
    task_cfg = OmegaConf.to_container(cfg.task, resolve=True)
    debate = build(cfg.protocol, "protocol")
    policy = PolicyConfig(**cfg.policy)
    base, tok, _ = base_model(policy, build_task(task_cfg), task_cfg, "cpu", debate.alphabet)
    trained = copy.deepcopy(base)
    for p in trained.parameters():
        p.data.add_(torch.randn_like(p))
    saved = tmp_path / "run" / "policy"
    trained.save_pretrained(saved)
    tok.save_pretrained(saved)

    samplers: list[Sampler] = []  # per ladder: the debaters' sampler, then the answerer's

    class Spy(Sampler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            samplers.append(self)

    monkeypatch.setattr(judge_ladder, "Sampler", Spy)

    def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
        return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))

    ladder(cfg_for_seed, [0], 64, tmp_path / "base", device="cpu")
    argued, answered = samplers
    samplers.clear()
    ladder(cfg_for_seed, [0], 64, tmp_path / "trained", device="cpu", debaters=[saved])
    argued_t, answered_t = samplers
    assert same(argued.model, base)
    assert same(argued_t.model, trained)
    # the answers, and with them the pairs every rung decides, come from the same plain model
    assert same(answered_t.model, answered.model)
    record = json.loads((tmp_path / "trained" / "ladder.json").read_text())
    assert record["setting"]["debaters"] == [str(saved)]

    with pytest.raises(ConfigError, match="one per seed"):
        ladder(cfg_for_seed, [0, 1], 64, tmp_path / "x", device="cpu", debaters=[saved])
    with pytest.raises(ConfigError, match="not a saved policy"):
        ladder(cfg_for_seed, [0], 64, tmp_path / "x", device="cpu", debaters=[tmp_path])
