"""Every verdict with its item and judge, for analysis outside the platform: JSONL or CSV.

The JSONL export is exact. The CSV export is for spreadsheets, so any cell a spreadsheet would
run as a formula gets a leading apostrophe (model outputs are untrusted text).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from oversight.study.schema import Assignment, HumanVerdict, Item, JudgeAccount, Study, iso

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
    "payload",
]


def export_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every verdict with its item and judge, oldest first; the keys are `EXPORT_FIELDS`."""
    with Session(engine) as s:
        rows = s.execute(
            select(HumanVerdict, Item, Assignment, JudgeAccount.name, Study.name)
            .join(Item, col(Item.id) == col(HumanVerdict.item_id))
            .join(Assignment, col(Assignment.id) == col(HumanVerdict.assignment_id))
            .join(JudgeAccount, col(JudgeAccount.id) == col(HumanVerdict.judge_id))
            .join(Study, col(Study.id) == col(HumanVerdict.study_id))
            .order_by(col(HumanVerdict.id))
        ).all()
    return [
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
            # the whole item as stored: what a kind shows besides prompt, a and b
            "payload": item.payload,
        }
        for v, item, a, judge, study in rows
    ]


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """The exact export: one JSON object per verdict."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def spreadsheet_safe(v: Any) -> Any:
    """A cell value a spreadsheet shows as text, never runs: see OWASP "CSV injection"."""
    # A cell starting with = + - @ (or a tab or carriage return) runs as a formula when the CSV
    # is opened in a spreadsheet; the apostrophe makes it text.
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False)
    return v


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """The spreadsheet export: one row per verdict, columns `EXPORT_FIELDS`."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: spreadsheet_safe(v) for k, v in r.items()})
    return buf.getvalue()
