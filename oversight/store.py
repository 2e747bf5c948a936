"""Storage: runs, per-step metrics and every judgment, in SQLite or PostgreSQL via SQLModel.

SQLite (a file in the run directory) is the embedded default; `store.url=postgresql+psycopg://…`
puts many jobs or judges on one PostgreSQL with the same code. SQLite runs in WAL mode with a
busy timeout so parallel sweep jobs can share one file.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlmodel import Field, Session, SQLModel, create_engine, select

from oversight.errors import ConfigError


def _now() -> datetime:
    return datetime.now(UTC)


class Run(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = ""
    protocol: str
    judge: str
    seed: int
    status: str = "running"
    """running, finished or failed"""
    config: dict = Field(default_factory=dict, sa_column=Column(JSON))
    summary: dict | None = Field(default=None, sa_column=Column(JSON))
    output_dir: str = ""
    started_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None


class Metric(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    step: int
    name: str
    value: float | None


class Judgment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    step: int
    phase: str
    problem_id: str
    difficulty: int
    prompt: str
    response_a: str
    response_b: str
    judge: str
    """who answered: a pool member, a human, a model"""
    prob_a: float | None = None
    prefers_a: bool | None = None
    checks: int = 0
    seconds: float = 0.0
    failure: str | None = None
    """why the judge could not decide, or None"""


TABLES: tuple[type[SQLModel], ...] = (Run, Metric, Judgment)
"""the training store's own tables; other parts (the human study) pass theirs to make_engine"""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, tables: Iterable[type[SQLModel]] = TABLES) -> Engine:
    """An engine whose database is reachable and has `tables`, or a one-line ConfigError.

    Only the given tables are created (by default the store's own), so a caller with tables of
    its own passes them here instead of the store knowing about them.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    try:
        _create_tables(engine, list(tables))
    except OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise ConfigError(
            f"cannot open store {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from None
    return engine


def _create_tables(engine: Engine, tables: list[type[SQLModel]]) -> None:
    # Sweep jobs open one fresh store at the same moment: both may see a table missing and both
    # CREATE it; the loser's error only means the table exists now, so look again. On SQLite,
    # switching a fresh file to WAL, or upgrading the look's read to the CREATE's write after
    # another job wrote, fails at once with "database is locked" (no busy wait): try again too.
    for attempt in range(10):
        try:
            SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in tables])
            return
        except (OperationalError, ProgrammingError, IntegrityError) as e:
            again = isinstance(e, IntegrityError) or any(
                m in str(e) for m in ("already exists", "database is locked")
            )
            if attempt == 9 or not again:
                raise
            time.sleep(0.05 * (attempt + 1) * (1 + random.random()))


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


class Store:
    """The one code path that writes runs, metrics and judgments."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    def start_run(
        self, name: str, protocol: str, judge: str, seed: int, config: dict, output_dir: str
    ) -> int:
        with Session(self.engine) as s:
            run = Run(
                name=name,
                protocol=protocol,
                judge=judge,
                seed=seed,
                config=config,
                output_dir=output_dir,
            )
            s.add(run)
            s.commit()
            assert run.id is not None
            return run.id

    def log_metrics(self, run_id: int, step: int, metrics: dict[str, Any]) -> None:
        with Session(self.engine) as s:
            s.add_all(
                Metric(run_id=run_id, step=step, name=k, value=_finite(v))
                for k, v in metrics.items()
            )
            s.commit()

    def log_judgments(self, run_id: int, step: int, records: list[Any]) -> None:
        """Store `oversight.judges.JudgmentRecord`s (typed outcomes become columns)."""
        rows = []
        for r in records:
            c, o = r.item, r.outcome
            row = Judgment(
                run_id=run_id,
                step=step,
                phase=r.phase,
                problem_id=c.problem.id,
                difficulty=c.problem.difficulty,
                prompt=c.problem.prompt,
                response_a=c.a,
                response_b=c.b,
                judge=o.judge,
            )
            if hasattr(o, "prob_a"):
                row.prob_a, row.prefers_a, row.checks, row.seconds = (
                    o.prob_a,
                    o.prefers_a,
                    o.checks,
                    o.seconds,
                )
            else:
                row.failure = o.reason
            rows.append(row)
        with Session(self.engine) as s:
            s.add_all(rows)
            s.commit()

    def finish_run(self, run_id: int, status: str, summary: dict | None = None) -> None:
        with Session(self.engine) as s:
            run = s.get(Run, run_id)
            assert run is not None
            run.status, run.finished_at = status, _now()
            if summary is not None:
                run.summary = json.loads(json.dumps(summary, default=float))
            s.add(run)
            s.commit()

    def runs(self) -> list[Run]:
        with Session(self.engine) as s:
            return list(s.exec(select(Run)))

    def metrics(self, run_id: int) -> list[Metric]:
        with Session(self.engine) as s:
            return list(s.exec(select(Metric).where(Metric.run_id == run_id).order_by(Metric.step)))

    def judgments(self, run_id: int) -> list[Judgment]:
        with Session(self.engine) as s:
            return list(s.exec(select(Judgment).where(Judgment.run_id == run_id)))
