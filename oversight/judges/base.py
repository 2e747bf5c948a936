"""One batched interface for every judge: simulated raters, humans (through the store), LLMs.

`decide` takes a list of items and returns, in the same order, a `Verdict` or a typed `Failure`
for each (no -1 sentinels). An item is one of four kinds (`JudgeItem`): a pair to compare
(`Comparison`, optionally with a critique of each answer), one answer with the argument for it
to accept or reject (`Argued`: consultancy), a debate between two answers (`Transcript`), and
one answer to a sub-problem to accept or reject (`SubAnswer`). For two-sided items `decide`
randomises which answer is shown first and maps the answer back, so a judge with a position
bias cannot favour the protocol's `a` slot; `compare` is `decide` for pairs.

Step numbers in item fields (`Turn.step`) count from 0, as `Verifier.check_step` does, and a
negative one counts from the end (-1: the last step, which carries the stated answer). Step
numbers in text ("Step 2 is wrong.") count from 1, as a reader does; `pointed_steps` reads them.
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

from oversight.checks import ensure
from oversight.tasks import PublicProblem, Task, Verifier


class _Item:
    kind: ClassVar[str]
    """the item's kind: its name in the store and in `label_accuracy`"""
    problem: PublicProblem

    def payload(self) -> dict[str, Any]:
        """Every field but the problem, JSON-ready (the store keeps the problem in columns)."""
        d = asdict(self)  # type: ignore[call-overload]  # every kind is a dataclass
        del d["problem"]
        return d


@dataclass(frozen=True)
class Comparison(_Item):
    """Which of two answers is better; a critique of either, when given, is shown with it."""

    kind: ClassVar[str] = "pair"
    problem: PublicProblem
    a: str
    b: str
    critique_a: str | None = None
    critique_b: str | None = None


@dataclass(frozen=True)
class Probe:
    """What the judge found when it checked one step between rounds of a debate or a consultancy
    (interactive mode): the debaters, or the consultant, read `text` before they speak again."""

    side: int
    """the answer checked: 0 for a (a consultant's answer), 1 for b"""
    step: int
    """the step checked (from 0)"""
    quote: str
    """the step as written in that answer"""
    right: bool
    text: str

    def __post_init__(self) -> None:
        if self.side not in (0, 1):
            raise ValueError(f"a probe's side is 0 (answer a) or 1 (answer b), got {self.side!r}")


@dataclass(frozen=True)
class Argued(_Item):
    """One answer and the turns of the argument for it, to accept or reject (consultancy)."""

    kind: ClassVar[str] = "argued"
    problem: PublicProblem
    answer: str
    argument: tuple[str | Probe, ...] = ()
    """the consultant's turns in order, with the judge's probes between rounds"""


@dataclass(frozen=True)
class Turn:
    """One turn of a debate."""

    speaker: int
    """0: the side of answer a, 1: the side of answer b"""
    text: str
    step: int | None = None
    """the step of the other side's answer this turn claims is wrong (from 0)"""
    quote: str | None = None
    """text this turn says the other side's answer contains"""
    verified: bool | None = None
    """whether `quote` is in the other side's answer, verbatim (`verify_quotes`); None: unchecked"""

    def __post_init__(self) -> None:
        if self.speaker not in (0, 1):
            raise ValueError(f"a turn's speaker is 0 (a's side) or 1 (b's), got {self.speaker!r}")


@dataclass(frozen=True)
class Transcript(_Item):
    """A debate between the sides of answers a and b: which side wins."""

    kind: ClassVar[str] = "debate"
    problem: PublicProblem
    a: str
    b: str
    turns: tuple[Turn | Probe, ...] = ()
    """the debaters' turns in order, with the judge's probes between rounds"""


@dataclass(frozen=True)
class SubAnswer(_Item):
    """An answer to a sub-problem (amplification), to accept or reject."""

    kind: ClassVar[str] = "subquestion"
    problem: PublicProblem
    answer: str


JudgeItem = Comparison | Argued | Transcript | SubAnswer
TWO_SIDED: tuple[type, ...] = (Comparison, Transcript)
"""the kinds that set two answers against each other; the others have one to accept or reject"""


