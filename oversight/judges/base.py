"""One batched interface for every judge: simulated raters, humans (through the store), LLMs.

`compare` takes a list of pairs and returns, in the same order, a `Verdict` or a typed
`Failure` for each (no -1 sentinels). It randomises which answer is shown first and maps the
answer back, so a judge with a position bias cannot favour the protocol's `a` slot.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from oversight.checks import ensure
from oversight.tasks import PublicProblem, Task, Verifier


@dataclass(frozen=True)
class Comparison:
    problem: PublicProblem
    a: str
    b: str


@dataclass(frozen=True)
class Verdict:
    prob_a: float
    """soft verdict: the judge's probability that `a` is the better answer"""
    prefers_a: bool
    """hard verdict"""
    judge: str
    """who answered (a pool member, a human's id, a model name)"""
    checks: int = 0
    """verifier checks spent on this decision"""
    seconds: float = 0.0


@dataclass(frozen=True)
class Failure:
    """A comparison the judge could not decide: timeout, abstention, unparsable LLM output."""

    reason: str
    judge: str


Outcome = Verdict | Failure


@dataclass(frozen=True)
class JudgmentRecord:
    """One judgment a protocol asked for; every one is stored, and scored by the harness."""

    item: Comparison
    outcome: Outcome
    phase: str
    """"labels" (before RL), "refresh" (during RL), or a protocol's own phase name"""


@dataclass
class Cost:
    """What a judge has spent so far: decided comparisons, verifier checks, judge-seconds."""

    labels: int = 0
    checks: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        per = max(self.labels, 1)
        return {
            "labels": self.labels,
            "checks": self.checks,
            "seconds": self.seconds,
            "checks_per_label": self.checks / per,
        }


@dataclass
class Judge(ABC):
    name: str
    """who this judge is in every verdict and in the store (a pool names its member instead)"""
    cost: Cost = field(default_factory=Cost, init=False)

    def __post_init__(self) -> None:
        ensure(self)  # each judge's declared ranges (oversight.checks), when built in code too

    def attach(self, task: Task) -> None:
        """Give the judge its own metered verifier for `task`."""
        self.task = task
        self.verifier = Verifier(task)

    def compare(self, items: list[Comparison], rng: random.Random) -> list[Outcome]:
        swaps = [rng.random() < 0.5 for _ in items]
        shown = [
            Comparison(c.problem, c.b, c.a) if s else c for c, s in zip(items, swaps, strict=True)
        ]
        outcomes = self._judge(shown, rng)
        out: list[Outcome] = []
        for o, s in zip(outcomes, swaps, strict=True):
            if isinstance(o, Verdict):
                self.cost.labels += 1
                self.cost.checks += o.checks
                self.cost.seconds += o.seconds
                if s:
                    o = Verdict(1.0 - o.prob_a, not o.prefers_a, o.judge, o.checks, o.seconds)
            out.append(o)
        return out

    @abstractmethod
    def _judge(self, items: list[Comparison], rng: random.Random) -> list[Outcome]:
        """Decide pairs as shown (`a` is displayed first)."""
