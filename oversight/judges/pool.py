"""A weighted mix of raters. Who the raters are is an experimental variable (docs/design.md, "Judges")."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar

from oversight.checks import Rules, at_least, each, ensure, rule
from oversight.judges.base import Failure, Judge, JudgeItem, JudgmentRecord, Outcome
from oversight.tasks import PublicProblem, Task


def _weights(members: Sequence[Mapping[str, Any]]) -> list[float]:
    return [float(m["weight"]) for m in members]


class RaterPool(Judge):
    """Each item, of any kind, goes to one member, drawn by weight; the verdict names that member."""

    rules: ClassVar[Rules] = (
        rule(
            "members[*].weight",
            "must include one > 0",
            lambda c: sum(_weights(c.members)) > 0,
            shown=lambda c: _weights(c.members),
        ),
    )

    def __init__(
        self,
        name: str,
        members: Annotated[Sequence[Mapping[str, Any]], each("weight", at_least(0))],
    ) -> None:
        super().__init__(name=name)
        ensure(self, {"members": members})
        self.raters: list[Judge] = [m["rater"] for m in members]
        self.weights = _weights(members)

    def attach(self, task: Task) -> None:
        super().attach(task)
        for r in self.raters:
            r.attach(task)

    def reach(self) -> int | None:
        """What every member surely works out: the shortest reach."""
        reaches = [r.reach() for r in self.raters]
        bounded = [x for x in reaches if x is not None]
        return min(bounded) if bounded else None

    def _answer(
        self, problems: list[PublicProblem], rng: random.Random
    ) -> list[JudgmentRecord | Failure]:
        who = rng.choices(range(len(self.raters)), weights=self.weights, k=len(problems))
        out: dict[int, JudgmentRecord | Failure] = {}
        for k, rater in enumerate(self.raters):
            idx = [i for i, w in enumerate(who) if w == k]
            out |= zip(idx, rater._answer([problems[i] for i in idx], rng), strict=True)
        return [out[i] for i in range(len(problems))]

    def _judge(self, items: list[JudgeItem], rng: random.Random) -> list[Outcome]:
        who = rng.choices(range(len(self.raters)), weights=self.weights, k=len(items))
        out: dict[int, Outcome] = {}
        for k, rater in enumerate(self.raters):
            idx = [i for i, w in enumerate(who) if w == k]
            out |= zip(idx, rater._judge([items[i] for i in idx], rng), strict=True)
        return [out[i] for i in range(len(items))]
