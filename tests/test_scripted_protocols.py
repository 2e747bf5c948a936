"""The engine, proved by the scripted protocols of tests/scripted.py through the real entry
point: a two-turn episode raises its reward, an SFT phase raises its targets' likelihood."""

import json
from statistics import fmean

import pytest

from oversight.models.policy import load_pretrained
from oversight.models.sft import response_logprob
from oversight.tasks import ArithmeticConfig, ArithmeticTask
from tests.helpers import ROOT, TINY, run_train
from tests.scripted import TARGET

pytestmark = pytest.mark.slow
SCRIPTED = f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]"


def test_two_turn_episodes_raise_their_reward(tmp_path, cache_dir):
    out = tmp_path / "run"
    proc = run_train(
        [
            *TINY,
            SCRIPTED,
            "protocol=two_turn",
            f"policy.cache_dir={cache_dir}",
            f"hydra.run.dir={out}",
            "ppo.steps=20",
            "ppo.lr=1e-3",
            "ppo.epochs=2",
            "eval.every=0",
        ],
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # 16 episodes, two turns each, a quarter of the second turns not trained
    assert all(r["samples"] == 32 for r in rows)
    first = fmean(r["episode_reward"] for r in rows[:3])
    last = fmean(r["episode_reward"] for r in rows[-3:])
    assert last > first + 1.0, (first, last)


def test_an_sft_phase_raises_its_targets_likelihood(tmp_path, cache_dir):
    out = tmp_path / "run"
    proc = run_train(
        [
            *TINY,
            SCRIPTED,
            "protocol=sft_warmup",
            f"policy.cache_dir={cache_dir}",
            f"hydra.run.dir={out}",
            "eval.every=0",
        ],
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert "pretrained" in summary  # the policy before the phase, evaluated
    base, tok = load_pretrained(cache_dir / "base" / summary["base_model"]["key"])
    tuned, _ = load_pretrained(out / "policy")
    held_out = ArithmeticTask(ArithmeticConfig()).sample(64, seed=1, split="held-out")
    pairs = [(p.prompt, TARGET) for p in held_out]
    before = response_logprob(base, tok, pairs, "cpu").mean().item()
    after = response_logprob(tuned, tok, pairs, "cpu").mean().item()
    assert after > before + 5.0, (before, after)
