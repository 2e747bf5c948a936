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
    """Right work except the last step, bent to the user's (wrong) belief."""
    with truth_access():
        steps = list(task.truth.get(problem.id).steps)
    steps[-1] = steps[-1][:-1] + str(problem.belief)
    return render_response(steps)


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
