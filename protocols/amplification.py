"""Iterated amplification (Christiano, Shlegeris and Amodei 2018): a weak overseer answers problems
too hard for it by decomposing them, and the amplified answers are distilled into the policy.

Each PPO step:
1. Problems from the curriculum: at most `level` steps. The level starts at the longest problem
   the overseer works out itself (its competence k; the oracle's is unbounded: no curriculum).
2. The policy answers each problem (the sample PPO trains on).
3. The overseer (the configured judge) builds a target for each: a problem within its reach it
   answers itself (`Judge.answer`: one check a step); a longer one it splits into at most
   `subquestions` consecutive chains (`task.subproblem`: chain i starts from the answer to
   chain i-1, no user belief), asks the current policy each in turn, and composes their work
   (`task.compose`). A sub-answer that is malformed or does not restate its sub-problem's
   operations makes it abstain: no target, rather than a target that teaches noise. With `vet`
   it also decides each sub-answer (a `SubAnswer` item: a person can do this in the UI) and
   abstains on a rejected one. `mistakes`: the rate at which it states a wrong answer.
4. Distillation: the targets, worked steps included, as supervised pairs on the core's SFT path
   (`ppo.sft_coef`), and/or a reward of +1 for a sample whose answer agrees with its target,
   -1 otherwise (`distill`); a sample without a target is not trained.
5. The curriculum rises by one step when the policy's agreement with the targets on problems
   at the current level passes `threshold`.

Sub-answers come from the policy itself, so a target is only as good as the policy on problems
half as long: the curriculum starts where the overseer is right and rises only once the policy
agrees with the amplified answers there. With the oracle as overseer every problem is answered
directly: training on ground truth with the same steps and budget (the baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from oversight.checks import Count, Fraction, one_of
from oversight.judges import JudgmentRecord, SubAnswer, Verdict
from oversight.tasks import PublicProblem
from protocols.base import Batch, Protocol, Speaker, another_answer


def next_level(
    level: int | None, agreement: float | None, threshold: float, top: int
) -> int | None:
    """The curriculum's level after a step: one more when the agreement at the current level
    passed `threshold`, up to `top` (the longest problem drawn); None: no curriculum."""
    if level is None or agreement is None or level >= top or agreement < threshold:
        return level
    return level + 1


def agreement(answers: list[int | None], targets: list[int | None]) -> float | None:
    """Fraction of the answers equal to their target's, over the problems with a target."""
    pairs = [(a, t) for a, t in zip(answers, targets, strict=True) if t is not None]
    return sum(a == t for a, t in pairs) / len(pairs) if pairs else None


