"""The judge's side: the next item to judge, a verdict, a skip, and the judge's progress.

Correctness under many judges at once rests on the database, not on the app:
- an item's free slots are an integer on its row, taken by one conditional UPDATE
  (`n_active < overlap`), so two judges racing for the last slot cannot both win;
- (item, judge) is unique on assignments, so nobody ever gets the same item twice;
- a verdict is unique per assignment and is written in the same transaction that moves the
  assignment out of "pending", so a double click stores one verdict, never two.

Assignment is pull-based and fair: a judge holds one item at a time (no hoarding), items go out
oldest study first and least-covered first, an item shown and abandoned returns to the pool
after the study's lease, and a skipped item goes to someone else, never back to the skipper.

Judges never see ground truth: `ItemView`, the only thing handed to the judge page, carries no
gold flag and no gold answer.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from oversight.study.db import id_of, retry
from oversight.study.schema import (
    DONE,
    EXPIRED,
    ONE_ANSWER_KINDS,
    PENDING,
    SKIPPED,
    TIME_GRACE_S,
    Assignment,
    HumanVerdict,
    Item,
    Study,
)

CONFIDENCE_LEVELS = {"Guessing": 0.6, "Fairly sure": 0.8, "Certain": 1.0}
"""the judge's optional confidence buttons and the probability each stands for"""


@dataclass(frozen=True)
class ItemView:
    """An item as one judge sees it: in that judge's display order, with nothing hidden in it."""

    assignment_id: int
    kind: str
    payload: dict[str, Any]
    """by kind: pairwise: prompt, a (shown as "A"), b (shown as "B"); critique_pairwise: also
    a_critique and b_critique (None: no critique); debate: prompt, a, b and turns, each with
    speaker ("a" or "b"), text, step (from 0, of the other side's answer, or None), quote and
    verified; argued: prompt, answer and argument (its turns' texts); subquestion: prompt and
    answer"""
    instructions: str
    time_limit_s: float | None
    shown_at: float

    @property
    def deadline(self) -> float | None:
        return None if self.time_limit_s is None else self.shown_at + self.time_limit_s


class AssignmentGone(Exception):
    """The item was answered, skipped, or handed to someone else after its lease ran out."""


@dataclass(frozen=True)
class Recorded:
    verdict_id: int
    seconds: float
    timed_out: bool


@dataclass(frozen=True)
class Progress:
    answered: int
    skipped: int
    waiting: int
    """regular items this judge could still be given now"""


def _other(side: Any) -> Any:
    return {"a": "b", "b": "a"}.get(side, side)


def _side(turn: dict[str, Any]) -> dict[str, Any]:
    """A judge's probe names the answer it tested: swapped with the sides."""
    return {"side": _other(turn["side"])} if "side" in turn else {}


def _displayed(payload: dict[str, Any], swapped: bool) -> dict[str, Any]:
    """Swap every a/b-keyed field (a, b, a_critique, b_critique, ...) and every debate turn's
    speaker for this judge."""
    if not swapped:
        return dict(payload)
    out = {}
    for k, v in payload.items():
        if k in ("a", "b"):
            k = _other(k)
        elif k.startswith(("a_", "b_")):
            k = _other(k[0]) + k[1:]
        elif k == "turns":
            v = [{**t, "speaker": _other(t.get("speaker"))} | _side(t) for t in v]
        out[k] = v
    return out


def _view(s: Session, a: Assignment) -> ItemView:
    item = s.get(Item, a.item_id)
    study = s.get(Study, a.study_id)
    assert item is not None and study is not None
    return ItemView(
        assignment_id=id_of(a),
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
            .join(Study, col(Study.id) == col(Assignment.study_id))
            .where(Assignment.status == PENDING, Assignment.assigned_at < now - Study.lease_s)
            .limit(100)
        ).all()
    for aid, iid in stale:

        def tx(aid: int = aid, iid: int = iid) -> None:
            with Session(engine) as s:
                n = s.execute(
                    update(Assignment)
                    .where(col(Assignment.id) == aid, Assignment.status == PENDING)
                    .values(status=EXPIRED, finished_at=now)
                ).rowcount
                if n:
                    s.execute(
                        update(Item)
                        .where(col(Item.id) == iid)
                        .values(n_active=col(Item.n_active) - 1)
                    )
                s.commit()

        retry(engine, tx)


