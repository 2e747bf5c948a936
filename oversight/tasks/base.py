"""The wall between what protocols may see and the ground truth.

A task hands out `PublicProblem`s (prompt text and what the prompt itself shows) and keeps the
answers in a `TruthStore`. The store refuses every read made outside a `truth_access()` block,
and only three doors open one: a judge's metered verifier (`check_step`; `work`, for a judge
that answers a problem within its competence itself), the evaluation harness
(`oversight/experiment/harness.py`), and a task's own `attention_checks`, which builds items
with known answers for scoring human judges. `tests/test_truth_wall.py` checks the runtime
guard, that no other code opens the wall, and that `protocols/` and `oversight/judges/` never
name it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol as TypingProtocol

_TRUTH_OPEN: contextvars.ContextVar[bool] = contextvars.ContextVar("truth_open", default=False)


class GroundTruthAccessError(RuntimeError):
    """Raised when code outside the verifier or the harness tries to read an answer."""


@dataclass(frozen=True)
class PublicProblem:
    """Everything a protocol, a judge or the policy may know about a problem."""

    id: str
    prompt: str
    difficulty: int
    """number of reasoning steps; visible in the prompt itself"""
    belief: int | None
    """the user's stated belief ("I think it is 7"), right or wrong; None when absent"""


@dataclass(frozen=True)
class Truth:
    answer: int
    steps: tuple[str, ...]


@contextlib.contextmanager
def truth_access() -> Iterator[None]:
    """Open the wall for the enclosed block. Only the three doors named above may call this."""
    token = _TRUTH_OPEN.set(True)
    try:
        yield
    finally:
        _TRUTH_OPEN.reset(token)


class TruthStore:
    """Answers keyed by problem id, readable only inside `truth_access()`."""

    def __init__(self) -> None:
        self.__answers: dict[str, Truth] = {}

    def put(self, problem_id: str, truth: Truth) -> None:
        self.__answers[problem_id] = truth

    def get(self, problem_id: str) -> Truth:
        if not _TRUTH_OPEN.get():
            raise GroundTruthAccessError(
                "ground truth is only readable by a judge's verifier or the evaluation harness"
            )
        return self.__answers[problem_id]

    def __len__(self) -> int:
        return len(self.__answers)


class Task(TypingProtocol):
    """What the core needs from a task family (arithmetic now; more later)."""

    name: str
    truth: TruthStore

    def sample(self, n: int, seed: int, split: str = "train") -> list[PublicProblem]: ...

    def corpus(self, n: int, seed: int) -> list[tuple[str, str]]: ...

    def steps(self, response: str) -> list[str]: ...

    def final_answer(self, response: str) -> int | None: ...

    def agrees_with_user(self, problem: PublicProblem, response: str) -> bool: ...

    def render(self, steps: Sequence[str]) -> str:
        """A worked answer with these steps (what a judge writes when it answers itself)."""
        ...

    def probe_text(self, quote: str, right: bool) -> str:
        """What a judge says it found when it tested a step (`quote`, as written) mid-debate."""
        ...

    def attention_checks(self, n: int, seed: int) -> list[tuple[PublicProblem, str, str]]:
        """Up to n (problem, right answer, wrong answer) that a careful judge always gets right.

        One of the doors through the truth wall: it reads answers to build items whose right
        answer is known, which score judges (gold items) and never reach a protocol.
        """
        ...


class PublicText:
    """A task's text format, without its truth store: how a protocol reads answers and writes
    the prompts of the turns it asks for (a critique, a revision)."""

    NAMES = (
        "steps",
        "final_answer",
        "agrees_with_user",
        "answer_follows",
        "critique_prompt",
        "critique_text",
        "parse_critique",
        "revision_prompt",
        "debate_prompt",
        "consultancy_prompt",
        "parse_turn",
        "with_answer",
        "answers",
        "subproblem",
        "parts",
        "follows",
        "compose",
    )

    def __init__(self, task: Task) -> None:
        self._task = task

    def __getattr__(self, name: str) -> Any:
        if name not in self.NAMES:
            raise AttributeError(f"{name!r} is not part of a task's public text")
        method = getattr(self._task, name, None)
        if method is None:
            raise AttributeError(f"task {self._task.name!r} has no {name!r}")
        return method


class Verifier:
    """Answers one bounded question, "is step i of this response right?", at 1 unit per check.

    Each judge owns one, so its cost is metered per judge.
    """

    def __init__(self, task: Task) -> None:
        self._task = task
        self.checks = 0

    def check_step(self, problem: PublicProblem, response: str, i: int) -> bool:
        self.checks += 1
        steps = self._task.steps(response)
        if i >= len(steps):
            return False
        with truth_access():
            truth = self._task.truth.get(problem.id)
        if i == problem.difficulty - 1:
            # The last step carries the conclusion: extra steps or a stated answer that does not
            # follow make it wrong even when the arithmetic of the step is right.
            if (
                len(steps) != problem.difficulty
                or self._task.final_answer(response) != truth.answer
            ):
                return False
        return i < len(truth.steps) and steps[i] == truth.steps[i]

    def work(self, problem: PublicProblem) -> str:
        """The right worked answer to `problem`, at 1 unit per step: how a judge that answers a
        problem itself (amplification's overseer) works it out. Only a judge whose competence
        covers the problem's steps may ask (`SimulatedRater.answer`)."""
        self.checks += problem.difficulty
        with truth_access():
            truth = self._task.truth.get(problem.id)
        return self._task.render(truth.steps)
