"""Debate (Irving, Christiano, Amodei 2018): two debaters argue, the judge checks only the point
they disagree on.

1. Two debaters, the policy in self-play, each commit to an answer: their own sample of the
   problem. Precommitment holds: the answers are fixed before any turn and the judge reads them
   as they were committed. Pairs whose answers agree have nothing to debate: `agree=assign` gives
   the second debater the first one's work concluding another answer (not the policy's sample,
   so not trained); `agree=skip` leaves them out.
2. `rounds` rounds. In each, a debater reads both answers and the turns so far and writes one
   turn: a step of the other side's answer is wrong (quoting it), its conclusion does not follow,
   or a concession (the task's text, oversight/tasks/arithmetic.py). `sequential`: b's side reads
   a's turn of the same round; otherwise both speak at once. One batched rollout per speaker and
   round covers every debate of the batch.
   `interactive`: between rounds the judge tests one claimed step (`Judge.ask`) and both
   debaters read what it found before they speak again (Khan et al. 2024's interactive debate).
3. The judge reads the transcript: each quote comes marked verified or not, for free; whether a
   contested step is right costs it a check. It sees the debate both ways round and the two
   verdicts are combined (`Judge.decide_both_ways`).
4. Every turn of the winner and its committed answer gets +1, the loser's -1 (`soft`: 2p - 1
   from the combined soft verdict). `train_answers=false` trains the turns alone: the judge's
   verdict then shapes how the policy argues, not which answer it commits to.

`opponent=frozen` sets the policy against a frozen copy of where RL started (the KL reference):
b's side, answer and turns, is sampled from it, text only, so only a's side trains (the
literature's alternative to self-play: an opponent that does not learn alongside).

`best_of` > 1 makes debaters stronger at no training cost: each turn is the best of that many
samples by the judge's own verdict on the debate ending with it, shown both ways round (Khan et
al. 2024 pick arguments the same way); the judge's cost counts these previews, and the discarded
samples are not trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from oversight.checks import Count, one_of
from oversight.judges import Outcome, Probe, Transcript, Turn, Verdict
from oversight.tasks import PublicProblem
from protocols.base import (
    Batch,
    JudgmentRecord,
    Protocol,
    ProtocolContext,
    Speaker,
    another_answer,
    verdict_reward,
)


@dataclass
class Debate(Protocol):
    rounds: Count = 1
    """turns each debater writes"""
    sequential: bool = True
    """b's side reads a's turn of the same round (false: both speak at once)"""
    agree: Annotated[str, one_of("assign", "skip")] = "assign"
    """pairs whose answers agree: the second debater is assigned another answer, or no debate"""
    soft: bool = False
    """reward 2p - 1 from the judge's soft verdict instead of +-1"""
    best_of: Count = 1
    """samples per turn, the judge's favourite kept"""
    opponent: Annotated[str, one_of("self", "frozen")] = "self"
    """b's debater: the policy (self-play) or the frozen reference model, whose turns never train"""
    interactive: bool = False
    """between rounds the judge tests one claimed step and tells both sides what it found"""
    train_answers: bool = True
    """the committed answers train with the turns (false: only the turns, so RL sharpens the
    arguments and leaves which answer the policy commits to as it was)"""

    name = "debate"
    kind = "debate"

    def assign(self, answers: list[str]) -> list[str | None]:
        """Another answer for a debater whose opponent committed to `answers[i]`: its work
        concluding a different answer, drawn at random; None when it is not well-formed."""
        text = self.ctx.text
        assert text is not None
        return [another_answer(text, a, self.ctx.rng) for a in answers]

    def _turn(self, speaker: int, said: str) -> Turn:
        text = self.ctx.text
        assert text is not None
        step, quote, vouch = text.parse_turn(said)
        return Turn(speaker, said, None if vouch else step, quote)

    def _pick(self, debates: list[Transcript], side: int, cands: list[list[Turn]]) -> list[int]:
        """Per debate, the index of the candidate turn the judge likes best for `side`: its
        verdict on the debate ending with each, both ways round; the first on ties."""
        flat = [
            Transcript(d.problem, d.a, d.b, (*d.turns, c))
            for d, cs in zip(debates, cands, strict=True)
            for c in cs
        ]
        verdicts = self.ctx.judge.decide_both_ways(flat, self.ctx.rng)
        n = self.best_of
        best = []
        for i in range(len(debates)):
            scores = [_wins(v, side) for v in verdicts[i * n : (i + 1) * n]]
            best.append(scores.index(max(scores)))
        return best

    def debate(
        self, debates: list[Transcript], speak: Speaker, ids: list[int] | None = None
    ) -> list[Transcript]:
        """The rounds of every debate (committed answers, no turns yet), sampled together; the
        samples of debate j belong to `(ids[j], side)`."""
        text = self.ctx.text
        assert text is not None
        ids = list(range(len(debates))) if ids is None else ids
        n = self.best_of
        for r in range(self.rounds):
            if self.interactive and r > 0:
                probes = self.ctx.judge.ask(debates, self.ctx.rng)
                debates = [
                    d if p is None else Transcript(d.problem, d.a, d.b, (*d.turns, p))
                    for d, p in zip(debates, probes, strict=True)
                ]
            for group in ([0], [1]) if self.sequential else ([0, 1],):
                said: dict[int, list[Turn]] = {}
                for side in group:  # all read the transcripts as they stand before the group
                    prompts = [
                        text.debate_prompt(
                            d.problem.prompt,
                            *((d.a, d.b) if side == 0 else (d.b, d.a)),
                            [t.text for t in d.turns],
                        )
                        for d in debates
                    ]
                    owners = [(i, side) for i in ids for _ in range(n)]
                    texts = speak([p for p in prompts for _ in range(n)], owners)
                    cands = [
                        [self._turn(side, t) for t in texts[j * n : (j + 1) * n]]
                        for j in range(len(debates))
                    ]
                    best = self._pick(debates, side, cands) if n > 1 else [0] * len(debates)
                    speak.untrain(
                        [j * n + k for j, b in enumerate(best) for k in range(n) if k != b]
                    )
                    said[side] = [c[b] for c, b in zip(cands, best, strict=True)]
                for side in group:
                    debates = [
                        Transcript(d.problem, d.a, d.b, (*d.turns, t))
                        for d, t in zip(debates, said[side], strict=True)
                    ]
        return debates

    def judge(self, debates: list[Transcript]) -> list[Outcome]:
        """The judge's verdict on each debate, shown both ways round."""
        return self.ctx.judge.decide_both_ways(debates, self.ctx.rng)

    def episodes(self, problems: list[PublicProblem], step: int) -> Batch:
        text = self.ctx.text
        assert text is not None
        speak = Speaker(self.ctx) if self.opponent == "self" else AgainstFrozen(self.ctx)
        n = len(problems)
        owners = [(i, side) for side in (0, 1) for i in range(n)]
        answers = speak([p.prompt for p in problems] * 2, owners)
        if not self.train_answers:
            speak.untrain(list(range(2 * n)))
        a, b = answers[:n], answers[n:]
        if self.agree == "assign":
            agree = [i for i in range(n) if text.final_answer(a[i]) == text.final_answer(b[i])]
            for i, other in zip(agree, self.assign([a[i] for i in agree]), strict=True):
                b[i] = b[i] if other is None else other
            speak.untrain([n + i for i in agree])  # assigned: not what the policy wrote
        live = [i for i in range(n) if text.final_answer(a[i]) != text.final_answer(b[i])]
        dead = set(range(n)) - set(live)
        speak.untrain([i + n * side for i in dead for side in (0, 1)])
        start = [Transcript(problems[i], a[i], b[i]) for i in live]
        debates = self.debate(start, speak, live)
        verdicts = self.judge(debates)
        won = {i: verdict_reward(v, self.soft) for i, v in zip(live, verdicts, strict=True)}
        turns, rewards = speak.pay(lambda o: won.get(o[0], 0.0) * (1 - 2 * o[1]))
        records = [JudgmentRecord(d, v, "debate") for d, v in zip(debates, verdicts, strict=True)]
        chars = [sum(len(t.text) for t in d.turns) for d in debates]
        info = {
            "debate/debated": len(live) / n,
            "debate/transcript_chars": sum(chars) / max(len(chars), 1),
            "debate/a_wins": sum(w > 0 for w in won.values()) / max(len(won), 1),
        }
        if self.interactive:
            probes = [sum(isinstance(t, Probe) for t in d.turns) for d in debates]
            info["debate/probes"] = sum(probes) / max(len(probes), 1)
        # a frozen opponent's answers are not the policy's: only a's are scored as its own
        sides = 2 if self.opponent == "self" else 1
        return Batch(
            turns,
            rewards,
            records,
            info=info,
            problems=problems * sides,
            responses=answers[: n * sides],
        )


