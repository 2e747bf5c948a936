"""Fixtures only: a task with problems, a random generator, the session's base-model cache, a fresh
PostgreSQL database, judge bots. Shared code that is not a fixture is in `helpers.py`."""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import pytest

from oversight.tasks import ArithmeticConfig, ArithmeticTask
from tests.helpers import PG_URL, JudgeBot

os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture
def task() -> ArithmeticTask:
    return ArithmeticTask(
        ArithmeticConfig(min_steps=1, max_steps=6, belief_rate=1.0, belief_right_rate=0.0)
    )


@pytest.fixture
def rng() -> random.Random:
    return random.Random(0)


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
