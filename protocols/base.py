"""The protocol interface: turn policy outputs into training signal for the shared PPO core.

A protocol sees public problems, policy outputs, and what its judge tells it. `ProtocolContext`
is everything it is given; the task's truth store is not in it (docs/design.md, "The truth
wall"). What it has today:
- `setup` runs before RL (RLHF: collect labels, fit the reward model);
- `ctx.generate` samples the current policy on any prompt text;
- `signal` returns a `Signal` per PPO batch: one reward per response, paid at its final token,
  and the judgments it asked for.
`Signal.sft_targets` is reserved for per-response supervised targets (distillation, revisions);
the run refuses it until the PPO core has an SFT loss.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from oversight.judges import Comparison, Judge, JudgmentRecord
from oversight.tasks import PublicProblem


@dataclass
class Signal:
    rewards: torch.Tensor
    """[B] scalar score per response, paid at its final token"""
    judgments: list[JudgmentRecord] = field(default_factory=list)
    sft_targets: list[str | None] | None = None
    """per-response supervised targets (distillation, revisions); None when unused"""
    info: dict[str, float] = field(default_factory=dict)
    """protocol-specific metrics to log for this step"""


@dataclass
class ProtocolContext:
    judge: Judge
    base_model: PreTrainedModel
    """the frozen reference model (reward models start from its trunk)"""
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    generate: Callable[[list[str]], list[str]]
    """sample the current policy on prompt texts"""
    sample_problems: Callable[[int], list[PublicProblem]]
    """fresh public problems from the training distribution"""
    rng: random.Random
    seed: int


class Protocol(ABC):
    name: str = "protocol"

    def setup(self, ctx: ProtocolContext) -> list[JudgmentRecord]:
        """Work before RL starts. Returns the judgments it made."""
        self.ctx = ctx
        return []

    @abstractmethod
    def signal(self, problems: list[PublicProblem], responses: list[str], step: int) -> Signal:
        """Training signal for one PPO batch."""

    def proxy_reward(self, problems: list[PublicProblem], responses: list[str]) -> torch.Tensor:
        """What the protocol believes the responses are worth (logged at evaluation).

        Defaults to the training signal; protocols with a cheap learned proxy override it so
        evaluation spends no judge budget.
        """
        return self.signal(problems, responses, step=-1).rewards

    def judge_pairs(self, comparisons: list[Comparison], phase: str) -> list[JudgmentRecord]:
        """Ask the judge about a batch of pairs and keep every answer as a record."""
        outcomes = self.ctx.judge.compare(comparisons, self.ctx.rng)
        return [JudgmentRecord(c, o, phase) for c, o in zip(comparisons, outcomes, strict=True)]
