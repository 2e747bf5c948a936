"""A weighted mix of raters. Who the raters are is an experimental variable (docs/design.md, "Judges")."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, TypeVar

from oversight.checks import Rules, at_least, each, ensure, rule
from oversight.judges.base import (
    Failure,
    Judge,
    JudgeItem,
    JudgmentRecord,
    Outcome,
    Probe,
)
from oversight.tasks import PublicProblem, Task

T = TypeVar("T")


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

    def _spread(self, items: list[Any], rng: random.Random, ask: Callable[..., list[T]]) -> list[T]:
        """Each item to a member drawn by weight; `ask(rater, its items, rng)` answers them."""
        who = rng.choices(range(len(self.raters)), weights=self.weights, k=len(items))
        out: dict[int, T] = {}
        for k, rater in enumerate(self.raters):
            idx = [i for i, w in enumerate(who) if w == k]
            out |= zip(idx, ask(rater, [items[i] for i in idx], rng), strict=True)
        return [out[i] for i in range(len(items))]

    def _answer(
        self, problems: list[PublicProblem], rng: random.Random
    ) -> list[JudgmentRecord | Failure]:
        return self._spread(problems, rng, lambda r, ps, g: r._answer(ps, g))

    def _judge(self, items: list[JudgeItem], rng: random.Random) -> list[Outcome]:
        return self._spread(items, rng, lambda r, its, g: r._judge(its, g))

    def _probe(self, items: list[JudgeItem], rng: random.Random) -> list[Probe | None]:
        return self._spread(items, rng, lambda r, its, g: r._probe(its, g))
