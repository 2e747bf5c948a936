"""The admin's side: progress per study and run, each judge's work and quality, agreement.

The agreement statistics themselves are pure functions in `oversight.analysis.stats`; this
module only gathers the verdicts they are computed on.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from itertools import combinations
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from oversight.analysis.stats import cohen_kappa, fleiss_kappa, percent_agreement
from oversight.store import Run
from oversight.study.schema import (
    PENDING,
    SKIPPED,
    Assignment,
    HumanVerdict,
    Item,
    JudgeAccount,
    Study,
    iso,
)


def _count_by(s: Session, key: Any, *where: Any) -> dict[Any, int]:
    """Rows per value of `key` (a column), among those matching `where`."""
    return dict(s.execute(select(key, func.count()).where(*where).group_by(key)).all())


def _runs_by_study(s: Session) -> dict[str, list[str]]:
    """The training runs posting into each study ("#3 running"), by study name."""
    runs: dict[str, list[str]] = defaultdict(list)
    for r in s.exec(select(Run).order_by(col(Run.id))):
        judge_cfg = (r.config or {}).get("judge") or {}
        if isinstance(judge_cfg, dict) and judge_cfg.get("study"):
            runs[judge_cfg["study"]].append(f"#{r.id} {r.status}")
    return runs


def study_progress(engine: Engine) -> list[dict[str, Any]]:
    """Per study: items, verdicts received and needed, and the training runs posting into it."""
    with Session(engine) as s:
        studies = list(s.exec(select(Study).order_by(col(Study.id))))
        items = s.execute(
            select(Item.study_id, Item.id, Item.overlap, Item.closed).where(Item.is_gold == False)  # noqa: E712
        ).all()
        done = _count_by(s, HumanVerdict.item_id, HumanVerdict.is_gold == False)  # noqa: E712
        gold = _count_by(s, HumanVerdict.study_id, HumanVerdict.is_gold == True)  # noqa: E712
        pending = _count_by(s, Assignment.study_id, Assignment.status == PENDING)
        runs = _runs_by_study(s)
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
                .order_by(col(JudgeAccount.id))
            )
        )
        verdicts = s.exec(select(HumanVerdict)).all()
        skipped = _count_by(s, Assignment.judge_id, Assignment.status == SKIPPED)
    by: dict[int | None, list[HumanVerdict]] = defaultdict(list)
    for v in verdicts:
        by[v.judge_id].append(v)
    out = []
    for j in people:
        vs = by.get(j.id, [])
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
                col(HumanVerdict.choice).is_not(None),
            )
        ).all()
    per_study: dict[int, dict[int, dict[int, str]]] = defaultdict(lambda: defaultdict(dict))
    for v in rows:
        if v.choice is not None:  # always, by the query; this tells the type
            per_study[v.study_id][v.item_id][v.judge_id] = v.choice
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