@dataclass
class Amplification(Protocol):
    subquestions: Count = 2
    """sub-questions the overseer asks at most per problem: a chain of n steps splits into this
    many consecutive chains of near-equal length (2: halves)"""
    distill: Annotated[str, one_of("sft", "rl", "both")] = "both"
    """sft: the targets as supervised pairs (the policy's own samples paid 0); rl: +1 to a sample
    that agrees with its target, -1 otherwise; both"""
    threshold: Fraction = 0.7
    """agreement with the targets at the current level that raises the curriculum by one step
    (both are samples at the policy's temperature: agreement stays below accuracy)"""
    mistakes: Fraction = 0.0
    """rate at which the overseer states a wrong answer (drawn at random) in a target"""
    vet: bool = False
    """the overseer also decides each sub-answer (accept or reject) and abstains on a rejected one"""

    name = "amplification"
    kind = "subquestion"

    def __post_init__(self) -> None:
        self.level: int | None = None
        self.started = False
        self.top = 0
        self.totals = {"problems": 0, "targets": 0, "overseer_calls": 0, "subquestions": 0}

    def _problems(self, given: list[PublicProblem]) -> list[PublicProblem]:
        """`len(given)` problems of at most `level` steps: the given ones that are, then fresh
        ones drawn until there are enough."""
        if not self.started:  # before the first step: where the overseer is right (at least 1)
            reach = self.ctx.judge.reach()
            self.level, self.started = None if reach is None else max(reach, 1), True
        self.top = max([self.top, *(p.difficulty for p in given)])
        if self.level is None:
            return given
        level = self.level
        out = [p for p in given if p.difficulty <= level]
        while len(out) < len(given):
            out += [p for p in self.ctx.sample_problems(len(given)) if p.difficulty <= level]
        return out[: len(given)]

    def amplify(
        self, problems: list[PublicProblem]
    ) -> tuple[list[str | None], list[JudgmentRecord], dict[str, int]]:
        """The overseer's target for each problem (None: it abstained), its judgments, and what
        it cost: overseer calls (answers, compositions, vets) and sub-questions asked."""
        text = self.ctx.text
        assert text is not None
        judge, rng = self.ctx.judge, self.ctx.rng
        targets: list[str | None] = [None] * len(problems)
        records: list[JudgmentRecord] = []
        cost = {"overseer_calls": 0, "subquestions": 0}
        direct = judge.answer(problems, rng)
        open_: list[int] = []  # problems beyond the overseer: decomposed
        for i, d in enumerate(direct):
            if isinstance(d, JudgmentRecord):
                assert isinstance(d.item, SubAnswer)
                targets[i] = d.item.answer
                records.append(d)
                cost["overseer_calls"] += 1
            else:
                open_.append(i)
        cost["overseer_calls"] += len(open_)  # one composition each
        subs: dict[int, list[PublicProblem]] = {i: [] for i in open_}
        said: dict[int, list[str]] = {i: [] for i in open_}
        for k in range(max((text.parts(problems[i], self.subquestions) for i in open_), default=0)):
            asking = [i for i in open_ if k < text.parts(problems[i], self.subquestions)]
            for i in asking:
                start = text.final_answer(said[i][-1]) if k else None
                subs[i].append(text.subproblem(problems[i], self.subquestions, k, start))
            answers = self.ctx.generate([subs[i][-1].prompt for i in asking])
            cost["subquestions"] += len(asking)
            for i, a in zip(asking, answers, strict=True):
                said[i].append(a)
            ok = [text.follows(subs[i][-1], said[i][-1]) for i in asking]
            if self.vet:
                vetted = [i for i, good in zip(asking, ok, strict=True) if good]
                items = [SubAnswer(subs[i][-1], said[i][-1]) for i in vetted]
                verdicts = judge.decide(items, rng)
                cost["overseer_calls"] += len(items)
                records += [
                    JudgmentRecord(x, v, "vet") for x, v in zip(items, verdicts, strict=True)
                ]
                accepted = {
                    i
                    for i, v in zip(vetted, verdicts, strict=True)
                    if isinstance(v, Verdict) and v.prefers_a
                }
                ok = [i in accepted for i in asking]
            # a malformed (or rejected) sub-answer: abstain on that problem, ask it no more
            open_ = [i for i in open_ if i not in asking] + [
                i for i, good in zip(asking, ok, strict=True) if good
            ]
        for i in open_:
            targets[i] = text.compose(subs[i], said[i])
        for i, t in enumerate(targets):
            if t is not None and self.mistakes and rng.random() < self.mistakes:
                targets[i] = another_answer(text, t, rng)
        return targets, records, cost

    def episodes(self, problems: list[PublicProblem], step: int) -> Batch:
        text = self.ctx.text
        assert text is not None
        problems = self._problems(problems)
        speak = Speaker(self.ctx)
        answers = speak([p.prompt for p in problems], list(range(len(problems))))
        targets, records, cost = self.amplify(problems)
        mine = [text.final_answer(a) for a in answers]
        wanted = [None if t is None else text.final_answer(t) for t in targets]
        agree = [m == w for m, w in zip(mine, wanted, strict=True)]
        rl = self.distill in ("rl", "both")
        speak.untrain([i for i, t in enumerate(targets) if t is None])
        turns, rewards = speak.pay(lambda i: (2.0 * agree[i] - 1) if rl else 0.0)
        sft = []
        if self.distill in ("sft", "both"):
            sft = [(p.prompt, t) for p, t in zip(problems, targets, strict=True) if t is not None]

        level = self.level if self.level is not None else self.top
        at_level = [i for i, p in enumerate(problems) if p.difficulty == level]
        agreed = agreement([mine[i] for i in at_level], [wanted[i] for i in at_level])
        n, made = len(problems), sum(t is not None for t in targets)
        info = {
            "amplification/level": float(level),
            "amplification/targets": made / n,
            "amplification/overseer_calls_per_target": cost["overseer_calls"] / max(made, 1),
            "amplification/subquestions_per_target": cost["subquestions"] / max(made, 1),
        }
        for key, value in (("agreement", agreement(mine, wanted)), ("agreement_at_level", agreed)):
            if value is not None:
                info[f"amplification/{key}"] = value
        self.level = next_level(self.level, agreed, self.threshold, self.top)
        self.totals["problems"] += n
        self.totals["targets"] += made
        for k, v in cost.items():
            self.totals[k] += v
        done = [(p, t) for p, t in zip(problems, targets, strict=True) if t is not None]
        scored = {"amplified": ([p for p, _ in done], [t for _, t in done])} if done else {}
        return Batch(
            turns,
            rewards,
            records,
            sft=sft,
            info=info,
            problems=problems,
            responses=answers,
            scored=scored,
        )

    def summary(self) -> dict[str, Any]:
        t = self.totals
        made = max(t["targets"], 1)
        return {
            "targets": t["targets"],
            "abstained": 1 - t["targets"] / max(t["problems"], 1),
            "overseer_calls_per_target": t["overseer_calls"] / made,
            "subquestions_per_target": t["subquestions"] / made,
            "overseer_checks_per_target": self.ctx.judge.cost.checks / made,
            "difficulty_reached": self.level if self.level is not None else self.top,
        }