class AgainstFrozen(Speaker):
    """A speaker whose b-side samples (owner `(i, 1)`) come from the frozen reference model, text
    only: never trained, never paid. a's side trains as in self-play."""

    def __init__(self, ctx: ProtocolContext) -> None:
        super().__init__(ctx)
        if ctx.reference is None:
            raise RuntimeError("opponent=frozen needs a context that samples the reference model")
        self.rows: list[dict[int, int] | None] = []
        """per call: {row asked for: its row in the trained call} (None: no trained row)"""

    def __call__(self, prompts: list[str], owners: list[Any]) -> list[str]:
        mine = [j for j, o in enumerate(owners) if o[1] == 0]
        theirs = [j for j, o in enumerate(owners) if o[1] == 1]
        out = [""] * len(prompts)
        said = self.ctx.reference([prompts[j] for j in theirs]) if theirs else []
        for j, t in zip(theirs, said, strict=True):
            out[j] = t
        said = super().__call__([prompts[j] for j in mine], [owners[j] for j in mine])
        for j, t in zip(mine, said, strict=True):
            out[j] = t
        self.rows.append({j: k for k, j in enumerate(mine)} if mine else None)
        return out

    def untrain(self, rows: list[int], call: int = -1) -> None:
        assert call == -1, "only the last call's rows"
        if (index := self.rows[-1]) is not None:
            super().untrain([index[r] for r in rows if r in index])


def _wins(v: Outcome, side: int) -> float:
    """How likely `side` wins by a verdict (1/2 for a failure)."""
    p = v.prob_a if isinstance(v, Verdict) else 0.5
    return p if side == 0 else 1 - p
