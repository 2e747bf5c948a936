"""Judges behind one batched interface (see `base.Judge`)."""

from oversight.judges.base import Comparison, Cost, Failure, Judge, Outcome, Verdict
from oversight.judges.human import HumanJudge, HumanOrSimulated
from oversight.judges.pool import RaterPool
from oversight.judges.simulated import Oracle, SimulatedRater

__all__ = [
    "Comparison",
    "Cost",
    "Failure",
    "HumanJudge",
    "HumanOrSimulated",
    "Judge",
    "Oracle",
    "Outcome",
    "RaterPool",
    "SimulatedRater",
    "Verdict",
]
