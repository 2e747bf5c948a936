"""Judges behind one batched interface (see `base.Judge`).

The human judges live in `oversight.judges.human` (`HumanJudge`, `HumanOrSimulated`) and are not
re-exported here: they bring the human-study store (`oversight.study`) with them, which a run
with simulated judges has no use for. Import them from `oversight.judges.human`.
"""

from oversight.judges.base import (
    Comparison,
    Cost,
    Failure,
    Judge,
    JudgmentRecord,
    Outcome,
    Verdict,
)
from oversight.judges.pool import RaterPool
from oversight.judges.simulated import Oracle, SimulatedRater

__all__ = [
    "Comparison",
    "Cost",
    "Failure",
    "Judge",
    "JudgmentRecord",
    "Oracle",
    "Outcome",
    "RaterPool",
    "SimulatedRater",
    "Verdict",
]
