"""A weighted mix of raters. Who the raters are is an experimental variable (docs/design.md, "Judges")."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from oversight.judges.base import Comparison, Judge, Outcome
from oversight.tasks import Task


class RaterPool(Judge):
    """Each comparison goes to one member, drawn by weight; the verdict names that member."""

    def __init__(self, name: str, members: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(name=name)
        if not members:
            raise ValueError("a rater pool needs at least one member")
        self.raters: list[Judge] = [m["rater"] for m in members]
        self.weights = [float(m["weight"]) for m in members]
        if min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError(f"pool weights must be non-negative and not all zero: {self.weights}")

    def attach(self, task: Task) -> None:
        super().attach(task)
        for r in self.raters:
            r.attach(task)

    def _judge(self, items: list[Comparison], rng: random.Random) -> list[Outcome]:
        who = rng.choices(range(len(self.raters)), weights=self.weights, k=len(items))
        out: dict[int, Outcome] = {}
        for k, rater in enumerate(self.raters):
            idx = [i for i, w in enumerate(who) if w == k]
            out |= zip(idx, rater._judge([items[i] for i in idx], rng), strict=True)
        return [out[i] for i in range(len(items))]
