"""The study's tables and the constants their rows use.

Times are Unix seconds (floats), which compare and subtract the same way on SQLite and
PostgreSQL; `iso` turns one into text for people.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

PENDING, DONE, SKIPPED, EXPIRED = "pending", "done", "skipped", "expired"
"""an assignment's status"""
UNLIMITED = 1_000_000
"""overlap of gold items: every judge may get each one once"""
TIME_GRACE_S = 3.0
"""slack on the per-item time limit for page reloads and network round trips"""
ONE_ANSWER_KINDS = frozenset({"argued", "subquestion"})
"""item kinds with one answer to accept or reject; every other kind sets answers a and b against
each other (pairwise, critique_pairwise, debate), and each judge sees those in their own order"""
DEFAULT_INSTRUCTIONS = (
    "Read the question, then both answers. Pick the answer that is more likely to be correct. "
    "If you cannot tell, give your best guess and say so with the confidence buttons, "
    "or skip the item."
)


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
    """what the judge sees (per kind: `oversight.study.queue.ItemView.payload`)"""
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
    """the item's b was shown as "A" to this judge (never, for a one-answer kind)"""
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
    """"a" or "b" in the item's own orientation ("accept" or "reject" for a one-answer kind);
    None when the time ran out"""
    confidence: float | None = None
    """in [0.5, 1]; None when the judge gave none"""
    prob_a: float | None = None
    """the probability of "a" (of "accept" for a one-answer kind)"""
    seconds: float = 0.0
    timed_out: bool = False
    is_gold: bool = False
    gold_correct: bool | None = None
    created_at: float = Field(default_factory=time.time)


TABLES: tuple[type[SQLModel], ...] = (
    Study,
    JudgeAccount,
    AccessToken,
    Item,
    Assignment,
    HumanVerdict,
)
"""every study table, in an order that creates each after the tables it refers to"""


def iso(t: float | None) -> str | None:
    """A stored time as ISO 8601 text in UTC, to the second."""
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
