"""A PPO step under a protocol that owns its episodes (docs/design.md, "One PPO step").

    protocol.episodes -> (ctx.rollout per turn, judge, roles) -> Batch -> one mixed rollout
    -> ppo.step (+ the supervised term) -> statistics

The closures here are what `ProtocolContext.rollout` and `ProtocolContext.sft` call: sampling
keeps the tokens PPO trains on, and an SFT phase tunes the policy the RL then starts from.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch

from oversight.engine.ppo import PolicyWithValue, PPOTrainer, Rollout
from oversight.models.sft import sft, sft_batch
from oversight.models.tokenizer import decode, encode
from oversight.tasks import PublicProblem
from protocols.base import Batch, Protocol, SFTPhase, Turns


def rollout_fn(
    trainer: PPOTrainer, tok: Any, device: torch.device, generator: torch.Generator
) -> Callable[[list[str]], Turns]:
    """`ctx.rollout`: one batched rollout of the current policy on any prompt texts."""

    def rollout(prompts: list[str]) -> Turns:
        ids, mask = encode(tok, prompts, device)
        ro = trainer.rollout(ids, mask, generator)
        return Turns(prompts, decode(tok, ro.responses, tok.eos_token_id), ro)

    return rollout


def sft_fn(
    policy: PolicyWithValue,
    trainer: PPOTrainer,
    tok: Any,
    device: torch.device,
    seed: int,
    before_first: Callable[[], None],
) -> Callable[[list[tuple[str, str]], SFTPhase], list[float]]:
    """`ctx.sft`: tune the policy in place; by the phase's config it becomes the KL reference."""

    def phase(pairs: list[tuple[str, str]], cfg: SFTPhase) -> list[float]:
        if not pairs:
            raise ValueError("an SFT phase needs at least one (prompt, target) pair")
        before_first()
        losses = sft(
            policy.lm, tok, pairs, cfg.steps, cfg.batch_size, cfg.lr, seed, device, "protocol SFT"
        )
        if cfg.reference == "sft":
            trainer.ref = copy.deepcopy(policy.lm).requires_grad_(False).eval()
        return losses

    return phase


def _check(batch: Batch) -> None:
    if len(batch.turns) != len(batch.rewards):
        raise ValueError(f"{len(batch.turns)} turns but {len(batch.rewards)} reward tensors")
    for t, r in zip(batch.turns, batch.rewards, strict=True):
        if r.shape != (len(t.texts),):
            raise ValueError(f"rewards of shape {tuple(r.shape)} for {len(t.texts)} samples")
        if t.trained is not None and len(t.trained) != len(t.texts):
            raise ValueError(f"{len(t.trained)} trained marks for {len(t.texts)} samples")


def ppo_step(
    trainer: PPOTrainer,
    protocol: Protocol,
    problems: list[PublicProblem],
    step: int,
    generator: torch.Generator,
    tok: Any,
    device: torch.device,
) -> tuple[dict[str, float], Batch, int]:
    """One PPO iteration: the protocol's episodes, trained as one batch of mixed lengths.

    Returns the statistics, the batch (for logging) and the number of sampled response tokens.
    """
    batch = protocol.episodes(problems, step)
    _check(batch)
    ro = Rollout.cat([t.rollout for t in batch.turns], tok.pad_token_id)
    scores = torch.cat([r.to(device).float() for r in batch.rewards])
    n_tokens = int(ro.mask.sum())
    trained = [x for t in batch.turns for x in (t.trained or [True] * len(t.texts))]
    if not any(trained):  # e.g. no two answers to debate: nothing to learn from this batch
        return {"samples": len(trained), "trained": 0, "kl": math.nan}, batch, n_tokens
    if not all(trained):  # not trained: left out of the step, so no loss or statistic sees them
        keep = torch.tensor(trained, device=ro.responses.device)
        ro, scores = ro.rows(keep), scores[keep]
    sft = None
    if batch.sft:  # one supervised chunk per minibatch of an epoch
        n = math.ceil(ro.responses.shape[0] / trainer.cfg.minibatch_size)
        size = math.ceil(len(batch.sft) / n)
        sft = [
            sft_batch(tok, batch.sft[i : i + size], device) for i in range(0, len(batch.sft), size)
        ]
    stats = trainer.step(ro, scores, generator, sft)
    stats["samples"], stats["trained"] = len(trained), sum(trained)
    return stats, batch, n_tokens
