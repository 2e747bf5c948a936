"""The contract every protocol meets by existing: each config in conf/protocol/ (and the scripted
ones in tests/conf/protocol/) builds, runs end to end at the tiny size, writes the summary.json
contract, never names the truth, spends its judge's budget on training only, and survives
kill -9 with the same result."""

import importlib
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, select

from oversight.store import Judgment, make_engine
from tests.helpers import ROOT, TINY, run_train, subprocess_env
from tests.test_truth_wall import FORBIDDEN_NAMES, names_used

pytestmark = pytest.mark.slow

SCRIPTED = ROOT / "tests" / "conf"
CONFIGS = sorted((ROOT / "conf" / "protocol").glob("*.yaml")) + sorted(
    (SCRIPTED / "protocol").glob("*.yaml")
)
STEPS = 6
TIMING = {"wall_seconds", "tokens_per_second", "run_id", "store_url"}


def args(path: Path, cache_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        *TINY,
        f"hydra.searchpath=[file://{SCRIPTED}]",
        f"protocol={path.stem}",
        f"policy.cache_dir={cache_dir}",
        f"hydra.run.dir={out}",
        f"ppo.steps={STEPS}",
        "checkpoint_every=2",
        "eval.every=0",
        *extra,
    ]


def target_module(path: Path):
    target = yaml.safe_load(path.read_text()).get("_target_")
    if target is None:  # a schema-backed config: the class its schema builds
        from oversight.experiment.config import register
        from tests.helpers import composed

        register()
        target = composed(f"protocol={path.stem}", f"hydra.searchpath=[file://{SCRIPTED}]")[
            "protocol"
        ]["_target_"]
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def comparable(summary: dict) -> dict:
    """Everything but timing, where the run wrote (its store's path is in its config) and
    whether it built the base model."""
    out = {k: v for k, v in summary.items() if k not in TIMING}
    out["config"] = {k: v for k, v in summary["config"].items() if k != "store"}
    # whether this run found the base model cached or built it depends on what ran before it
    out["base_model"] = {k: v for k, v in summary["base_model"].items() if k != "cached"}
    out["role_cost"] = {
        name: {k: v for k, v in cost.items() if k != "seconds"}
        for name, cost in summary["role_cost"].items()
    }
    return out


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_protocol_contract(path, tmp_path, cache_dir):
    cls = target_module(path)
    used = names_used(Path(inspect.getsourcefile(cls)))
    assert not used & FORBIDDEN_NAMES, f"{cls.__name__} touches {used & FORBIDDEN_NAMES}"

    # end to end, uninterrupted
    out = tmp_path / "straight"
    proc = run_train(args(path, cache_dir, out), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for key in ("protocol", "judge", "seed", "config", "base", "final", "label_accuracy"):
        assert key in summary
    for phase in ("base", "final"):
        assert set(summary[phase]["gold_accuracy"]) == {"within", "beyond", "all"}
        assert "proxy_reward" in summary[phase]  # a number, or None without a proxy
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))

    # the judge's budget is spent on training only: every label it gave is a stored judgment,
    # and evaluation after the last step asked for none
    with Session(make_engine(f"sqlite:///{out}/store.db")) as s:
        # the judge's own: an AI feedback model's labels (judge "feedback:...") cost it nothing
        decided = [
            j
            for j in s.exec(select(Judgment))
            if j.failure is None and not j.judge.startswith("feedback:")
        ]
    assert summary["judge_cost"]["labels"] == len(decided)
    assert summary["judge_cost"]["labels"] == rows[-1]["judge_cost/labels"]

    # kill -9 in the middle of PPO, rerun the same command: it resumes and ends the same
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "oversight.train", *args(path, cache_dir, out)]
    env = subprocess_env(HYDRA_FULL_ERROR="0")
    child = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            os.kill(child.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    again = run_train(args(path, cache_dir, out), cwd=ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stderr + again.stdout
    resumed = json.loads((out / "summary.json").read_text())
    assert comparable(resumed) == comparable(summary)
