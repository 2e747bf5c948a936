"""Studies and their items: what a training run posts for people to judge.

Items are unique per (study, key), and a key is derived from the content, so posting is
idempotent: a restarted training run re-posts nothing and finds the verdicts already given.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from oversight.study.db import chunks, id_of, retry
from oversight.study.schema import DEFAULT_INSTRUCTIONS, UNLIMITED, Item, Study


@dataclass(frozen=True)
class NewItem:
    key: str
    payload: dict[str, Any]
    kind: str = "pairwise"
    meta: dict[str, Any] = field(default_factory=dict)
    gold_answer: str | None = None


def item_key(*parts: Any) -> str:
    """A deterministic key for an item made of `parts` (JSON-serialisable)."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:40]


def ensure_study(
    engine: Engine,
    name: str,
    overlap: int = 1,
    gold_rate: float = 0.0,
    time_limit_s: float | None = None,
    lease_s: float = 1800.0,
    instructions: str | None = None,
) -> int:
    """The study's id, creating it; its settings become the given ones (the last run's)."""
    if overlap < 1:
        raise ValueError(f"overlap must be at least 1, got {overlap}")
    if not 0.0 <= gold_rate <= 1.0:
        raise ValueError(f"gold_rate must lie in [0, 1], got {gold_rate}")
    if time_limit_s:
        # Past the window an answer only counts as a timeout, so an abandoned item can go back
        # to the pool soon after it rather than after the full lease.
        lease_s = min(lease_s, time_limit_s + 60.0)
    settings = {
        "overlap": overlap,
        "gold_rate": gold_rate,
        "time_limit_s": time_limit_s or None,
        "lease_s": lease_s,
        "instructions": instructions or DEFAULT_INSTRUCTIONS,
    }

    def tx() -> int:
        with Session(engine) as s:
            study = s.exec(select(Study).where(Study.name == name)).first()
            if study is None:
                study = Study(name=name, **settings)
            else:
                for k, v in settings.items():
                    setattr(study, k, v)
            s.add(study)
            try:
                s.commit()
            except IntegrityError:  # another run created it a moment ago
                s.rollback()
                return tx()
            return id_of(study)

    return retry(engine, tx)


def _insert_ignore(engine: Engine, rows: list[dict[str, Any]]) -> None:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(Item).on_conflict_do_nothing(index_elements=["study_id", "key"])
    with engine.begin() as c:
        c.execute(stmt, rows)


def post_items(engine: Engine, study_id: int, items: Sequence[NewItem]) -> list[int]:
    """Item ids for `items`, in order, inserting only those not posted before.

    Re-posting reopens items a timed-out run had closed, so a restart waits for them again.
    """
    with Session(engine) as s:
        study = s.get(Study, study_id)
        assert study is not None, f"no study {study_id}"
        overlap = study.overlap
    now = time.time()
    rows = [
        {
            "study_id": study_id,
            "key": it.key,
            "kind": it.kind,
            "payload": it.payload,
            "meta": it.meta,
            "is_gold": it.gold_answer is not None,
            "gold_answer": it.gold_answer,
            "overlap": UNLIMITED if it.gold_answer is not None else overlap,
            "n_active": 0,
            "closed": False,
            "resolution": None,
            "created_at": now,
        }
        for it in items
    ]
    rows = list({r["key"]: r for r in rows}.values())
    keys = [r["key"] for r in rows]
    for chunk in chunks(rows):
        retry(engine, lambda chunk=chunk: _insert_ignore(engine, list(chunk)))
    ids: dict[str, int] = {}

    def reopen() -> None:
        with Session(engine) as s:
            for chunk in chunks(keys):
                s.execute(
                    update(Item)
                    .where(Item.study_id == study_id, col(Item.key).in_(chunk), col(Item.closed))
                    .values(closed=False, resolution=None)
                )
                ids.update(
                    s.execute(
                        select(Item.key, Item.id).where(
                            Item.study_id == study_id, col(Item.key).in_(chunk)
                        )
                    ).all()
                )
            s.commit()

    retry(engine, reopen)
    return [ids[it.key] for it in items]


def close_items(engine: Engine, item_ids: Sequence[int], resolution: str) -> None:
    """Stop handing items out (a run gave up waiting); verdicts already given stay."""

    def tx() -> None:
        with Session(engine) as s:
            for chunk in chunks(list(item_ids)):
                s.execute(
                    update(Item)
                    .where(col(Item.id).in_(chunk))
                    .values(closed=True, resolution=resolution)
                )
            s.commit()

    retry(engine, tx)