def item_from_payload(kind: str, problem: PublicProblem, payload: Mapping[str, Any]) -> JudgeItem:
    """The item whose `kind` and `payload()` these are, on `problem` (the store's round trip)."""
    if kind == Comparison.kind:
        return Comparison(problem, **payload)
    if kind == Argued.kind:
        argument = (Probe(**t) if isinstance(t, dict) else t for t in payload["argument"])
        return Argued(problem, payload["answer"], tuple(argument))
    if kind == Transcript.kind:
        turns = tuple(Probe(**t) if "side" in t else Turn(**t) for t in payload["turns"])
        return Transcript(problem, payload["a"], payload["b"], turns)
    if kind == SubAnswer.kind:
        return SubAnswer(problem, **payload)
    raise ValueError(f"unknown item kind {kind!r}")


def swapped(item: JudgeItem) -> JudgeItem:
    """A two-sided item with its sides exchanged (answers, critiques, speakers); others as they are."""
    if isinstance(item, Comparison):
        return replace(
            item, a=item.b, b=item.a, critique_a=item.critique_b, critique_b=item.critique_a
        )
    if isinstance(item, Transcript):
        turns = tuple(
            replace(t, side=1 - t.side)
            if isinstance(t, Probe)
            else replace(t, speaker=1 - t.speaker)
            for t in item.turns
        )
        return replace(item, a=item.b, b=item.a, turns=turns)
    return item


def verify_quotes(transcript: Transcript) -> Transcript:
    """Each quoting turn marked verified iff its quote is in the other side's answer, verbatim.

    Reading text costs no verifier check: a quote is a claim anyone can check for free, unlike
    whether a step is right.
    """
    answers = (transcript.a, transcript.b)
    turns = tuple(
        t
        if isinstance(t, Probe) or t.quote is None
        else replace(t, verified=bool(t.quote) and t.quote in answers[1 - t.speaker])
        for t in transcript.turns
    )
    return replace(transcript, turns=turns)


_STEP_RE = re.compile(r"\bstep (\d+)\b", re.IGNORECASE)
_CONCLUSION_RE = re.compile(r"does not follow", re.IGNORECASE)


def pointed_steps(text: str | None) -> list[int]:
    """The steps a critique or an argument points at, from 0; -1 for the conclusion.

    Reads the critics' format (the task's `critique_text`, `oversight/roles/critic.py`): "Step 2
    is wrong." points at the second step, "The answer does not follow from the work." at the
    conclusion, which the last step carries, and "No error found." at nothing. Looser than the
    task's own parser on purpose: an argument may name steps in any sentence ("step 2 is right").
    """
    if not text:
        return []
    steps = [int(n) - 1 for n in _STEP_RE.findall(text) if int(n) >= 1]
    if _CONCLUSION_RE.search(text):
        steps.append(-1)
    return steps


@dataclass(frozen=True)
class Verdict:
    prob_a: float
    """soft verdict: the judge's probability that `a` is the better answer (debate: that a's side
    wins); for one-answer items, the probability of accepting the answer"""
    prefers_a: bool
    """hard verdict: `a` is better (debate: a's side wins); for one-answer items, accept"""
    judge: str
    """who answered (a pool member, a human's id, a model name)"""
    checks: int = 0
    """verifier checks spent on this decision"""
    seconds: float = 0.0

    def flipped(self) -> Verdict:
        """The same verdict about the item with its sides exchanged."""
        return replace(self, prob_a=1.0 - self.prob_a, prefers_a=not self.prefers_a)


@dataclass(frozen=True)
class Failure:
    """An item the judge could not decide: timeout, abstention, unparsable LLM output, a kind
    it does not judge."""

    reason: str
    judge: str


Outcome = Verdict | Failure


def unsupported(item: JudgeItem, judge: str) -> Failure:
    """What a judge answers for a kind of item it cannot decide."""
    return Failure(f"unsupported item kind: {item.kind}", judge)


@dataclass(frozen=True)
class JudgmentRecord:
    """One judgment a protocol asked for; every one is stored, and scored by the harness."""

    item: JudgeItem
    outcome: Outcome
    phase: str
    """"labels" (before RL), "refresh" (during RL), or a protocol's own phase name"""


