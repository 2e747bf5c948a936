"""AI helper roles: models a protocol consults that are not the policy being trained.

A critic points out the flaw in an answer; later roles (a debater, a consultant) follow the same
shape. Each role comes in kinds behind one batched interface of plain text and typed values:
simulated (a budget of checks through its own metered `Verifier`, and configured failure rates),
learned (a small transformer of its own, trained on text the task generates), and, later, an
LLM behind LangChain, which reads the same text and writes text the task parses.

A role reads the truth only through its verifier, as a judge does (docs/design.md, "The truth
wall"); `tests/test_truth_wall.py` scans this package for any other way in.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass, field

import torch

from oversight.checks import ensure
from oversight.judges import Failure
from oversight.tasks import Task, Verifier

__all__ = ["Failure", "Role", "RoleCost"]


@dataclass
class RoleCost:
    """What a role has spent so far: items answered, verifier checks, wall-clock seconds."""

    calls: int = 0
    checks: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        per = max(self.calls, 1)
        return {
            "calls": self.calls,
            "checks": self.checks,
            "seconds": self.seconds,
            "checks_per_call": self.checks / per,
        }


@dataclass
class Role(ABC):
    name: str
    """who this role is in what it writes and in the store"""
    cost: RoleCost = field(default_factory=RoleCost, init=False)

    def __post_init__(self) -> None:
        ensure(self)  # each role's declared ranges (oversight.checks), when built in code too

    def attach(self, task: Task, device: torch.device | str = "cpu") -> None:
        """Give the role its own metered verifier for `task`; a learned role also gets its model
        (from the cache, or trained now) on `device`."""
        self.task = task
        self.verifier = Verifier(task)

    def _attached(self) -> Verifier:
        verifier = getattr(self, "verifier", None)
        if verifier is None:
            raise RuntimeError(f"role {self.name!r} has no task: attach(task) before using it")
        return verifier
