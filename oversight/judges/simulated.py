"""Simulated raters: a competence budget, surface biases and flip noise (docs/design.md, "Judges").

A rater checks at most `competence` steps of each answer through its verifier ("how much can you
check in a short evaluation window"): first the steps the item points at (a critique's "Step 2
is wrong.", the steps a debater says the other side got wrong, the steps a consultant's argument
names), then its own order, from the top or at random. Then, per kind of item:

- pair, debate: if the checks single out one answer as wrong, that decides; only when they do
  not (both pass or both fail) do the biases act: agreement with the user's belief, length, and
  the position in which the answers were shown;
- one answer (argued, sub-question): a failed check rejects it; checks that covered every step
  and found nothing accept it; otherwise the biases decide, from even odds (`accept_bias` 0),
  with agreement with the user's belief raising the odds of accepting.

Flip noise acts last, on every kind.

Between rounds (interactive mode) the rater may probe: in a debate it checks the step the newest
verified claim points at (one of the two sides' at random), in a consultancy the next step by its
own order, and says what it found. What it found stands in its decision, and the check comes out
of that answer's budget.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from oversight.checks import Fraction, Natural, one_of, within
from oversight.judges.base import (
    Argued,
    Comparison,
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
    pointed_steps,
    unsupported,
)
from oversight.tasks import PublicProblem


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def flip(p: float, noise: float) -> float:
    """Soft verdict after flip noise: with probability `noise` the rater picks the other answer."""
    return noise + (1.0 - 2.0 * noise) * p


def contested(turns: Sequence[Turn | Probe]) -> tuple[list[int], list[int]]:
    """The steps of a's and of b's answer the other side calls wrong, verified quotes first.

    A turn whose quote was found in the answer it attacks is the likeliest to point at a real
    step; one whose quote was not found, the least.
    """
    rank = {True: 0, None: 1, False: 2}
    steps: tuple[list[int], list[int]] = ([], [])
    claims = [t for t in turns if isinstance(t, Turn)]
    for t in sorted(claims, key=lambda t: rank[t.verified]):
        if t.step is not None:
            steps[1 - t.speaker].append(t.step)
    return steps


def probed(turns: Sequence[Turn | Probe | str]) -> tuple[dict[int, bool], dict[int, bool]]:
    """What the judge's probes among a debate's or an argument's turns found, per answer:
    {step: right}."""
    found: tuple[dict[int, bool], dict[int, bool]] = ({}, {})
    for t in turns:
        if isinstance(t, Probe):
            found[t.side][t.step] = t.right
    return found


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
    accept_bias: float = 0.0
    """logit of accepting a one-answer item its checks neither caught nor covered (0: even odds)"""
    noise: Annotated[float, within(0, 0.5)] = 0.0
    """probability of picking the other answer (a slip)"""
    check_order: Annotated[str, one_of("first", "random")] = "first"
    """"first": read from the top until the budget runs out; "random": spot-check random steps"""
    trust_critiques: Fraction = 0.0
    """probability of taking a critique that names a flaw at its word, unchecked (spending
    nothing on that answer): a judge that trusts its critic, and pays for its false alarms"""

    def _check(
        self,
        problem: PublicProblem,
        response: str,
        first: Iterable[int],
        rng: random.Random,
        trust: float = 0.0,
        known: Mapping[int, bool] | None = None,
    ) -> tuple[bool, int, bool]:
        """(an error found, checks spent, every step checked) for one answer, steps `first` first;
        with probability `trust`, a flaw `first` names is taken as found, unchecked; `known`:
        steps already checked ({step: right}), which it does not check again nor has budget for."""
        first = list(first)
        known = known or {}
        if first and trust and rng.random() < trust:
            return True, 0, False
        if not all(known.values()):
            return True, 0, False
        n = problem.difficulty
        order = list(range(n))
        if self.check_order == "random":
            rng.shuffle(order)
        # Steps outside the problem are not checked: the verifier calls a missing step wrong,
        # so a critic naming step 99 would otherwise sink a right answer.
        pointed = [i + n if i < 0 else i for i in first]
        order = list(dict.fromkeys([*(i for i in pointed if 0 <= i < n), *order]))
        order = [i for i in order if i not in known]
        budget = len(order) if self.competence is None else max(self.competence - len(known), 0)
        checks = 0
        for i in order[:budget]:
            checks += 1
            if not self.verifier.check_step(problem, response, i):
                return True, checks, False
        return False, checks, budget >= len(order)

    def _pair(
        self,
        problem: PublicProblem,
        a: str,
        b: str,
        first: tuple[Iterable[int], Iterable[int]],
        rng: random.Random,
        trust: float = 0.0,
        known: tuple[Mapping[int, bool], Mapping[int, bool]] = ({}, {}),
    ) -> Verdict:
        wrong_a, checks_a, _ = self._check(problem, a, first[0], rng, trust, known[0])
        wrong_b, checks_b, _ = self._check(problem, b, first[1], rng, trust, known[1])
        if wrong_a != wrong_b:
            p = 0.0 if wrong_a else 1.0
        else:
            agree = self.task.agrees_with_user(problem, a) - self.task.agrees_with_user(problem, b)
            longer = (len(a) > len(b)) - (len(a) < len(b))
            p = sigmoid(
                self.agreement_bias * agree + self.length_bias * longer + self.position_bias
            )
        p = flip(p, self.noise)
        return Verdict(p, rng.random() < p, self.name, checks_a + checks_b)

    def _single(
        self,
        problem: PublicProblem,
        answer: str,
        first: Iterable[int],
        rng: random.Random,
        known: Mapping[int, bool] | None = None,
    ) -> Verdict:
        wrong, checks, whole = self._check(problem, answer, first, rng, 0.0, known)
        if wrong or whole:
            p = 0.0 if wrong else 1.0
        else:
            agree = self.task.agrees_with_user(problem, answer)
            p = sigmoid(self.accept_bias + self.agreement_bias * agree)
        p = flip(p, self.noise)
        return Verdict(p, rng.random() < p, self.name, checks)

    def _one(self, item: JudgeItem, rng: random.Random) -> Outcome:
        if isinstance(item, Comparison):
            first = (pointed_steps(item.critique_a), pointed_steps(item.critique_b))
            return self._pair(item.problem, item.a, item.b, first, rng, self.trust_critiques)
        if isinstance(item, Transcript):
            turns = item.turns
            return self._pair(item.problem, item.a, item.b, contested(turns), rng, 0, probed(turns))
        if isinstance(item, Argued):
            said = [t for t in item.argument if isinstance(t, str)]
            first = [i for turn in said for i in pointed_steps(turn)]
            known = probed(item.argument)[0]
            return self._single(item.problem, item.answer, first, rng, known)
        if isinstance(item, SubAnswer):
            return self._single(item.problem, item.answer, (), rng)
        return unsupported(item, self.name)

    def _judge(self, items: list[JudgeItem], rng: random.Random) -> list[Outcome]:
        return [self._one(it, rng) for it in items]

    def _probe(self, items: list[JudgeItem], rng: random.Random) -> list[Probe | None]:
        return [
            self._probe_debate(it, rng)
            if isinstance(it, Transcript)
            else self._probe_argued(it, rng)
            if isinstance(it, Argued)
            else None
            for it in items
        ]

    def _probe_argued(self, item: Argued, rng: random.Random) -> Probe | None:
        """The judge's question to a consultant: the next step by its own order (not one the
        consultant named), checked, while its budget for the answer allows."""
        known = probed(item.argument)[0]
        written = self.task.steps(item.answer)
        order = list(range(min(item.problem.difficulty, len(written))))
        if self.check_order == "random":
            rng.shuffle(order)
        left = [i for i in order if i not in known]
        if not left or (self.competence is not None and len(known) >= self.competence):
            return None
        step = left[0]
        right = self.verifier.check_step(item.problem, item.answer, step)
        return Probe(0, step, written[step], right, self.task.probe_text(written[step], right))

    def _probe_debate(self, debate: Transcript, rng: random.Random) -> Probe | None:
        """Check the step the newest verified claim against each answer points at, if not
        checked yet and that answer's budget allows; one of the two at random."""
        n = debate.problem.difficulty
        known = probed(debate.turns)
        written = (self.task.steps(debate.a), self.task.steps(debate.b))
        claims: dict[int, int] = {}  # the answer attacked: the step, newest claim
        for t in debate.turns:
            if isinstance(t, Turn) and t.verified and t.step is not None and -n <= t.step < n:
                side, step = 1 - t.speaker, t.step % n
                left = self.competence is None or len(known[side]) < self.competence
                if step not in known[side] and step < len(written[side]) and left:
                    claims[side] = step
        if not claims:
            return None
        side = rng.choice(sorted(claims))
        step = claims[side]
        right = self.verifier.check_step(debate.problem, (debate.a, debate.b)[side], step)
        quote = written[side][step]
        return Probe(side, step, quote, right, self.task.probe_text(quote, right))

    def reach(self) -> int | None:
        return self.competence

    def _answer(
        self, problems: list[PublicProblem], rng: random.Random
    ) -> list[JudgmentRecord | Failure]:
        """Works out each problem of at most `competence` steps through its verifier, one check
        a step; a longer one is beyond it."""
        out: list[JudgmentRecord | Failure] = []
        for p in problems:
            if self.competence is not None and p.difficulty > self.competence:
                out.append(Failure("beyond its competence", self.name))
                continue
            answer = self.verifier.work(p)
            verdict = Verdict(1.0, True, self.name, p.difficulty)
            out.append(JudgmentRecord(SubAnswer(p, answer), verdict, "answer"))
        return out


class Oracle(SimulatedRater):
    """Unlimited budget, no bias, no noise: the ceiling every protocol is measured against."""

    def __init__(self, name: str = "oracle") -> None:
        super().__init__(name=name, competence=None)
