"""Scripted protocols that prove the engine without a real oversight method: a two-turn episode
and an SFT phase. Their configs are in tests/conf/protocol/ (`hydra.searchpath` adds them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from oversight.judges import Comparison
from oversight.tasks import PublicProblem
from protocols.base import Batch, JudgmentRecord, Protocol, ProtocolContext, SFTPhase, Signal


@dataclass
class TwoTurn(Protocol):
    """Turn 1 answers the problem; turn 2 reads it and comments. Both turns are paid the
    episode's reward, which depends on both: turn 1 should be `length` characters long and turn
    2 as long as turn 1, so neither turn alone can earn it all. (Length, since a tiny base model
    writes no answer a stricter reward could pay.) Every fourth episode's second turn is sampled
    but not trained, as a frozen opponent's would be."""

    length: int = 8

    name = "two_turn"

    def episodes(self, problems: list[PublicProblem], step: int) -> Batch:
        first = self.ctx.rollout([p.prompt for p in problems])
        prompts = [p.prompt + a + "\n" for p, a in zip(problems, first.texts, strict=True)]
        second = self.ctx.rollout(prompts)
        second.trained = [i % 4 != 3 for i in range(len(problems))]
        r = (
            -torch.tensor(
                [
                    abs(len(a) - self.length) + abs(len(b) - len(a))
                    for a, b in zip(first.texts, second.texts, strict=True)
                ],
                dtype=torch.float,
            )
            / self.length
        )
        return Batch([first, second], [r, r.clone()], info={"episode_reward": r.mean().item()})


TARGET = "You are right. Answer: 0."


@dataclass
class SFTWarmup(Protocol):
    """An SFT phase on a fixed target before RL, then RL that pays nothing but asks the judge
    about a few pairs per step (so the contract's judge-budget check has something to count)."""

    n_targets: int = 64
    phase: SFTPhase = field(default_factory=lambda: SFTPhase(steps=30, batch_size=16, lr=3e-3))
    pairs_per_step: int = 2

    name = "sft_warmup"

    def __post_init__(self) -> None:
        if isinstance(self.phase, dict):
            self.phase = SFTPhase(**self.phase)

    def setup(self, ctx: ProtocolContext) -> list[JudgmentRecord]:
        super().setup(ctx)
        self.losses = ctx.sft(
            [(p.prompt, TARGET) for p in ctx.sample_problems(self.n_targets)], self.phase
        )
        return []

    def signal(self, problems: list[PublicProblem], responses: list[str], step: int) -> Signal:
        k = self.pairs_per_step
        asked = self.judge_pairs(
            [Comparison(p, a, TARGET) for p, a in zip(problems[:k], responses[:k], strict=True)],
            "steps",
        )
        return Signal(torch.zeros(len(responses)), asked, {"sft_first_loss": self.losses[0]})
