"""Runs survive interruption (`oversight.experiment.checkpoint`): the real entry point, killed
with SIGKILL during PPO or during the reward model's training, and the same command run again,
ends with the metrics of a run never killed; a sweep run again skips the job that finished; the
store says "interrupted" for a run whose process died, and gains the columns that says it with."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy

from oversight.store import Run, Store
from tests.helpers import ROOT, TINY, subprocess_env

# Ten short PPO steps, a checkpoint every three, and reward-model refreshes at steps 4 and 8: a
# resume from step 3 or 6 has the refreshed reward model, its records and the judge's draws to
# get right.
CONFIG = [
    *TINY,
    "ppo.steps=10",
    "checkpoint_every=3",
    "protocol.refresh_every=4",
    "protocol.refresh_comparisons=8",
]
TIMING = ("wall_seconds", "tokens_per_second", "seconds")
"""what may differ between a resumed run and one never stopped"""


class Runs:
    """The real entry point on CONFIG, in subprocesses. Base models come from the session's
    cache; the run registry (`$OVERSIGHT_CACHE/runs`) is this session's own, so no entry left by
    an earlier, aborted session is resumed here."""

    def __init__(self, cache_dir: Path, registry: Path) -> None:
        self.cache_dir = cache_dir
        self.env = subprocess_env(HYDRA_FULL_ERROR="0", OVERSIGHT_CACHE=str(registry))

    def command(self, *argv: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "oversight.train",
            *argv,
            f"policy.cache_dir={self.cache_dir}",
        ]

    def run(self, *argv: str) -> str:
        """Run `python -m oversight.train ARGV` to its end; returns what it logged."""
        proc = subprocess.run(
            self.command(*argv), cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    def train(self, out: Path) -> str:
        return self.run(*CONFIG, f"hydra.run.dir={out}")

    def kill_when(self, out: Path, ready, timeout: float = 300.0) -> None:
        """Start a run into `out` and SIGKILL it as soon as `ready(out)` holds."""
        log = (out.parent / f"{out.name}.log").open("w")
        cmd = self.command(*CONFIG, f"hydra.run.dir={out}")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        end = time.monotonic() + timeout
        while not ready(out):
            assert proc.poll() is None, f"the run ended before the kill: {log.name}"
            assert time.monotonic() < end, f"nothing to kill on: {log.name}"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL


@pytest.fixture
def runs(tmp_path_factory, cache_dir) -> Runs:
    return Runs(cache_dir, tmp_path_factory.getbasetemp() / "oversight-registry")


def steps_logged(out: Path) -> int:
    path = out / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def run_started(out: Path) -> bool:
    """The run's row is in its store: the base model is loaded and the protocol's setup began."""
    try:
        with sqlite3.connect(f"file:{out / 'store.db'}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM run").fetchone()[0] > 0
    except sqlite3.Error:  # no file or no table yet
        return False


def status(out: Path) -> str:
    (run,) = Store(f"sqlite:///{out}/store.db").runs()
    return run.status


def results(out: Path) -> tuple[dict, list[dict]]:
    """The summary and the per-step metrics without what is timing or names this run's paths."""
    summary = json.loads((out / "summary.json").read_text())
    for k in (*TIMING, "run_id", "store_url"):
        summary.pop(k, None)
    summary["config"].pop("store")
    summary["base_model"].pop("cached")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return summary, [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def stored(out: Path) -> tuple[list, int]:
    """Every stored metric (step, name, value) and the number of stored judgments."""
    store = Store(f"sqlite:///{out}/store.db")
    (run,) = store.runs()
    metrics = sorted(
        (m.step, m.name, m.value) for m in store.metrics(run.id) if not m.name.endswith(TIMING)
    )
    return metrics, len(store.judgments(run.id))


_REFERENCE: dict[Path, Path] = {}


@pytest.fixture
def reference(runs, tmp_path_factory) -> Path:
    """The run never killed, made once for the tests here."""
    if runs.cache_dir not in _REFERENCE:
        out = tmp_path_factory.mktemp("reference") / "run"
        runs.train(out)
        _REFERENCE[runs.cache_dir] = out
    return _REFERENCE[runs.cache_dir]


@pytest.mark.slow
def test_a_run_killed_during_ppo_resumes_from_its_checkpoint(tmp_path, runs, reference):
    first, again = tmp_path / "first", tmp_path / "again"
    runs.kill_when(first, lambda out: steps_logged(out) >= 4)
    assert (first / "checkpoint" / "state.pt").exists()
    assert status(first) == "interrupted"

    logged = runs.train(again)  # the same command; Hydra gives it a new output dir
    assert f"resuming {first} from step " in logged
    assert not (again / "summary.json").exists()  # it carried on in the first run's dir,
    assert not (again / "store.db").exists()  # and its store
    assert status(first) == "finished"
    assert not (first / "checkpoint").exists()
    assert results(first) == results(reference)
    assert stored(first) == stored(reference)


@pytest.mark.slow
def test_a_run_killed_during_its_setup_runs_it_again(tmp_path, runs, reference):
    first, again = tmp_path / "first", tmp_path / "again"
    runs.kill_when(first, run_started)
    assert not (first / "checkpoint" / "state.pt").exists()  # killed before step 0's checkpoint
    assert status(first) == "interrupted"

    logged = runs.train(again)
    assert "resuming" not in logged
    assert results(again) == results(reference)


@pytest.mark.slow
def test_a_sweep_run_again_skips_its_finished_job(tmp_path, runs):
    sweep = tmp_path / "sweep"
    cmd = ["-m", *TINY, "seed=0", "store=sweep_sqlite", f"hydra.sweep.dir={sweep}"]
    runs.run(*cmd)
    summary = json.loads((sweep / "0" / "summary.json").read_text())

    logged = runs.run(*cmd)
    assert f"skipping: finished as run {summary['run_id']} in {sweep / '0'}" in logged
    (run,) = Store(f"sqlite:///{sweep}/store.db").runs()
    assert run.status == "finished"


NEW = ("key", "host", "pid")
"""the run table's columns that databases made before them lack"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_url")


def test_a_store_made_before_the_new_columns_gets_them(store_url):
    before = sqlalchemy.Table(
        "run",
        sqlalchemy.MetaData(),
        *(c._copy() for c in Run.__table__.columns if c.name not in NEW),
    )
    old = sqlalchemy.create_engine(store_url)
    before.create(old)
    with old.begin() as c:
        c.execute(before.insert().values(name="old", protocol="rlhf", judge="pool", seed=0))
    old.dispose()
    store = Store(store_url)
    (run,) = store.runs()
    assert (run.name, run.status, run.key, run.pid) == ("old", "running", None, None)
    new = store.start_run("new", "rlhf", "pool", 0, {}, "/y", key="k")
    store.finish_run(new, "finished", {"final": 1})
    assert store.finished_run("k").id == new and store.finished_run("other") is None
    Store(store_url).engine.dispose()  # opening it again finds every column there
    store.engine.dispose()


def test_a_run_whose_process_died_reads_interrupted(store_url):
    store = Store(store_url)
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    alive = store.start_run("alive", "rlhf", "pool", 0, {}, "/a")
    gone = store.start_run("gone", "rlhf", "pool", 0, {}, "/g")
    with store.engine.begin() as c:  # as if the dead process had started it
        c.exec_driver_sql(f"UPDATE run SET pid = {dead.pid} WHERE id = {gone}")
    again = Store(store_url)
    assert again.run(alive).status == "running" and again.run(gone).status == "interrupted"
    again.resume_run(gone, 0)  # a resume takes it over
    assert Store(store_url).run(gone).status == "running"
    for s in (store, again):
        s.engine.dispose()
