"""The human study: judges, their access tokens, items, assignments and verdicts, in the store.

One module holds every table and every operation on them, so the Streamlit UI (`ui/`), the
training-side `HumanJudge` and the admin tools share a single definition of what a verdict is.

Correctness under many judges at once rests on the database, not on the app:
- an item's free slots are an integer on its row, taken by one conditional UPDATE
  (`n_active < overlap`), so two judges racing for the last slot cannot both win;
- (item, judge) is unique on assignments, so nobody ever gets the same item twice;
- a verdict is unique per assignment and is written in the same transaction that moves the
  assignment out of "pending", so a double click stores one verdict, never two;
- items are unique per (study, key), so a restarted training run re-posts nothing.

Assignment is pull-based and fair: a judge holds one item at a time (no hoarding), items go out
oldest study first and least-covered first, an item shown and abandoned returns to the pool
after the study's lease, and a skipped item goes to someone else, never back to the skipper.

Judges never see ground truth: `ItemView`, the only thing handed to the judge page, carries no
gold flag and no gold answer. Times are Unix seconds (floats), which compare and subtract the
same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import secrets
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from typing import Any, TypeVar

from sqlalchemy import JSON, Column, UniqueConstraint, func, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Field, Session, SQLModel, select

T = TypeVar("T")

PENDING, DONE, SKIPPED, EXPIRED = "pending", "done", "skipped", "expired"
UNLIMITED = 1_000_000
"""overlap of gold items: every judge may get each one once"""
TIME_GRACE_S = 3.0
"""slack on the per-item time limit for page reloads and network round trips"""
TOKEN_PREFIX = "ovs_"
DEFAULT_INSTRUCTIONS = (
    "Read the question, then both answers. Pick the answer that is more likely to be correct. "
    "If you cannot tell, give your best guess and say so with the confidence buttons, "
    "or skip the item."
)


# ---- tables --------------------------------------------------------------------------------


class Study(SQLModel, table=True):
    """A batch of items with one judging policy; a training run posts into one study."""

    __tablename__ = "human_study"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    overlap: int = 1
    """judges per item"""
    gold_rate: float = 0.0
    """chance that a judge's next item is a gold (attention-check) item"""
    time_limit_s: float | None = None
    """per-item evaluation window; None: unlimited"""
    lease_s: float = 1800.0
    """an item shown but not answered for this long goes back to the pool"""
    instructions: str = DEFAULT_INSTRUCTIONS
    created_at: float = Field(default_factory=time.time)


class JudgeAccount(SQLModel, table=True):
    __tablename__ = "human_judge"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    is_admin: bool = False
    created_at: float = Field(default_factory=time.time)


class AccessToken(SQLModel, table=True):
    """Only the SHA-256 of a token is stored; the token itself is shown once, when issued."""

    __tablename__ = "human_token"
    id: int | None = Field(default=None, primary_key=True)
    judge_id: int = Field(foreign_key="human_judge.id", index=True)
    token_hash: str = Field(unique=True, index=True)
    hint: str = ""
    """the token's last characters, so an admin can tell tokens apart"""
    created_at: float = Field(default_factory=time.time)
    revoked_at: float | None = None


class Item(SQLModel, table=True):
    __tablename__ = "human_item"
    __table_args__ = (UniqueConstraint("study_id", "key", name="uq_human_item_study_key"),)
    id: int | None = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="human_study.id", index=True)
    key: str
    """deterministic id from the content, which makes posting idempotent"""
    kind: str = "pairwise"
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON))
    """what the judge sees (pairwise: prompt, a, b)"""
    meta: dict = Field(default_factory=dict, sa_column=Column(JSON))
    """what the judge does not see (problem id, difficulty, ...)"""
    is_gold: bool = Field(default=False, index=True)
    gold_answer: str | None = None
    """"a" or "b" for gold items; never leaves the server towards a judge"""
    overlap: int = 1
    n_active: int = 0
    """assignments that are pending or done: the slots taken"""
    closed: bool = Field(default=False, index=True)
    resolution: str | None = None
    """why an item was closed before it was complete (timeout, fallback:<judge>)"""
    created_at: float = Field(default_factory=time.time)


