"""The training side: how many verdicts items have, and the verdicts themselves."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from oversight.study.db import chunks
from oversight.study.schema import HumanVerdict, JudgeAccount


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
        for chunk in chunks(list(dict.fromkeys(item_ids))):
            out.update(
                s.execute(
                    select(HumanVerdict.item_id, func.count())
                    .where(col(HumanVerdict.item_id).in_(chunk))
                    .group_by(HumanVerdict.item_id)
                ).all()
            )
    return out


def verdicts_for(engine: Engine, item_ids: Sequence[int]) -> dict[int, list[VerdictInfo]]:
    """Every verdict on the items, oldest first, with the name of the judge who gave it."""
    out: dict[int, list[VerdictInfo]] = defaultdict(list)
    with Session(engine) as s:
        for chunk in chunks(list(dict.fromkeys(item_ids))):
            rows = s.execute(
                select(HumanVerdict, JudgeAccount.name)
                .join(JudgeAccount, col(JudgeAccount.id) == col(HumanVerdict.judge_id))
                .where(col(HumanVerdict.item_id).in_(chunk))
                .order_by(col(HumanVerdict.id))
            ).all()
            for v, name in rows:
                out[v.item_id].append(VerdictInfo(name, v.choice, v.prob_a, v.seconds, v.timed_out))
    return dict(out)
