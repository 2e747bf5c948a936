"""Shared fixtures: a task with problems, judges attached to it, a tiny base model, a store."""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import pytest

from oversight.tasks import ArithmeticConfig, ArithmeticTask
from oversight.tasks.arithmetic import render_response
from oversight.tasks.base import truth_access

os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get(
    "OVERSIGHT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def task() -> ArithmeticTask:
    return ArithmeticTask(
        ArithmeticConfig(min_steps=1, max_steps=6, belief_rate=1.0, belief_right_rate=0.0)
    )


@pytest.fixture
def rng() -> random.Random:
    return random.Random(0)


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


@pytest.fixture
def cache_dir(tmp_path_factory) -> Path:
    """One base-model cache for the whole session, so the tiny base model is trained once."""
    return tmp_path_factory.getbasetemp().parent / "oversight-cache"


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database on the running server, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    admin = sqlalchemy.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"oversight_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f"CREATE DATABASE {name}")
    except sqlalchemy.exc.OperationalError as e:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {e}")
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


# Overrides that make `python -m oversight.train` finish in seconds: a tiny base model, a few
# PPO steps. Tests pass their own `policy.cache_dir` so they never touch the user's cache.
TINY = [
    "policy.n_embd=32",
    "policy.n_layer=1",
    "policy.sft_steps=40",
    "policy.sft_examples=2000",
    "policy.sft_batch_size=32",
    "ppo.steps=2",
    "ppo.batch_size=16",
    "ppo.minibatch_size=8",
    "ppo.epochs=1",
    "protocol.n_comparisons=32",
    "eval.n_problems=48",
    "threads=1",
]


def run_train(args: list[str], cwd: Path, timeout: int = 600):
    """Run the real entry point in a subprocess, as a user would."""
    import subprocess
    import sys

    env = dict(os.environ, TQDM_DISABLE="1", HYDRA_FULL_ERROR="0")
    return subprocess.run(
        [sys.executable, "-m", "oversight.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class JudgeBot:
    """Threads' stand-in for people at the judging UI: they answer through the same calls.

    `choose(view)` returns "A", "B" (as displayed) or None to skip. Every answer is logged as
    (judge name, item id, displayed choice, text of the chosen answer).
    """

    def __init__(self, url: str, names: list[str], choose=None, limit: int | None = None):
        import threading

        from oversight import human

        self.human = human
        self.engine = human.connect(url)
        self.ids = {
            n: human.authenticate(self.engine, human.issue_token(self.engine, n)).judge_id
            for n in names
        }
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

        h = self.human
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
                    self.log.append((name, item_id, choice, view.payload[choice.lower()]))
                if not busy:
                    self._stop.wait(0.05)
        except BaseException as e:  # surfaced by stop()
            self.errors.append(e)

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        import time

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


@pytest.fixture
def judge_bots():
    """Start `JudgeBot`s with `judge_bots(url, names, choose=..., limit=...)`; stopped at teardown."""
    bots: list[JudgeBot] = []

    def start(url: str, names: list[str], choose=None, limit: int | None = None) -> JudgeBot:
        bot = JudgeBot(url, names, choose, limit).start()
        bots.append(bot)
        return bot

    yield start
    for b in bots:
        b.stop()