def _claim(engine: Engine, judge_id: int, now: float) -> ItemView | None | bool:
    """Try to take one item for the judge: its view, None when there is no work, False to retry."""
    with Session(engine) as s:
        mine = select(Assignment.item_id).where(Assignment.judge_id == judge_id)
        open_items = select(Item).where(
            Item.closed == False,  # noqa: E712  SQL, not Python
            col(Item.id).not_in(mine),
        )
        # Oldest study first, then oldest item, and among those the least-covered: a training
        # run waits for its batch as a whole, so finishing batches in order is what frees it.
        regular = s.exec(
            open_items.where(Item.is_gold == False, Item.n_active < Item.overlap)  # noqa: E712
            .order_by(col(Item.study_id), col(Item.n_active), col(Item.id))
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
                    open_items.where(
                        Item.is_gold == True,  # noqa: E712
                        Item.study_id == study.id,
                    ).order_by(col(Item.id))
                ).all()
                if gold:
                    candidates.insert(0, draw.choice(gold))
        for item in candidates:
            took = s.execute(
                update(Item)
                .where(col(Item.id) == item.id, Item.n_active < Item.overlap, Item.closed == False)  # noqa: E712
                .values(n_active=col(Item.n_active) + 1)
            ).rowcount
            if took != 1:
                continue
            a = Assignment(
                item_id=id_of(item),
                judge_id=judge_id,
                study_id=item.study_id,
                is_gold=item.is_gold,
                swapped=item.kind not in ONE_ANSWER_KINDS
                and random.Random(f"swap:{item.id}:{judge_id}").random() < 0.5,
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
            .order_by(col(Assignment.id))
        ).first()
        if a is not None:
            return _view(s, a)
    _expire_leases(engine, now)
    for _ in range(50):
        got = retry(engine, lambda: _claim(engine, judge_id, now))
        if not isinstance(got, bool):
            return got
    return None


def _finish(s: Session, assignment_id: int, status: str, now: float, gone: str) -> None:
    """Move a pending assignment to `status`, or raise AssignmentGone(gone) if it moved first."""
    moved = s.execute(
        update(Assignment)
        .where(col(Assignment.id) == assignment_id, Assignment.status == PENDING)
        .values(status=status, finished_at=now)
    ).rowcount
    if moved != 1:
        s.rollback()
        raise AssignmentGone(gone)


def _mine(s: Session, judge_id: int, assignment_id: int) -> Assignment:
    a = s.get(Assignment, assignment_id)
    if a is None or a.judge_id != judge_id:
        raise AssignmentGone("this item is not assigned to you")
    return a


def submit(
    engine: Engine,
    judge_id: int,
    assignment_id: int,
    choice: str | None,
    confidence: float | None = None,
    now: float | None = None,
) -> Recorded:
    """Store the judge's verdict on an assignment, exactly once.

    `choice` is what the judge clicked: "A" or "B" in their display order, or "accept" or
    "reject" for a one-answer kind; None records that the time ran out. A verdict that arrives
    after the study's time limit is a timeout too: the server's clock decides, not the browser's.
    """
    now = time.time() if now is None else now
    if choice is not None and choice not in ("A", "B", "accept", "reject"):
        raise ValueError(f"choice must be 'A', 'B', 'accept', 'reject' or None, got {choice!r}")
    if confidence is not None and not 0.5 <= confidence <= 1.0:
        raise ValueError(f"confidence must lie in [0.5, 1], got {confidence}")

    def tx() -> Recorded:
        with Session(engine) as s:
            a = _mine(s, judge_id, assignment_id)
            if a.status != PENDING:
                raise AssignmentGone(f"this item is already {a.status}")
            item, study = s.get(Item, a.item_id), s.get(Study, a.study_id)
            assert item is not None and study is not None
            one = item.kind in ONE_ANSWER_KINDS
            if choice is not None and (choice in ("accept", "reject")) != one:
                raise ValueError(f"choice {choice!r} does not answer an item of kind {item.kind!r}")
            seconds = max(0.0, now - a.assigned_at)
            late = study.time_limit_s is not None and seconds > study.time_limit_s + TIME_GRACE_S
            timed_out = choice is None or late
            canon = None
            if not timed_out:
                canon = choice if one else "ab"[(choice == "B") != a.swapped]
            _finish(s, assignment_id, DONE, now, "this item was answered a moment ago")
            conf = confidence if canon is not None else None
            p = None if canon is None else (conf or 1.0)
            v = HumanVerdict(
                assignment_id=assignment_id,
                item_id=id_of(item),
                judge_id=judge_id,
                study_id=id_of(study),
                choice=canon,
                confidence=conf,
                prob_a=None if p is None else round(p if canon in ("a", "accept") else 1.0 - p, 6),
                seconds=seconds,
                timed_out=timed_out,
                is_gold=item.is_gold,
                gold_correct=(canon == item.gold_answer) if item.is_gold else None,
                created_at=now,
            )
            s.add(v)
            s.commit()
            return Recorded(id_of(v), seconds, timed_out)

    return retry(engine, tx)


def skip(engine: Engine, judge_id: int, assignment_id: int, now: float | None = None) -> None:
    """The judge passes on an item; its slot goes to another judge, never back to this one."""
    now = time.time() if now is None else now

    def tx() -> None:
        with Session(engine) as s:
            a = _mine(s, judge_id, assignment_id)
            _finish(s, assignment_id, SKIPPED, now, f"this item is already {a.status}")
            s.execute(
                update(Item)
                .where(col(Item.id) == a.item_id)
                .values(n_active=col(Item.n_active) - 1)
            )
            s.commit()

    retry(engine, tx)


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
                col(Item.id).not_in(mine),
            )
        ).scalar_one()
    return Progress(by_status.get(DONE, 0), by_status.get(SKIPPED, 0), waiting)
