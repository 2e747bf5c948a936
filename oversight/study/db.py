"""Opening the study's store, and the transaction plumbing every study operation shares."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from oversight.store import Run, make_engine
from oversight.study.schema import TABLES

T = TypeVar("T")


def connect(url: str) -> Engine:
    """An engine on the store at `url` with the study's tables, and the training runs' table
    (the admin's progress page names the runs posting into each study)."""
    return make_engine(url, tables=(Run, *TABLES))


def retry(engine: Engine, fn: Callable[[], T], attempts: int = 40) -> T:
    """Run a transaction, retrying when SQLite refuses a write because another one is in flight.

    SQLite gives a reader that wants to become a writer "database is locked" at once, without
    waiting for the busy timeout, whenever another writer committed after its snapshot; the
    only remedy is to start over. PostgreSQL's row locks make this unnecessary.
    """
    for i in range(attempts):
        try:
            return fn()
        except OperationalError as e:
            if engine.dialect.name != "sqlite" or "locked" not in str(e) or i == attempts - 1:
                raise
            time.sleep(0.01 * (1 + i) * random.random())
    raise AssertionError("unreachable")


def chunks(xs: Sequence[T], n: int = 500) -> Iterable[Sequence[T]]:
    """`xs` in slices of at most `n`, so an IN (...) list stays within the database's limits."""
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


def id_of(row: _Row) -> int:
    """The primary key of a row that is in the database (the tables type it as optional)."""
    assert row.id is not None, f"{type(row).__name__} has no id yet"
    return row.id
