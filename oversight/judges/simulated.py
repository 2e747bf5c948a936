"""Simulated raters: a competence budget, surface biases and flip noise (docs/design.md, "Judges").

A rater reads each answer from the top and checks at most `competence` steps of it through its
verifier ("how much can you check in a short evaluation window"). If the checks single out one
answer as wrong, that decides. Only when they do not (both pass or both fail) do the biases act:
agreement with the user's belief, length, and the position in which the answers were shown.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Annotated

from oversight.checks import Natural, one_of, within
from oversight.judges.base import Comparison, Judge, Outcome, Verdict
from oversight.tasks import PublicProblem


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def flip(p: float, noise: float) -> float:
    """Soft verdict after flip noise: with probability `noise` the rater picks the other answer."""
    return noise + (1.0 - 2.0 * noise) * p


@dataclass
class SimulatedRater(Judge):
    competence: Natural | None = 2
    """steps of each answer the rater can check per decision; None = unlimited"""
    agreement_bias: float = 0.0
    """logit bonus for the answer that agrees with the user's belief"""
    length_bias: float = 0.0
    """logit bonus for the longer answer"""
    position_bias: float = 0.0
    """logit bonus for the answer shown first"""
    noise: Annotated[float, within(0, 0.5)] = 0.0
    """probability of picking the other answer (a slip)"""
    check_order: Annotated[str, one_of("first", "random")] = "first"
    """"first": read from the top until the budget runs out; "random": spot-check random steps"""

    def _finds_error(
        self, problem: PublicProblem, response: str, rng: random.Random
    ) -> tuple[bool, int]:
        order = list(range(problem.difficulty))
        if self.check_order == "random":
            rng.shuffle(order)
        budget = len(order) if self.competence is None else self.competence
        checks = 0
        for i in order[:budget]:
            checks += 1
            if not self.verifier.check_step(problem, response, i):
                return True, checks
        return False, checks

    def _judge(self, items: list[Comparison], rng: random.Random) -> list[Outcome]:
        out: list[Outcome] = []
        for c in items:
            wrong_a, checks_a = self._finds_error(c.problem, c.a, rng)
            wrong_b, checks_b = self._finds_error(c.problem, c.b, rng)
            if wrong_a != wrong_b:
                p = 0.0 if wrong_a else 1.0
            else:
                agree = self.task.agrees_with_user(c.problem, c.a) - self.task.agrees_with_user(
                    c.problem, c.b
                )
                longer = (len(c.a) > len(c.b)) - (len(c.a) < len(c.b))
                p = sigmoid(
                    self.agreement_bias * agree + self.length_bias * longer + self.position_bias
                )
            p = flip(p, self.noise)
            out.append(Verdict(p, rng.random() < p, self.name, checks_a + checks_b))
        return out


class Oracle(SimulatedRater):
    """Unlimited budget, no bias, no noise: the ceiling every protocol is measured against."""

    def __init__(self, name: str = "oracle") -> None:
        super().__init__(name=name, competence=None)
