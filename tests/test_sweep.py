"""Sweeps: every preset composes and runs at the tiny size, the launchers are wired, and a real
tiny multirun runs jobs in parallel (the fork launcher), shares one base model and one store, and
is analysed end to end."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from oversight.store import Store
from tests import helpers
from tests.helpers import ROOT, subprocess_env

FailingRLHF = "tests.helpers.FailingRLHF"

PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


def composed(*overrides: str):
    return helpers.composed(*overrides, hydra=True)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_compose_full_and_tiny(preset: str) -> None:
    full = composed(f"experiment={preset}")
    tiny = composed(f"experiment={preset}", "experiment/size=tiny")
    for cfg in (full, tiny):
        params = cfg.hydra.sweeper.params
        assert "seed" in params and len(params) >= 2  # the preset's axis x seeds
        assert cfg.threads == 1  # parallel jobs must not oversubscribe the cores
        assert cfg.hydra.launcher._target_.endswith("ForkLauncher")  # -m default
        assert "${hydra:sweep.dir}" in OmegaConf.to_container(cfg.store)["url"]  # one store
        assert cfg.hydra.sweep.dir.startswith(f"multirun/{preset}/")
    assert full.hydra.sweeper.params.seed == "range(5)"
    assert (tiny.policy.sft_steps, tiny.ppo.steps, tiny.hydra.sweeper.params.seed) == (40, 2, "0,1")
    assert full.policy == composed().policy  # full = the main config's model
    assert tiny.protocol.n_comparisons < full.protocol.n_comparisons  # the protocol's own size


def test_presets_are_found_by_glob() -> None:
    assert {"judge_competence", "rater_pools", "overoptimization", "protocol_comparison"} <= set(
        PRESETS
    )


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_at_the_tiny_size(preset: str, tmp_path: Path, cache_dir: Path) -> None:
    """Each preset's whole tiny sweep (one seed), so that no preset can rot."""
    sweep = tmp_path / "sweep"
    res = train(
        f"experiment={preset}",
        "experiment/size=tiny",
        "seed=0",
        f"hydra.sweep.dir={sweep}",
        f"policy.cache_dir={cache_dir}",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (n_jobs,) = map(int, re.findall(r"Forking (\d+) jobs", res.stderr + res.stdout))
    assert n_jobs >= 2 and len(list(sweep.glob("*/summary.json"))) == n_jobs


def test_preset_axes() -> None:
    assert composed("experiment=judge_competence").hydra.sweeper.params.competence == "1,2,3,4,5"
    oo = composed("experiment=overoptimization")
    assert oo.eval.every > 0 and "ppo.kl_coef" in oo.hydra.sweeper.params
    pc = composed("experiment=protocol_comparison").hydra.sweeper.params
    assert (pc.protocol, pc.judge) == ("glob(*)", "oracle,simulated,pool")
    pools = composed("experiment=rater_pools").hydra.sweeper.params["judge/pool"].split(",")
    assert set(pools) == {p.stem for p in (ROOT / "conf" / "judge" / "pool").glob("*.yaml")}
    names = set()
    for pool in pools:
        judge = composed("experiment=rater_pools", f"judge/pool={pool}").judge
        assert judge._target_ == "oversight.judges.pool.RaterPool" and judge.members
        names.add(judge.name)
    assert len(names) == len(pools)  # the analysis labels settings by pool name
    # a user can still point a preset at PostgreSQL from the command line
    assert composed("experiment=judge_competence", "store=postgres").store.url.startswith(
        "postgresql"
    )


@pytest.mark.parametrize(
    ("size", "steps", "seeds", "budgets"),
    [
        ("full", 120, "range(5)", "128,512,2048"),
        ("small", 60, "range(3)", "128,512,2048"),  # the preset's own 60, not the size's 30
        ("tiny", 2, "0,1", "16,32,64"),
    ],
)
def test_overoptimization_presets(size: str, steps: int, seeds: str, budgets: str) -> None:
    """Gao et al.'s form: the oracle labels the proxy's pairs, the label budget and the KL
    coefficient are the axes; the biased family: the pool labels, the KL coefficient is swept."""
    oo = composed("experiment=overoptimization", f"experiment/size={size}")
    params = oo.hydra.sweeper.params
    assert oo.judge.name == "oracle" and oo.judge._target_.endswith(".Oracle")
    assert (oo.ppo.steps, params.seed, params["protocol.n_comparisons"]) == (steps, seeds, budgets)
    assert params["ppo.kl_coef"] == "0.0,0.02" and 0 < oo.eval.every <= 5
    biased = composed("experiment=overoptimization_biased", f"experiment/size={size}")
    assert biased.judge.name == "pool" and biased.judge._target_.endswith(".RaterPool")
    assert biased.ppo.steps == steps and biased.eval.every == oo.eval.every
    assert dict(biased.hydra.sweeper.params) == {"seed": seeds, "ppo.kl_coef": "0.0,0.02"}
    assert biased.hydra.sweep.dir.startswith("multirun/overoptimization_biased/")
    # a preset's own budget at a size is its alone: the others keep the size's steps
    other = composed("experiment=judge_competence", f"experiment/size={size}")
    assert other.ppo.steps == {"full": 60, "small": 30, "tiny": 2}[size]


@pytest.mark.parametrize(
    ("launcher", "plugin", "field"),
    [
        ("slurm", "hydra_submitit_launcher", "partition"),
        ("ray_cluster", "hydra_ray_launcher", "ray"),
    ],
)
def test_cluster_launcher_configs_compose(launcher: str, plugin: str, field: str) -> None:
    if importlib.util.find_spec(f"hydra_plugins.{plugin}") is None:
        pytest.skip(f"{plugin} is not installed (pip install -e '.[cluster]')")
    cfg = composed("experiment=judge_competence", f"hydra/launcher={launcher}")
    assert field in cfg.hydra.launcher


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oversight.train", "-m", *args],
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_tiny_multirun_end_to_end(tmp_path: Path) -> None:
    """Four tiny jobs, two at a time; two of them fail on purpose (a protocol that raises once
    its run has started), as real sweeps sometimes do. The analysis lists them and compares the
    rest; the jobs that ran together built the base model once."""
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    res = train(
        "experiment=judge_competence",
        "experiment/size=tiny",
        "competence=1,3",
        "seed=0",
        f"protocol._target_=protocols.rlhf.RLHF,{FailingRLHF}",
        f"hydra.sweep.dir={sweep}",
        f"policy.cache_dir={cache}",
        "hydra.launcher.n_jobs=2",
        cwd=tmp_path,
    )
    assert res.returncode != 0 and "a planned failure" in res.stderr  # Hydra re-raises it
    assert "Forking 4 jobs, 2 at a time" in res.stderr + res.stdout
    done = sorted(sweep.glob("*/summary.json"))
    assert len(done) == 2
    summaries = [json.loads(p.read_text()) for p in done]
    assert sorted(s["config"]["competence"] for s in summaries) == [1, 3]
    assert all(s["config"]["threads"] == 1 for s in summaries)
    # One base model for the whole sweep: jobs 0 and 1 started together; one trained it.
    built = [s["base_model"]["cached"] for s in summaries]
    assert len({s["base_model"]["key"] for s in summaries}) == 1
    assert built.count(False) <= 1 and len(list((cache / "base").glob("*.lock"))) == 1

    # every job wrote into the sweep's one SQLite store; two of them overlapped in time
    runs = Store(f"sqlite:///{sweep / 'store.db'}").runs()
    assert sorted(r.status for r in runs) == ["failed", "failed", "finished", "finished"]
    spans = sorted((r.started_at, r.finished_at) for r in runs)
    assert any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False))  # in parallel

    out = tmp_path / "analysis"
    ana = subprocess.run(
        [sys.executable, "-m", "oversight.analysis", str(sweep), "--out", str(out)],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ana.returncode == 0, ana.stderr
    with (out / "results.csv").open() as fh:
        rows = {r["setting"]: r for r in csv.DictReader(fh)}
    ok, failing = "protocol=RLHF", "protocol=FailingRLHF"  # the analysis names the class
    assert set(rows) == {f"competence={c}, {p}" for c in (1, 3) for p in (ok, failing)}
    assert rows[f"competence=1, {ok}"]["n_finished"] == "1"
    assert rows[f"competence=3, {failing}"]["n_failed"] == "1"
    report = (out / "report.md").read_text()
    assert report.count("| failed |") == 2
    for png in ("curves", "competence", "judge_cost"):
        assert (out / f"judge_competence_tiny_{png}.png").stat().st_size > 10_000


def test_a_job_that_exits_is_a_failed_job_not_a_hung_sweep(tmp_path: Path) -> None:
    """A bad store URL makes each job print one error line and sys.exit(2) before any work; the
    fork launcher reports both jobs failed and the sweep ends (a process pool would wait forever
    for the results of workers that exited)."""
    res = train(
        "experiment=judge_competence",
        "experiment/size=tiny",
        "competence=1,3",
        "seed=0",
        f"store.url=sqlite:///{tmp_path / 'missing' / 'store.db'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert res.returncode != 0
    assert res.stderr.count("error: cannot open store") == 2  # each job's one line
    assert "job #0 exited with status 2" in res.stderr  # Hydra re-raises the first failure


OPEN_STORE = """
import sys, time
from pathlib import Path
from oversight.store import Store
while not Path(sys.argv[2]).exists():
    time.sleep(0.001)
try:
    Store(sys.argv[1]).engine.dispose()
    print("ok")
except Exception as e:
    print(f"{type(e).__name__}: {e}")
"""


def test_first_open_of_a_shared_store_by_concurrent_jobs(tmp_path: Path) -> None:
    url, go = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "go"
    env = subprocess_env()
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_STORE, url, str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    time.sleep(4)  # all three have imported and wait at the same line
    go.touch()
    results = [p.communicate(timeout=60)[0].strip() for p in jobs]
    assert results == ["ok"] * 3
