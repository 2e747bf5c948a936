"""The human judges' settings, apart from the judges themselves: the config schema is built from
these, so composing a config does not load the human-study backend (`oversight.study`), which
only a run with human judges imports (through `oversight.judges.human`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from oversight.checks import Count, Fraction, Natural, NonNeg, Positive, required


@dataclass
class HumanSettings:
    """Settings of `oversight.judges.human.HumanJudge`."""

    name: str = "human"
    """who this judge is in the store (each verdict names the person: human:<name>)"""
    url: str = "sqlite:///study.db"
    """the store the UI reads; must outlive the run (PostgreSQL, or a fixed SQLite path)"""
    study: str = "study"
    """items are unique per study: a restart with the same study finds its items"""
    overlap: Count = 1
    """judges per item"""
    gold_rate: Fraction = 0.1
    """chance that a judge's next item is an attention check"""
    n_gold: Natural = 20
    """attention-check items posted with the study"""
    time_limit_s: Positive | None = None
    """per-item evaluation window in the UI; None: unlimited"""
    timeout_s: NonNeg = 86400.0
    """how long training waits for a batch's verdicts"""
    poll_s: Positive = 2.0
    """seconds between looks at the store while waiting"""
    lease_s: Positive = 1800.0
    """an item shown but unanswered this long goes back to the pool"""
    instructions: str | None = None
    """text shown above every item; None: the study's default instructions"""
    seed: int = 0
    """which gold items are drawn"""


@dataclass
class HumanOrSimulatedSettings(HumanSettings):
    """Settings of `oversight.judges.human.HumanOrSimulated`."""

    fallback: Annotated[Any, required("the judge that decides what people leave undecided")] = None
    """the judge that decides what people left undecided (required)"""
