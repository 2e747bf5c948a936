"""Code the tests share that is not a fixture: paths, the tiny run's overrides, answers built
from the truth (tests may read it; protocols may not), the entry point in a subprocess, and
stand-ins for people at the judging UI. Fixtures live in `conftest.py`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from oversight.experiment.config import register
from oversight.tasks import ArithmeticTask
from oversight.tasks.arithmetic import render_response
from oversight.tasks.base import truth_access
from protocols.rlhf import RLHF

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get(
    "OVERSIGHT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def composed(*overrides: str, hydra: bool = False) -> DictConfig:
    """The main config as `python -m oversight.train OVERRIDES` composes it (`hydra`: with the
    `hydra` node, for the sweeper and launcher settings)."""
    register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child process that imports this checkout."""
    return {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT), **extra}


def correct_response(task: ArithmeticTask, problem) -> str:
    """The right worked answer (tests may read the truth; protocols may not)."""
    with truth_access():
        return render_response(list(task.truth.get(problem.id).steps))


def sycophantic_response(task: ArithmeticTask, problem) -> str:
    """Right work, but it opens by agreeing and states the user's (wrong) belief."""
    with truth_access():
        steps = list(task.truth.get(problem.id).steps)
    return render_response(steps, answer=problem.belief, agree=True)


def padded_response(task: ArithmeticTask, problem) -> str:
    """Right work plus a pointless extra step: longer, and wrong at its last step."""
    with truth_access():
        steps = list(task.truth.get(problem.id).steps)
    return render_response([*steps, "1+1=2"])


def wrong_first_step(task: ArithmeticTask, problem) -> str:
    with truth_access():
        steps = list(task.truth.get(problem.id).steps)
    steps[0] = steps[0][:-1] + str((int(steps[0][-1]) + 1) % 10)
    return render_response(steps)


# The tiny size preset makes `python -m oversight.train` finish in seconds. Tests pass their own
# `policy.cache_dir` so they never touch the user's cache.
TINY = ["experiment/size=tiny", "threads=1"]


def run_train(args: list[str], cwd: Path, timeout: int = 600):
    """Run the real entry point in a subprocess, as a user would."""
    env = subprocess_env(HYDRA_FULL_ERROR="0")
    return subprocess.run(
        [sys.executable, "-m", "oversight.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class FailingRLHF(RLHF):
    """RLHF that fails once its run has started, as real sweeps' jobs sometimes do: a bad value
    cannot stand in for that, since the config checks stop it before any job starts."""

    def setup(self, ctx):
        raise RuntimeError("a planned failure")


class JudgeBot:
    """Threads' stand-in for people at the judging UI: they answer through the same calls.

    `choose(view)` returns "A", "B" (as displayed), "accept" or "reject" (a one-answer item) or
    None to skip. Every answer is logged as (judge name, item id, displayed choice, text of the
    chosen answer, or of the one answer accepted or rejected).
    """

    def __init__(self, url: str, names: list[str], choose=None, limit: int | None = None):
        # imported here, not at the top: every test loads this file, few need the study
        from oversight import study

        self.study = study
        self.engine = study.connect(url)
        self.ids = {n: judge_id(self.engine, n) for n in names}
        self.choose = choose or (lambda view: "A")
        self.limit = limit
        self.log: list[tuple[str, int, str, str]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> JudgeBot:
        self._thread.start()
        return self

    def _run(self) -> None:
        from sqlmodel import Session

        h = self.study
        try:
            while not self._stop.is_set():
                busy = False
                for name, jid in self.ids.items():
                    if self.limit is not None and len(self.log) >= self.limit:
                        return
                    view = h.next_assignment(self.engine, jid)
                    if view is None:
                        continue
                    busy = True
                    choice = self.choose(view)
                    if choice is None:
                        h.skip(self.engine, jid, view.assignment_id)
                        continue
                    h.submit(self.engine, jid, view.assignment_id, choice)
                    with Session(self.engine) as s:
                        item_id = s.get(h.Assignment, view.assignment_id).item_id
                    text = view.payload.get(choice.lower(), view.payload.get("answer"))
                    self.log.append((name, item_id, choice, text))
                if not busy:
                    self._stop.wait(0.05)
        except BaseException as e:  # surfaced by stop()
            self.errors.append(e)

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while len(self.log) < n:
            assert not self.errors, self.errors
            assert time.monotonic() < end, f"judges answered {len(self.log)} of {n}"
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.engine.dispose()
        assert not self.errors, self.errors


def judge_id(engine, name: str) -> int:
    """A new token for judge `name` (created if new), signed in: the judge's id."""
    from oversight import study

    ident = study.authenticate(engine, study.issue_token(engine, name))
    assert ident is not None
    return ident.judge_id
