"""Consultancy (Michael et al. 2023; Khan et al. 2024): one consultant argues for an answer, the
judge accepts or rejects it. The baseline debate is measured against.

1. The consultant's answer: in `open` mode its own sample of the problem (Kenton et al. 2024's
   open consultancy: the model picks its side); in `assigned` mode, half the time its own and
   half the time another, as in the literature: its second sample when that concludes
   differently, else its work concluding another answer drawn at random. An assigned answer is
   not trained: the consultant did not choose it.
2. `rounds` turns, each reading the answer and the turns so far, vouching for one step of the
   answer ("Step 2 is right: 7*2=4.", oversight/tasks/arithmetic.py). The judge checks the
   steps the argument names first, then reads on as far as its budget goes.
   `interactive`: between rounds the judge asks about one step of its own choosing, checks
   it, and the consultant reads what it found (`Judge.ask`), so not every check goes where the
   consultant points.
3. Reward: accepted +1, rejected -1 (`soft`: 2p - 1), to every turn and to a chosen answer.

A consultant of a wrong answer gains by naming right steps: the judge's checks go to them and
miss the error. Nobody argues back; that is what debate adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from oversight.checks import Count, one_of
from oversight.judges import Argued, Outcome, Verdict
from oversight.tasks import PublicProblem
from protocols.base import (
    Batch,
    JudgmentRecord,
    Protocol,
    Speaker,
    another_answer,
    verdict_reward,
)


@dataclass
class Consultancy(Protocol):
    rounds: Count = 1
    """turns the consultant writes"""
    mode: Annotated[str, one_of("open", "assigned")] = "open"
    """argue for its own answer, or for its own or another, 50/50"""
    soft: bool = False
    """reward 2p - 1 from the judge's soft verdict instead of +-1"""
    interactive: bool = False
    """between rounds the judge checks one step of its choosing and says what it found"""

    name = "consultancy"
    kind = "argued"

    def argue(self, cases: list[Argued], speak: Speaker, ids: list[int]) -> list[Argued]:
        """The consultant's turns for each answer (no argument yet), sampled together; the
        samples for case j belong to `ids[j]`."""
        text = self.ctx.text
        assert text is not None
        for r in range(self.rounds):
            if self.interactive and r > 0:
                probes = self.ctx.judge.ask(cases, self.ctx.rng)
                cases = [
                    c if p is None else Argued(c.problem, c.answer, (*c.argument, p))
                    for c, p in zip(cases, probes, strict=True)
                ]
            prompts = [
                text.consultancy_prompt(
                    c.problem.prompt,
                    c.answer,
                    [t if isinstance(t, str) else t.text for t in c.argument],
                )
                for c in cases
            ]
            said = speak(prompts, ids)
            cases = [
                Argued(c.problem, c.answer, (*c.argument, t))
                for c, t in zip(cases, said, strict=True)
            ]
        return cases

    def other(self, mine: str, second: str) -> str:
        """An answer other than `mine`: `second` when it concludes differently, else `mine`'s
        work concluding another answer drawn at random."""
        text = self.ctx.text
        assert text is not None
        if text.final_answer(second) != text.final_answer(mine):
            return second
        return another_answer(text, mine, self.ctx.rng) or second

    def judge(self, cases: list[Argued]) -> list[Outcome]:
        return self.ctx.judge.decide(cases, self.ctx.rng)

    def episodes(self, problems: list[PublicProblem], step: int) -> Batch:
        speak = Speaker(self.ctx)
        n = len(problems)
        prompts = [p.prompt for p in problems]
        if self.mode == "open":
            answers = speak(prompts, list(range(n)))
            argued = answers
        else:
            samples = speak(prompts * 2, list(range(n)) * 2)
            answers = samples[:n]
            flip = [self.ctx.rng.random() < 0.5 for _ in range(n)]
            argued = [
                self.other(a, b) if f else a
                for a, b, f in zip(samples[:n], samples[n:], flip, strict=True)
            ]
            speak.untrain(list(range(2 * n)))
        cases = [Argued(p, a) for p, a in zip(problems, argued, strict=True)]
        cases = self.argue(cases, speak, list(range(n)))
        verdicts = self.judge(cases)
        paid = [verdict_reward(v, self.soft) for v in verdicts]
        turns, rewards = speak.pay(lambda i: paid[i])
        records = [
            JudgmentRecord(c, v, "consultancy") for c, v in zip(cases, verdicts, strict=True)
        ]
        accepted = [isinstance(v, Verdict) and v.prefers_a for v in verdicts]
        info = {"consultancy/accepted": sum(accepted) / n}
        return Batch(turns, rewards, records, info=info, problems=problems, responses=answers)