class Assignment(SQLModel, table=True):
    __tablename__ = "human_assignment"
    __table_args__ = (
        UniqueConstraint("item_id", "judge_id", name="uq_human_assignment_item_judge"),
    )
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="human_item.id", index=True)
    judge_id: int = Field(foreign_key="human_judge.id", index=True)
    study_id: int = Field(foreign_key="human_study.id", index=True)
    is_gold: bool = False
    swapped: bool = False
    """the item's b was shown as "A" to this judge"""
    status: str = Field(default=PENDING, index=True)
    assigned_at: float = Field(default_factory=time.time)
    """when the item was first shown: time on item counts from here"""
    finished_at: float | None = None


class HumanVerdict(SQLModel, table=True):
    __tablename__ = "human_verdict"
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="human_assignment.id", unique=True)
    item_id: int = Field(foreign_key="human_item.id", index=True)
    judge_id: int = Field(foreign_key="human_judge.id", index=True)
    study_id: int = Field(foreign_key="human_study.id", index=True)
    choice: str | None = None
    """"a" or "b" in the item's own orientation; None when the time ran out"""
    confidence: float | None = None
    """in [0.5, 1]; None when the judge gave none"""
    prob_a: float | None = None
    seconds: float = 0.0
    timed_out: bool = False
    is_gold: bool = False
    gold_correct: bool | None = None
    created_at: float = Field(default_factory=time.time)


# ---- plumbing ------------------------------------------------------------------------------


def connect(url: str) -> Engine:
    """An engine on the store at `url` with every table (the training store's too)."""
    from oversight.store import make_engine  # store imports this module for its tables

    return make_engine(url)


def _retry(engine: Engine, fn: Callable[[], T], attempts: int = 40) -> T:
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


def _chunks(xs: Sequence[T], n: int = 500) -> Iterable[Sequence[T]]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


def hash_token(token: str) -> str:
    # Tokens carry 192 random bits, so a fast unsalted hash is enough: there is nothing to
    # brute-force, and a lookup by hash keeps sign-in one indexed query.
    return hashlib.sha256(token.strip().encode()).hexdigest()


def item_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:40]


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


# ---- judges and tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    judge_id: int
    name: str
    is_admin: bool


