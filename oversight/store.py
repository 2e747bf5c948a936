"""Storage: runs, per-step metrics and every judgment, in SQLite or PostgreSQL via SQLModel.

SQLite (a file in the run directory) is the embedded default; `store.url=postgresql+psycopg://…`
puts many jobs or judges on one PostgreSQL with the same code. SQLite runs in WAL mode with a
busy timeout so parallel sweep jobs can share one file.
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, String, event, inspect, literal, update
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlmodel import Field, Session, SQLModel, create_engine, delete, select

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
    """running, finished, failed or interrupted (its process died while running)"""
    config: dict = Field(default_factory=dict, sa_column=Column(JSON))
    summary: dict | None = Field(default=None, sa_column=Column(JSON))
    output_dir: str = ""
    started_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None
    key: str | None = None
    """the experiment's identity (`oversight.experiment.checkpoint.run_key`): a sweep skips a job
    whose key has finished"""
    host: str | None = None
    pid: int | None = None
    """the process running it, on `host`: a store opened there marks it interrupted once dead"""


class Metric(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    step: int
    name: str
    value: float | None


class Judgment(SQLModel, table=True):
    """One judged item: its kind, its problem in columns, the rest of it in `payload`."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    step: int
    phase: str
    kind: str = Field(
        default="pair", sa_column=Column(String, nullable=False, server_default="pair")
    )
    """pair, argued, debate or subquestion (`oversight.judges.JudgeItem`); rows written before
    there were kinds are pairs, hence the server default"""
    problem_id: str
    difficulty: int
    belief: int | None = None
    """the user's stated belief: with the three columns around it, the whole problem"""
    prompt: str
    response_a: str
    """answer a; the answer, for a one-answer kind"""
    response_b: str
    """answer b; "" for a one-answer kind"""
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON))
    """the item's fields but the problem (`JudgeItem.payload()`): answers, critiques, turns"""
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
    its own passes them here instead of the store knowing about them. A database made before a
    table gained a column gets the column (`_add_missing_columns`).
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


_jitter = random.Random()
"""the retries' own stream: the global one is the run's, seeded"""


def _create_tables(engine: Engine, tables: list[type[SQLModel]]) -> None:
    # Sweep jobs open one fresh store at the same moment: both may see a table missing and both
    # CREATE it; the loser's error only means the table exists now, so look again. On SQLite,
    # switching a fresh file to WAL, or upgrading the look's read to the CREATE's write after
    # another job wrote, fails at once with "database is locked" (no busy wait): try again too.
    # Adding a missing column races the same way.
    for attempt in range(10):
        try:
            SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in tables])
            _add_missing_columns(engine, tables)
            return
        except (OperationalError, ProgrammingError, IntegrityError) as e:
            again = isinstance(e, IntegrityError) or any(
                m in str(e) for m in ("already exists", "database is locked", "duplicate column")
            )
            if attempt == 9 or not again:
                raise
            time.sleep(0.05 * (attempt + 1) * (1 + _jitter.random()))


def _add_missing_columns(engine: Engine, tables: list[type[SQLModel]]) -> None:
    """Columns a table gained after its database was made: `create_all` never alters a table."""
    dialect = engine.dialect
    inspector = inspect(engine)
    for t in tables:
        table = t.__table__
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for col in table.columns:
            if col.name in present:
                continue
            exists = " IF NOT EXISTS" if dialect.name == "postgresql" else ""
            table_name = dialect.identifier_preparer.format_table(table)
            with engine.begin() as c:
                c.exec_driver_sql(
                    f"ALTER TABLE {table_name} ADD COLUMN{exists} {_column_ddl(col, dialect)}"
                )


