"""The protocol interface: turn policy outputs into training signal for the shared PPO core.

A protocol sees public problems, policy outputs, and what its judge and roles tell it.
`ProtocolContext` is everything it is given; the task's truth store is not in it
(docs/design.md, "The truth wall"). A protocol:
- `setup`: work before RL (RLHF: collect labels, fit the reward model; an SFT phase through
  `ctx.sft`, after which the fine-tuned policy is where RL starts);
- `episodes`: the PPO batch of one step. It samples the current policy as often as it likes on
  any prompt text through `ctx.rollout` (one batched call per turn of all its episodes, never one
  episode at a time) and returns every sample with its reward, marks the ones not to train
  (a frozen opponent's turns), and may add supervised (prompt, target) pairs that the core
  trains on next to the PPO loss (distillation). Single-turn protocols only write `signal`: the
  default `episodes` samples one response per problem and pays `signal`'s rewards;
- `summary`: its own counts over the run, for summary.json;
- `proxy_reward`: how it scores held-out responses without its judge (a learned proxy), or None:
  evaluation never spends judge budget;
- `state_dict`/`load_state_dict`: what a checkpoint keeps of it (by default, everything it holds
  but its context).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from oversight.checks import Count, Positive, ensure, one_of
from oversight.engine.ppo import Rollout
from oversight.errors import ConfigError
from oversight.judges import Comparison, Judge, JudgmentRecord, Outcome, Verdict
from oversight.tasks import PublicProblem, PublicText


@dataclass
class Turns:
    """Samples of the current policy from one batched rollout call: one per prompt."""

    prompts: list[str]
    texts: list[str]
    """each response up to (not including) EOS"""
    rollout: Rollout
    """the tokens the PPO core trains on"""
    trained: list[bool] | None = None
    """False: sampled and scored, but not trained (e.g. a frozen opponent's turns); None: all"""


@dataclass
class Signal:
    """A single-turn protocol's answer for one PPO batch."""

    rewards: torch.Tensor
    """[B] scalar score per response, paid at its final token"""
    judgments: list[JudgmentRecord] = field(default_factory=list)
    info: dict[str, float] = field(default_factory=dict)
    """protocol-specific metrics to log for this step"""


@dataclass
class Batch:
    """One PPO step's worth of episodes: every sampled turn with its reward."""

    turns: list[Turns]
    rewards: list[torch.Tensor]
    """one [len(turns[i].texts)] tensor per element of `turns`, paid at each sample's last token"""
    judgments: list[JudgmentRecord] = field(default_factory=list)
    sft: list[tuple[str, str]] = field(default_factory=list)
    """(prompt, target) pairs for the core's supervised term (weight `ppo.sft_coef`)"""
    info: dict[str, float] = field(default_factory=dict)
    problems: list[PublicProblem] | None = None
    responses: list[str] | None = None
    """the episodes' answers to `problems`, scored by the harness (logged only); default: the
    first turn's texts"""
    scored: dict[str, tuple[list[PublicProblem], list[str]]] = field(default_factory=dict)
    """more answers for the harness to score, by name (logged as `train/<name>/...`, their mean
    over steps in summary.json's `scored`): amplification's targets"""


@dataclass
class ProtocolContext:
    judge: Judge
    base_model: PreTrainedModel
    """the frozen reference model (reward models start from its trunk)"""
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    generate: Callable[[list[str]], list[str]]
    """sample the current policy on prompt texts (text only: nothing trains on these)"""
    rollout: Callable[[list[str]], Turns]
    """sample the current policy on prompt texts, keeping what PPO needs to train on them"""
    sft: Callable[[list[tuple[str, str]], SFTPhase], list[float]]
    """an SFT phase of the current policy on (prompt, target) pairs; returns the loss curve.
    Before RL only (in `setup`): the tuned policy is where RL starts."""
    sample_problems: Callable[[int], list[PublicProblem]]
    """fresh public problems from the training distribution"""
    rng: random.Random
    seed: int
    roles: dict[str, Any] = field(default_factory=dict)
    """the AI helper roles the config names (critic, ...: `oversight.roles`)"""
    text: PublicText | None = None
    """the task's text format: parse answers, write critique and revision prompts"""
    reference: Callable[[list[str]], list[str]] | None = None
    """sample the frozen KL reference (where RL started) on prompt texts, text only: a frozen
    opponent"""

    def role(self, name: str, protocol: str) -> Any:
        """The role `name`, or a one-line ConfigError saying the protocol needs one."""
        if name not in self.roles:
            raise ConfigError(f"protocol={protocol} needs a {name} ({name}=simulated|learned)")
        return self.roles[name]


class Speaker:
    """Samples one turn for each of many episodes in one batched call, and remembers whose each
    sample is, so a protocol pays every sample its owner's reward at the end.

    Training: through `ctx.rollout`, keeping what PPO trains on. Otherwise (`train=False`: a
    measurement such as `oversight.experiment.judge_ladder`): through `ctx.generate`, text only.
    """

    def __init__(self, ctx: ProtocolContext, train: bool = True) -> None:
        self.ctx, self.train = ctx, train
        self.calls: list[tuple[Turns, list[Any]]] = []

    def __call__(self, prompts: list[str], owners: list[Any]) -> list[str]:
        """One sample per prompt; `owners[i]` is whose sample i is (what `pay` is asked about)."""
        if not prompts:
            return []
        if not self.train:
            return self.ctx.generate(prompts)
        turns = self.ctx.rollout(prompts)
        turns.trained = [True] * len(prompts)
        self.calls.append((turns, list(owners)))
        return turns.texts

    def untrain(self, rows: list[int], call: int = -1) -> None:
        """Samples of a call not to train (a discarded candidate, an assigned answer)."""
        if self.train:
            trained = self.calls[call][0].trained
            assert trained is not None
            for i in rows:
                trained[i] = False

    def pay(self, reward: Callable[[Any], float]) -> tuple[list[Turns], list[torch.Tensor]]:
        """Every call's samples and their rewards, `reward(owner)` each."""
        rewards = [torch.tensor([float(reward(o)) for o in owners]) for _, owners in self.calls]
        return [t for t, _ in self.calls], rewards


def another_answer(text: PublicText, answer: str, rng: random.Random) -> str | None:
    """`answer`'s work concluding another answer, drawn at random (an answer assigned to a
    debater or a consultant); None when `answer` states none."""
    mine = text.final_answer(answer)
    if mine is None:
        return None
    return text.with_answer(answer, rng.choice([d for d in text.answers() if d != mine]))


def verdict_reward(outcome: Outcome, soft: bool = False) -> float:
    """The reward a verdict pays the side of `a` (or the answer of a one-answer item): +1 won
    or accepted, -1 lost or rejected (`soft`: 2p - 1); 0 for a failure."""
    if not isinstance(outcome, Verdict):
        return 0.0
    return 2 * outcome.prob_a - 1 if soft else 2.0 * outcome.prefers_a - 1


class Protocol:
    name: str = "protocol"
    kind: str = "pair"
    """the kind of item its judge decides (`oversight.judges`): its accuracy on them is the
    run's `judge_accuracy`"""
    alphabet: str = ""
    """characters the protocol writes into prompts beyond the task's own (the tokenizer covers
    them)"""

    def setup(self, ctx: ProtocolContext) -> list[JudgmentRecord]:
        """Work before RL starts. Returns the judgments it made."""
        self.ctx = ctx
        return []

    def signal(self, problems: list[PublicProblem], responses: list[str], step: int) -> Signal:
        """Training signal for one response per problem (single-turn protocols)."""
        raise NotImplementedError(f"{type(self).__name__} writes neither signal nor episodes")

    def episodes(self, problems: list[PublicProblem], step: int) -> Batch:
        """The PPO batch for one step. Default: one turn, paid by `signal`."""
        turn = self.ctx.rollout([p.prompt for p in problems])
        s = self.signal(problems, turn.texts, step)
        return Batch([turn], [s.rewards], s.judgments, info=s.info)

    def proxy_reward(
        self, problems: list[PublicProblem], responses: list[str]
    ) -> torch.Tensor | None:
        """What the protocol believes held-out responses are worth, without asking its judge;
        None when it has no such proxy."""
        return None

    def summary(self) -> dict[str, Any]:
        """What the protocol adds to summary.json under its name (its own counts over the run:
        amplification's overseer calls per target); nothing by default."""
        return {}

    def judge_pairs(self, comparisons: list[Comparison], phase: str) -> list[JudgmentRecord]:
        """Ask the judge about a batch of pairs and keep every answer as a record."""
        outcomes = self.ctx.judge.compare(comparisons, self.ctx.rng)
        return [JudgmentRecord(c, o, phase) for c, o in zip(comparisons, outcomes, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: every attribute but the context (rebuilt on resume)."""
        return {k: v for k, v in vars(self).items() if k != "ctx"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vars(self).update(state)


@dataclass
class SFTPhase:
    """A protocol's supervised phase before RL, on the core's SFT path (`oversight.models.sft`)."""

    steps: Count = 200
    """optimiser steps"""
    batch_size: Count = 32
    """(prompt, target) pairs per step"""
    lr: Positive = 1e-3
    """peak learning rate (one-cycle schedule, as the base model's SFT)"""
    reference: Annotated[str, one_of("sft", "base")] = "sft"
    """the KL reference of the RL that follows: the tuned policy (RL then stays near what SFT
    taught) or the base model"""

    def __post_init__(self) -> None:
        ensure(self)