@dataclass
class Cost:
    """What a judge has spent so far: decided items, verifier checks, judge-seconds."""

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

    def decide(self, items: Sequence[JudgeItem], rng: random.Random) -> list[Outcome]:
        """A verdict or a failure per item, in order; quotes come verified, sides shuffled."""
        # One draw per item, two-sided or not, so a batch of pairs sees the draws it always did.
        swaps = [rng.random() < 0.5 and isinstance(it, TWO_SIDED) for it in items]
        return self._decide(items, swaps, rng)

    def decide_both_ways(self, items: Sequence[JudgeItem], rng: random.Random) -> list[Outcome]:
        """Each two-sided item shown both ways round, the two verdicts combined: the mean soft
        verdict, and the side both hard verdicts chose (a coin at its odds when they split).
        Which side wins cannot depend on the order the protocol wrote them in; a failure either
        way fails the item."""
        n = len(items)
        two = [isinstance(it, TWO_SIDED) for it in items]
        outcomes = self._decide([*items, *items], [False] * n + two, rng)
        out: list[Outcome] = []
        for x, y in zip(outcomes[:n], outcomes[n:], strict=True):
            if not isinstance(x, Verdict) or not isinstance(y, Verdict):
                out.append(x if isinstance(x, Failure) else y)
                continue
            p = (x.prob_a + y.prob_a) / 2
            hard = x.prefers_a if x.prefers_a == y.prefers_a else rng.random() < p
            out.append(Verdict(p, hard, x.judge, x.checks + y.checks, x.seconds + y.seconds))
        return out

    def _decide(
        self, items: Sequence[JudgeItem], swaps: Sequence[bool], rng: random.Random
    ) -> list[Outcome]:
        shown = [
            swapped(_verified(it)) if s else _verified(it)
            for it, s in zip(items, swaps, strict=True)
        ]
        outcomes = self._judge(shown, rng)
        out: list[Outcome] = []
        for o, s in zip(outcomes, swaps, strict=True):
            if isinstance(o, Verdict):
                self.cost.labels += 1
                self.cost.checks += o.checks
                self.cost.seconds += o.seconds
                if s:
                    o = o.flipped()
            out.append(o)
        return out

    def answer(
        self, problems: Sequence[PublicProblem], rng: random.Random
    ) -> list[JudgmentRecord | Failure]:
        """Its own worked answer to each problem it can work out (amplification's overseer), as
        a record of that answer accepted by it (a `SubAnswer` with the checks it spent), or a
        Failure: beyond its reach, or a judge that does not answer. Each answer is a label."""
        out = self._answer(list(problems), rng)
        for o in out:
            if isinstance(o, JudgmentRecord) and isinstance(o.outcome, Verdict):
                self.cost.labels += 1
                self.cost.checks += o.outcome.checks
        return out

    def ask(self, items: Sequence[Transcript | Argued], rng: random.Random) -> list[Probe | None]:
        """Between rounds of a debate or a consultancy: per item, the one step the judge checks
        and tells the speakers about, or None (it asks nothing). Each probe costs a check, and
        comes out of the budget the judge's decision has for that answer."""
        out = self._probe([_verified(it) for it in items], rng)
        self.cost.checks += sum(p is not None for p in out)
        return out

    def _probe(self, items: list[JudgeItem], rng: random.Random) -> list[Probe | None]:
        return [None] * len(items)

    def reach(self) -> int | None:
        """The longest problem (in steps) it works out itself; None: any."""
        return 0

    def _answer(
        self, problems: list[PublicProblem], rng: random.Random
    ) -> list[JudgmentRecord | Failure]:
        return [Failure("does not answer problems", self.name) for _ in problems]

    def compare(self, items: Sequence[Comparison], rng: random.Random) -> list[Outcome]:
        """`decide` for pairs: which answer of each is better."""
        return self.decide(items, rng)

    @abstractmethod
    def _judge(self, items: list[JudgeItem], rng: random.Random) -> list[Outcome]:
        """Decide items as shown (`a` is displayed first); `unsupported(item, ...)` for a kind
        the judge cannot decide."""


def _verified(item: JudgeItem) -> JudgeItem:
    return verify_quotes(item) if isinstance(item, Transcript) else item
