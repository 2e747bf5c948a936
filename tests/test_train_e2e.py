"""The real entry point, end to end on a tiny budget, and its one-line errors for bad input."""

import json

import pytest
from sqlmodel import Session, select

from oversight.store import Judgment, Metric, Run, make_engine
from tests.helpers import ROOT, TINY, run_train

pytestmark = pytest.mark.slow


def test_train_smoke_writes_summary_metrics_and_store(tmp_path, cache_dir):
    out = tmp_path / "run"
    proc = run_train(
        [*TINY, f"policy.cache_dir={cache_dir}", f"hydra.run.dir={out}", "judge=pool"], cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "protocol",
        "judge",
        "seed",
        "config",
        "base",
        "final",
        "label_accuracy",
        "judge_cost",
        "kl",
        "wall_seconds",
        "tokens_per_second",
    ):
        assert key in summary
    for phase in ("base", "final"):
        assert set(summary[phase]["gold_accuracy"]) == {"within", "beyond", "all"}
        assert set(summary[phase]["sycophancy_rate"]) == {"within", "beyond", "all"}
        assert isinstance(summary[phase]["proxy_reward"], float)
    assert summary["protocol"] == "rlhf" and summary["judge"] == "pool"
    assert set(summary["label_accuracy"]) == {"within", "beyond"}
    assert summary["judge_cost"]["labels"] == 32 and summary["judge_cost"]["checks_per_label"] > 0
    assert summary["config"]["ppo"]["steps"] == 2

    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    for k in (
        "kl",
        "entropy",
        "clipfrac",
        "approx_kl",
        "explained_variance",
        "tokens_per_second",
        "train/gold_accuracy/all",
    ):
        assert k in lines[0]
    assert abs(lines[0]["ratio_first_minibatch"] - 1.0) < 1e-5

    with Session(make_engine(f"sqlite:///{out}/store.db")) as s:
        (run,) = s.exec(select(Run)).all()
        assert run.status == "finished" and run.summary["final"] == json.loads(
            json.dumps(summary["final"])
        )
        assert len(s.exec(select(Judgment)).all()) == 32
        assert s.exec(select(Metric).where(Metric.name == "kl")).all()
    assert "base vs final" in proc.stderr + proc.stdout

    # A second run reuses the cached base model.
    again = run_train(
        [
            *TINY,
            f"policy.cache_dir={cache_dir}",
            f"hydra.run.dir={tmp_path / 'again'}",
            "judge=oracle",
            "ppo.steps=1",
        ],
        cwd=ROOT,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert (
        json.loads((tmp_path / "again" / "summary.json").read_text())["base_model"]["cached"]
        is True
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("judge=nonexistent", "Could not find 'judge/nonexistent'"),
        ("store.url=postgresql+psycopg://nobody@127.0.0.1:1/none", "error: cannot open store"),
        (
            "policy.path=/nonexistent/model",
            "error: policy.path='/nonexistent/model': must be an existing directory",
        ),
        ("ppo.steps=many", "Value 'many' of type 'str' could not be converted to Integer"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, cache_dir, override, expected):
    proc = run_train(
        [*TINY, f"policy.cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}", override], cwd=ROOT
    )
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
