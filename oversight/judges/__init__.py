"""Judges behind one batched interface (see `base.Judge`).

The human judges live in `oversight.judges.human` (`HumanJudge`, `HumanOrSimulated`) and are not
re-exported here: they bring the human-study store (`oversight.study`) with them, which a run
with simulated judges has no use for. Import them from `oversight.judges.human`.
"""

from oversight.judges.base import (
    Argued,
    Comparison,
    Cost,
    Failure,
    Judge,
    JudgeItem,
    JudgmentRecord,
    Outcome,
    Probe,
    SubAnswer,
    Transcript,
    Turn,
    Verdict,
    item_from_payload,
    pointed_steps,
    swapped,
    unsupported,
    verify_quotes,
)
from oversight.judges.pool import RaterPool
from oversight.judges.simulated import Oracle, SimulatedRater

__all__ = [
    "Argued",
    "Comparison",
    "Cost",
    "Failure",
    "Judge",
    "JudgeItem",
    "JudgmentRecord",
    "Oracle",
    "Outcome",
    "Probe",
    "RaterPool",
    "SimulatedRater",
    "SubAnswer",
    "Transcript",
    "Turn",
    "Verdict",
    "item_from_payload",
    "pointed_steps",
    "swapped",
    "unsupported",
    "verify_quotes",
]