def issue_token(engine: Engine, name: str, admin: bool = False) -> str:
    """A new token for judge `name` (created if new). The plain token is returned only here."""
    name = name.strip()
    if not name:
        raise ValueError("a judge needs a name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)

    def tx() -> str:
        with Session(engine) as s:
            judge = s.exec(select(JudgeAccount).where(JudgeAccount.name == name)).first()
            if judge is None:
                judge = JudgeAccount(name=name, is_admin=admin)
                s.add(judge)
                s.flush()
            elif admin and not judge.is_admin:
                judge.is_admin = True
                s.add(judge)
            s.add(AccessToken(judge_id=judge.id, token_hash=hash_token(token), hint=token[-4:]))
            s.commit()
            return token

    return _retry(engine, tx)


def revoke(engine: Engine, name: str) -> int:
    """Revoke every active token of judge `name`; returns how many. Their work is kept."""

    def tx() -> int:
        with Session(engine) as s:
            judge = s.exec(select(JudgeAccount).where(JudgeAccount.name == name)).first()
            if judge is None:
                return 0
            n = s.execute(
                update(AccessToken)
                .where(AccessToken.judge_id == judge.id, AccessToken.revoked_at.is_(None))  # type: ignore[union-attr]
                .values(revoked_at=time.time())
            ).rowcount
            s.commit()
            return n

    return _retry(engine, tx)


def authenticate(engine: Engine, token: str) -> Identity | None:
    """The judge a token belongs to, or None for an unknown or revoked token."""
    if not token or not token.strip():
        return None
    with Session(engine) as s:
        row = s.exec(
            select(JudgeAccount)
            .join(AccessToken, AccessToken.judge_id == JudgeAccount.id)  # type: ignore[arg-type]
            .where(AccessToken.token_hash == hash_token(token))
            .where(AccessToken.revoked_at.is_(None))  # type: ignore[union-attr]
        ).first()
        return None if row is None else Identity(row.id, row.name, row.is_admin)  # type: ignore[arg-type]


def accounts(engine: Engine) -> list[dict[str, Any]]:
    """Every judge with the number of active tokens (for the admin's token page)."""
    with Session(engine) as s:
        active = dict(
            s.execute(
                select(AccessToken.judge_id, func.count())
                .where(AccessToken.revoked_at.is_(None))  # type: ignore[union-attr]
                .group_by(AccessToken.judge_id)
            ).all()
        )
        return [
            {
                "judge": j.name,
                "role": "admin" if j.is_admin else "judge",
                "active_tokens": active.get(j.id, 0),
                "created": iso(j.created_at),
            }
            for j in s.exec(select(JudgeAccount).order_by(JudgeAccount.id))
        ]


# ---- studies and items ---------------------------------------------------------------------


@dataclass(frozen=True)
class NewItem:
    key: str
    payload: dict[str, Any]
    kind: str = "pairwise"
    meta: dict[str, Any] = field(default_factory=dict)
    gold_answer: str | None = None


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
            return study.id  # type: ignore[return-value]

    return _retry(engine, tx)


def _insert_ignore(engine: Engine, rows: list[dict[str, Any]]) -> None:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(Item.__table__).on_conflict_do_nothing(index_elements=["study_id", "key"])  # type: ignore[attr-defined]
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
    for chunk in _chunks(rows):
        _retry(engine, lambda chunk=chunk: _insert_ignore(engine, list(chunk)))
    ids: dict[str, int] = {}

    def reopen() -> None:
        with Session(engine) as s:
            for chunk in _chunks(keys):
                s.execute(
                    update(Item)
                    .where(Item.study_id == study_id, Item.key.in_(chunk), Item.closed)  # type: ignore[attr-defined]
                    .values(closed=False, resolution=None)
                )
                ids.update(
                    s.execute(
                        select(Item.key, Item.id).where(
                            Item.study_id == study_id,
                            Item.key.in_(chunk),  # type: ignore[attr-defined]
                        )
                    ).all()
                )
            s.commit()

    _retry(engine, reopen)
    return [ids[it.key] for it in items]


def close_items(engine: Engine, item_ids: Sequence[int], resolution: str) -> None:
    """Stop handing items out (a run gave up waiting); verdicts already given stay."""

    def tx() -> None:
        with Session(engine) as s:
            for chunk in _chunks(list(item_ids)):
                s.execute(
                    update(Item)
                    .where(Item.id.in_(chunk))  # type: ignore[union-attr]
                    .values(closed=True, resolution=resolution)
                )
            s.commit()

    _retry(engine, tx)


# ---- the judge's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class ItemView:
    """An item as one judge sees it: in that judge's display order, with nothing hidden in it."""

    assignment_id: int
    kind: str
    payload: dict[str, Any]
    """pairwise: prompt, a (shown as "A"), b (shown as "B")"""
    instructions: str
    time_limit_s: float | None
    shown_at: float

    @property
    def deadline(self) -> float | None:
        return None if self.time_limit_s is None else self.shown_at + self.time_limit_s


def _displayed(payload: dict[str, Any], swapped: bool) -> dict[str, Any]:
    """Swap every a/b-keyed field (a, b, a_critique, b_critique, ...) for this judge."""
    if not swapped:
        return dict(payload)
    out = {}
    for k, v in payload.items():
        if k in ("a", "b"):
            k = "b" if k == "a" else "a"
        elif k.startswith(("a_", "b_")):
            k = ("b_" if k[0] == "a" else "a_") + k[2:]
        out[k] = v
    return out


def _view(s: Session, a: Assignment) -> ItemView:
    item = s.get(Item, a.item_id)
    study = s.get(Study, a.study_id)
    assert item is not None and study is not None
    return ItemView(
        assignment_id=a.id,  # type: ignore[arg-type]
        kind=item.kind,
        payload=_displayed(item.payload, a.swapped),
        instructions=study.instructions,
        time_limit_s=study.time_limit_s,
        shown_at=a.assigned_at,
    )


def _expire_leases(engine: Engine, now: float) -> None:
    """Give back slots of items shown long ago and never answered (a judge who walked away)."""
    with Session(engine) as s:
        stale = s.execute(
            select(Assignment.id, Assignment.item_id)
            .join(Study, Study.id == Assignment.study_id)  # type: ignore[arg-type]
            .where(Assignment.status == PENDING, Assignment.assigned_at < now - Study.lease_s)
            .limit(100)
        ).all()
    for aid, iid in stale:

        def tx(aid: int = aid, iid: int = iid) -> None:
            with Session(engine) as s:
                n = s.execute(
                    update(Assignment)
                    .where(Assignment.id == aid, Assignment.status == PENDING)
                    .values(status=EXPIRED, finished_at=now)
                ).rowcount
                if n:
                    s.execute(update(Item).where(Item.id == iid).values(n_active=Item.n_active - 1))
                s.commit()

        _retry(engine, tx)


def _claim(engine: Engine, judge_id: int, now: float) -> ItemView | None | bool:
    """Try to take one item for the judge: its view, None when there is no work, False to retry."""
    with Session(engine) as s:
        mine = select(Assignment.item_id).where(Assignment.judge_id == judge_id)
        open_items = select(Item).where(
            Item.closed == False,  # noqa: E712  SQL, not Python
            Item.id.not_in(mine),  # type: ignore[union-attr]
        )
        # Oldest study first, then oldest item, and among those the least-covered: a training
        # run waits for its batch as a whole, so finishing batches in order is what frees it.
        regular = s.exec(
            open_items.where(Item.is_gold == False, Item.n_active < Item.overlap)  # noqa: E712
            .order_by(Item.study_id, Item.n_active, Item.id)
            .limit(20)
        ).all()
        if not regular:
            return None  # gold items only ride along with real work
        study = s.get(Study, regular[0].study_id)
        assert study is not None
        candidates = list(regular)
        if study.gold_rate > 0:
            n_mine = s.execute(
                select(func.count()).where(
                    Assignment.judge_id == judge_id, Assignment.study_id == study.id
                )
            ).scalar_one()
            # Seeded by judge and position: reproducible, but judges cannot predict it.
            draw = random.Random(f"gold:{judge_id}:{study.id}:{n_mine}")
            if draw.random() < study.gold_rate:
                gold = s.exec(
                    open_items.where(Item.is_gold == True, Item.study_id == study.id).order_by(  # noqa: E712
                        Item.id
                    )
                ).all()
                if gold:
                    candidates.insert(0, draw.choice(gold))
        for item in candidates:
            took = s.execute(
                update(Item)
                .where(Item.id == item.id, Item.n_active < Item.overlap, Item.closed == False)  # noqa: E712
                .values(n_active=Item.n_active + 1)
            ).rowcount
            if took != 1:
                continue
            a = Assignment(
                item_id=item.id,  # type: ignore[arg-type]
                judge_id=judge_id,
                study_id=item.study_id,
                is_gold=item.is_gold,
                swapped=random.Random(f"swap:{item.id}:{judge_id}").random() < 0.5,
                assigned_at=now,
            )
            s.add(a)
            try:
                s.commit()
            except IntegrityError:  # the same judge in two tabs took it a moment ago
                s.rollback()
                return False
            return _view(s, a)
        s.rollback()
        return False  # every candidate filled up under us; look again


def next_assignment(engine: Engine, judge_id: int, now: float | None = None) -> ItemView | None:
    """The judge's current item: the one already shown and not answered, else a new one."""
    now = time.time() if now is None else now
    with Session(engine) as s:
        a = s.exec(
            select(Assignment)
            .where(Assignment.judge_id == judge_id, Assignment.status == PENDING)
            .order_by(Assignment.id)  # type: ignore[arg-type]
        ).first()
        if a is not None:
            return _view(s, a)
    _expire_leases(engine, now)
    for _ in range(50):
        got = _retry(engine, lambda: _claim(engine, judge_id, now))
        if got is not False:
            return got  # type: ignore[return-value]
    return None


class AssignmentGone(Exception):
    """The item was answered, skipped, or handed to someone else after its lease ran out."""


@dataclass(frozen=True)
class Recorded:
    verdict_id: int
    seconds: float
    timed_out: bool


CONFIDENCE_LEVELS = {"Guessing": 0.6, "Fairly sure": 0.8, "Certain": 1.0}


def submit(
    engine: Engine,
    judge_id: int,
    assignment_id: int,
    choice: str | None,
    confidence: float | None = None,
    now: float | None = None,
) -> Recorded:
    """Store the judge's verdict on an assignment, exactly once.

    `choice` is what the judge clicked, "A" or "B" in their display order; None records that
    the time ran out. A verdict that arrives after the study's time limit is a timeout too:
    the server's clock decides, not the browser's.
    """
    now = time.time() if now is None else now
    if choice is not None and choice not in ("A", "B"):
        raise ValueError(f"choice must be 'A', 'B' or None, got {choice!r}")
    if confidence is not None and not 0.5 <= confidence <= 1.0:
        raise ValueError(f"confidence must lie in [0.5, 1], got {confidence}")

    def tx() -> Recorded:
        with Session(engine) as s:
            a = s.get(Assignment, assignment_id)
            if a is None or a.judge_id != judge_id:
                raise AssignmentGone("this item is not assigned to you")
            if a.status != PENDING:
                raise AssignmentGone(f"this item is already {a.status}")
            item, study = s.get(Item, a.item_id), s.get(Study, a.study_id)
            assert item is not None and study is not None
            seconds = max(0.0, now - a.assigned_at)
            late = study.time_limit_s is not None and seconds > study.time_limit_s + TIME_GRACE_S
            timed_out = choice is None or late
            canon = None
            if not timed_out:
                canon = "ab"[(choice == "B") != a.swapped]
            moved = s.execute(
                update(Assignment)
                .where(Assignment.id == assignment_id, Assignment.status == PENDING)
                .values(status=DONE, finished_at=now)
            ).rowcount
            if moved != 1:
                s.rollback()
                raise AssignmentGone("this item was answered a moment ago")
            conf = confidence if canon is not None else None
            p = None if canon is None else (conf or 1.0)
            v = HumanVerdict(
                assignment_id=assignment_id,
                item_id=item.id,  # type: ignore[arg-type]
                judge_id=judge_id,
                study_id=study.id,  # type: ignore[arg-type]
                choice=canon,
                confidence=conf,
                prob_a=None if p is None else round(p if canon == "a" else 1.0 - p, 6),
                seconds=seconds,
                timed_out=timed_out,
                is_gold=item.is_gold,
                gold_correct=(canon == item.gold_answer) if item.is_gold else None,
                created_at=now,
            )
            s.add(v)
            s.commit()
            return Recorded(v.id, seconds, timed_out)  # type: ignore[arg-type]

    return _retry(engine, tx)


def skip(engine: Engine, judge_id: int, assignment_id: int, now: float | None = None) -> None:
    """The judge passes on an item; its slot goes to another judge, never back to this one."""
    now = time.time() if now is None else now

    def tx() -> None:
        with Session(engine) as s:
            a = s.get(Assignment, assignment_id)
            if a is None or a.judge_id != judge_id:
                raise AssignmentGone("this item is not assigned to you")
            moved = s.execute(
                update(Assignment)
                .where(Assignment.id == assignment_id, Assignment.status == PENDING)
                .values(status=SKIPPED, finished_at=now)
            ).rowcount
            if moved != 1:
                s.rollback()
                raise AssignmentGone(f"this item is already {a.status}")
            s.execute(update(Item).where(Item.id == a.item_id).values(n_active=Item.n_active - 1))
            s.commit()

    _retry(engine, tx)


@dataclass(frozen=True)
class Progress:
    answered: int
    skipped: int
    waiting: int
    """regular items this judge could still be given now"""


def progress(engine: Engine, judge_id: int) -> Progress:
    with Session(engine) as s:
        by_status = dict(
            s.execute(
                select(Assignment.status, func.count())
                .where(Assignment.judge_id == judge_id)
                .group_by(Assignment.status)
            ).all()
        )
        mine = select(Assignment.item_id).where(Assignment.judge_id == judge_id)
        waiting = s.execute(
            select(func.count()).where(
                Item.closed == False,  # noqa: E712
                Item.is_gold == False,  # noqa: E712
                Item.n_active < Item.overlap,
                Item.id.not_in(mine),  # type: ignore[union-attr]
            )
        ).scalar_one()
    return Progress(by_status.get(DONE, 0), by_status.get(SKIPPED, 0), waiting)


# ---- the training side ---------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictInfo:
    judge: str
    choice: str | None
    prob_a: float | None
    seconds: float
    timed_out: bool


def done_counts(engine: Engine, item_ids: Sequence[int]) -> dict[int, int]:
    """Verdicts received per item (timeouts included: they spent their slot)."""
    out: dict[int, int] = {}
    with Session(engine) as s:
        for chunk in _chunks(list(dict.fromkeys(item_ids))):
            out.update(
                s.execute(
                    select(HumanVerdict.item_id, func.count())
                    .where(HumanVerdict.item_id.in_(chunk))  # type: ignore[attr-defined]
                    .group_by(HumanVerdict.item_id)
                ).all()
            )
    return out


def verdicts_for(engine: Engine, item_ids: Sequence[int]) -> dict[int, list[VerdictInfo]]:
    out: dict[int, list[VerdictInfo]] = defaultdict(list)
    with Session(engine) as s:
        for chunk in _chunks(list(dict.fromkeys(item_ids))):
            rows = s.execute(
                select(HumanVerdict, JudgeAccount.name)
                .join(JudgeAccount, JudgeAccount.id == HumanVerdict.judge_id)  # type: ignore[arg-type]
                .where(HumanVerdict.item_id.in_(chunk))  # type: ignore[attr-defined]
                .order_by(HumanVerdict.id)  # type: ignore[arg-type]
            ).all()
            for v, name in rows:
                out[v.item_id].append(VerdictInfo(name, v.choice, v.prob_a, v.seconds, v.timed_out))
    return dict(out)


# ---- the admin's side ----------------------------------------------------------------------


def study_progress(engine: Engine) -> list[dict[str, Any]]:
    """Per study: items, verdicts received and needed, and the training runs posting into it."""
    from oversight.store import Run

    with Session(engine) as s:
        studies = list(s.exec(select(Study).order_by(Study.id)))
        items = s.execute(
            select(Item.study_id, Item.id, Item.overlap, Item.closed).where(Item.is_gold == False)  # noqa: E712
        ).all()
        done = dict(
            s.execute(
                select(HumanVerdict.item_id, func.count())
                .where(HumanVerdict.is_gold == False)  # noqa: E712
                .group_by(HumanVerdict.item_id)
            ).all()
        )
        gold = dict(
            s.execute(
                select(HumanVerdict.study_id, func.count())
                .where(HumanVerdict.is_gold == True)  # noqa: E712
                .group_by(HumanVerdict.study_id)
            ).all()
        )
        pending = dict(
            s.execute(
                select(Assignment.study_id, func.count())
                .where(Assignment.status == PENDING)
                .group_by(Assignment.study_id)
            ).all()
        )
        runs: dict[str, list[str]] = defaultdict(list)
        for r in s.exec(select(Run).order_by(Run.id)):  # type: ignore[arg-type]
            judge_cfg = (r.config or {}).get("judge") or {}
            if isinstance(judge_cfg, dict) and judge_cfg.get("study"):
                runs[judge_cfg["study"]].append(f"#{r.id} {r.status}")
    out = []
    for st in studies:
        mine = [row for row in items if row.study_id == st.id]
        needed = sum(row.overlap for row in mine)
        got = sum(min(done.get(row.id, 0), row.overlap) for row in mine)
        out.append(
            {
                "study": st.name,
                "runs": ", ".join(runs.get(st.name, [])),
                "items": len(mine),
                "complete_items": sum(done.get(row.id, 0) >= row.overlap for row in mine),
                "closed_items": sum(bool(row.closed) for row in mine),
                "verdicts": got,
                "verdicts_needed": needed,
                "progress": got / needed if needed else 1.0,
                "in_progress": pending.get(st.id, 0),
                "gold_verdicts": gold.get(st.id, 0),
                "overlap": st.overlap,
                "gold_rate": st.gold_rate,
                "time_limit_s": st.time_limit_s,
            }
        )
    return out


def judge_stats(engine: Engine) -> list[dict[str, Any]]:
    """Per judge (admins excluded): work done, gold (attention-check) accuracy, time on item."""
    with Session(engine) as s:
        people = list(
            s.exec(
                select(JudgeAccount)
                .where(JudgeAccount.is_admin == False)  # noqa: E712
                .order_by(JudgeAccount.id)  # type: ignore[arg-type]
            )
        )
        verdicts = s.exec(select(HumanVerdict)).all()
        skipped = dict(
            s.execute(
                select(Assignment.judge_id, func.count())
                .where(Assignment.status == SKIPPED)
                .group_by(Assignment.judge_id)
            ).all()
        )
    by: dict[int, list[HumanVerdict]] = defaultdict(list)
    for v in verdicts:
        by[v.judge_id].append(v)
    out = []
    for j in people:
        vs = by.get(j.id, [])  # type: ignore[arg-type]
        gold = [v for v in vs if v.is_gold and not v.timed_out]
        out.append(
            {
                "judge": j.name,
                "answered": sum(not v.timed_out for v in vs),
                "skipped": skipped.get(j.id, 0),
                "timeouts": sum(v.timed_out for v in vs),
                "gold_answered": len(gold),
                "gold_accuracy": (
                    sum(bool(v.gold_correct) for v in gold) / len(gold) if gold else None
                ),
                "median_seconds": statistics.median(v.seconds for v in vs) if vs else None,
                "last_verdict": iso(max((v.created_at for v in vs), default=None)),
            }
        )
    return out


def cohen_kappa(x: Sequence[str], y: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None where undefined."""
    n = len(x)
    if n == 0 or n != len(y):
        return None
    po = sum(a == b for a, b in zip(x, y, strict=True)) / n
    cx, cy = Counter(x), Counter(y)
    pe = sum(cx[c] * cy[c] for c in set(cx) | set(cy)) / (n * n)
    return None if pe >= 1.0 else (po - pe) / (1.0 - pe)


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa over items each rated by two or more raters (counts may differ per item).

    With a varying number of raters per item, each item's agreement is taken over its own
    rater pairs and category shares over all ratings (the usual generalisation).
    """
    rows = [r for r in ratings if len(r) >= 2]
    if not rows:
        return None
    p_items = []
    totals: Counter[str] = Counter()
    for r in rows:
        c = Counter(r)
        n = len(r)
        totals.update(c)
        p_items.append((sum(v * v for v in c.values()) - n) / (n * (n - 1)))
    n_all = sum(totals.values())
    pe = sum((v / n_all) ** 2 for v in totals.values())
    po = sum(p_items) / len(p_items)
    return None if pe >= 1.0 else (po - pe) / (1.0 - pe)


def percent_agreement(ratings: Sequence[Sequence[str]]) -> float | None:
    """Share of agreeing rater pairs, averaged over items with two or more ratings."""
    per_item = []
    for r in ratings:
        pairs = list(combinations(r, 2))
        if pairs:
            per_item.append(sum(a == b for a, b in pairs) / len(pairs))
    return sum(per_item) / len(per_item) if per_item else None


def agreement(engine: Engine, min_common: int = 2) -> list[dict[str, Any]]:
    """Inter-annotator agreement per study, on regular items' decided verdicts.

    Returns one row per study (kind "study": percent agreement, Fleiss' kappa) followed by one
    per judge pair with at least `min_common` shared items (kind "pair": Cohen's kappa).
    """
    with Session(engine) as s:
        names = {j.id: j.name for j in s.exec(select(JudgeAccount))}
        studies = {st.id: st.name for st in s.exec(select(Study))}
        rows = s.exec(
            select(HumanVerdict).where(
                HumanVerdict.is_gold == False,  # noqa: E712
                HumanVerdict.choice.is_not(None),  # type: ignore[union-attr]
            )
        ).all()
    per_study: dict[int, dict[int, dict[int, str]]] = defaultdict(lambda: defaultdict(dict))
    for v in rows:
        per_study[v.study_id][v.item_id][v.judge_id] = v.choice  # type: ignore[assignment]
    out: list[dict[str, Any]] = []
    for sid, items in sorted(per_study.items()):
        ratings = [list(by_judge.values()) for by_judge in items.values()]
        multi = [r for r in ratings if len(r) >= 2]
        out.append(
            {
                "kind": "study",
                "study": studies.get(sid, str(sid)),
                "items_with_2plus": len(multi),
                "percent_agreement": percent_agreement(multi),
                "fleiss_kappa": fleiss_kappa(multi),
            }
        )
        judge_ids = sorted({j for by_judge in items.values() for j in by_judge})
        for ja, jb in combinations(judge_ids, 2):
            common = [(bj[ja], bj[jb]) for bj in items.values() if ja in bj and jb in bj]
            if len(common) < min_common:
                continue
            x, y = [c[0] for c in common], [c[1] for c in common]
            out.append(
                {
                    "kind": "pair",
                    "study": studies.get(sid, str(sid)),
                    "judge_a": names.get(ja, str(ja)),
                    "judge_b": names.get(jb, str(jb)),
                    "common_items": len(common),
                    "percent_agreement": sum(a == b for a, b in common) / len(common),
                    "cohen_kappa": cohen_kappa(x, y),
                }
            )
    return out


EXPORT_FIELDS = [
    "verdict_id",
    "study",
    "item_id",
    "item_key",
    "kind",
    "judge",
    "is_gold",
    "prompt",
    "a",
    "b",
    "shown_first",
    "choice",
    "confidence",
    "prob_a",
    "seconds",
    "timed_out",
    "gold_answer",
    "gold_correct",
    "answered_at",
    "meta",
]


def export_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every verdict with its item and judge, for analysis outside the platform."""
    with Session(engine) as s:
        rows = s.execute(
            select(HumanVerdict, Item, Assignment, JudgeAccount.name, Study.name)
            .join(Item, Item.id == HumanVerdict.item_id)  # type: ignore[arg-type]
            .join(Assignment, Assignment.id == HumanVerdict.assignment_id)  # type: ignore[arg-type]
            .join(JudgeAccount, JudgeAccount.id == HumanVerdict.judge_id)  # type: ignore[arg-type]
            .join(Study, Study.id == HumanVerdict.study_id)  # type: ignore[arg-type]
            .order_by(HumanVerdict.id)  # type: ignore[arg-type]
        ).all()
    out = []
    for v, item, a, judge, study in rows:
        out.append(
            {
                "verdict_id": v.id,
                "study": study,
                "item_id": item.id,
                "item_key": item.key,
                "kind": item.kind,
                "judge": judge,
                "is_gold": item.is_gold,
                "prompt": item.payload.get("prompt"),
                "a": item.payload.get("a"),
                "b": item.payload.get("b"),
                "shown_first": "b" if a.swapped else "a",
                "choice": v.choice,
                "confidence": v.confidence,
                "prob_a": v.prob_a,
                "seconds": round(v.seconds, 3),
                "timed_out": v.timed_out,
                "gold_answer": item.gold_answer,
                "gold_correct": v.gold_correct,
                "answered_at": iso(v.created_at),
                "meta": item.meta,
            }
        )
    return out


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """The exact export: one JSON object per verdict."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _spreadsheet_safe(v: Any) -> Any:
    # Model outputs are untrusted: a cell starting with = + - @ runs as a formula when the CSV
    # is opened in a spreadsheet (OWASP "CSV injection"). The JSONL export stays verbatim.
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False)
    return v


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _spreadsheet_safe(v) for k, v in r.items()})
    return buf.getvalue()