def _column_ddl(col: Column, dialect: Dialect) -> str:
    """`name TYPE [DEFAULT x [NOT NULL]]`: old rows get the default, or NULL where there is none
    (NOT NULL then cannot hold, so such a column is added nullable)."""
    default = dialect.ddl_compiler(dialect, None).get_column_default_string(col)
    scalar = col.default is not None and col.default.is_scalar and col.default.arg is not None
    if default is None and scalar:
        bound = literal(col.default.arg, col.type)
        default = str(bound.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    spec = f"{dialect.identifier_preparer.format_column(col)} {col.type.compile(dialect=dialect)}"
    if default is None:
        return spec
    return f"{spec} DEFAULT {default}" + ("" if col.nullable else " NOT NULL")


HOST = socket.gethostname()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


class Store:
    """The one code path that writes runs, metrics and judgments."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._mark_interrupted()

    def _mark_interrupted(self) -> None:
        """Runs of this host left "running" by a process that is gone (killed, crashed)."""
        with Session(self.engine) as s:
            rows = s.exec(select(Run).where(Run.status == "running", Run.host == HOST)).all()
            for r in rows:
                if r.pid is not None and not _alive(r.pid):
                    # only if still that process's row: a resume may have just taken it over
                    s.exec(
                        update(Run)
                        .where(Run.id == r.id, Run.pid == r.pid, Run.status == "running")
                        .values(status="interrupted")
                    )
            s.commit()

    def start_run(
        self,
        name: str,
        protocol: str,
        judge: str,
        seed: int,
        config: dict,
        output_dir: str,
        key: str | None = None,
    ) -> int:
        with Session(self.engine) as s:
            run = Run(
                name=name,
                protocol=protocol,
                judge=judge,
                seed=seed,
                config=config,
                output_dir=output_dir,
                key=key,
                host=HOST,
                pid=os.getpid(),
            )
            s.add(run)
            s.commit()
            assert run.id is not None
            return run.id

    def resume_run(self, run_id: int, step: int) -> None:
        """Run `run_id` again from its checkpoint of `step`: this process runs it now, and what it
        logged after that step is dropped (the steps run again)."""
        with Session(self.engine) as s:
            s.exec(
                update(Run)
                .where(Run.id == run_id)
                .values(status="running", finished_at=None, host=HOST, pid=os.getpid())
            )
            for table in (Metric, Judgment):
                s.exec(delete(table).where(table.run_id == run_id, table.step > step))
            s.commit()

    def log_metrics(self, run_id: int, step: int, metrics: dict[str, Any]) -> None:
        with Session(self.engine) as s:
            s.add_all(
                Metric(run_id=run_id, step=step, name=k, value=_finite(v))
                for k, v in metrics.items()
            )
            s.commit()

    def log_judgments(self, run_id: int, step: int, records: list[Any]) -> None:
        """Store `oversight.judges.JudgmentRecord`s of any kind (typed outcomes become columns;
        `oversight.judges.item_from_payload` rebuilds the item from a row)."""
        rows = []
        for r in records:
            c, o = r.item, r.outcome
            a, b = (c.answer, "") if hasattr(c, "answer") else (c.a, c.b)
            row = Judgment(
                run_id=run_id,
                step=step,
                phase=r.phase,
                kind=c.kind,
                problem_id=c.problem.id,
                difficulty=c.problem.difficulty,
                belief=c.problem.belief,
                prompt=c.problem.prompt,
                response_a=a,
                response_b=b,
                payload=c.payload(),
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

    def run(self, run_id: int) -> Run | None:
        with Session(self.engine) as s:
            return s.get(Run, run_id)

    def finished_run(self, key: str) -> Run | None:
        """The latest finished run of experiment `key` that has its summary, if any."""
        with Session(self.engine) as s:
            done = select(Run).where(Run.key == key, Run.status == "finished")
            # a summary of None is JSON null, not SQL NULL: looked at here, not in the query
            return next((r for r in s.exec(done.order_by(Run.id.desc())) if r.summary), None)

    def runs(self) -> list[Run]:
        with Session(self.engine) as s:
            return list(s.exec(select(Run)))

    def metrics(self, run_id: int) -> list[Metric]:
        with Session(self.engine) as s:
            return list(s.exec(select(Metric).where(Metric.run_id == run_id).order_by(Metric.step)))

    def judgments(self, run_id: int) -> list[Judgment]:
        with Session(self.engine) as s:
            return list(s.exec(select(Judgment).where(Judgment.run_id == run_id)))
