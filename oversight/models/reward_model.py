"""Bradley-Terry reward model: a small transformer with a scalar readout.

Initialised from the base model (trunk and LM head), as in Ouyang et al. 2022: a reward model
trained from scratch on a few thousand comparisons would not know the task's arithmetic at all.

Two readouts:
- "tokens" (default): a score per response token, summed. Each token's score sees its hidden
  state and the token's log-likelihood under the LM head. A wrong step is a *local* event (one
  unlikely digit), which the likelihood exposes.
- "last": one score from the last token's hidden state (Ouyang et al. 2022). At the demo's size
  (2 layers, 64 wide) it cannot fit oracle labels on arithmetic errors: at chance on held-out
  wrong-step pairs, and so is TRL's RewardTrainer on the same pairs and trunk
  (bench/reward_model_probe.py, bench/trl_reward_check.py; README, "What the demo shows").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from oversight.checks import Count, Positive, ensure, one_of
from oversight.engine.ppo_math import logprobs_from_logits
from oversight.engine.sampling import position_ids
from oversight.models.tokenizer import encode

READOUTS = ("tokens", "last")


@dataclass
class RewardModelConfig:
    epochs: Count = 3
    """passes over the labelled pairs"""
    batch_size: Count = 32
    """pairs per optimiser step"""
    lr: Positive = 3e-4
    """AdamW learning rate"""
    soft_labels: bool = True
    """protocols train on the judge's soft verdict (probability) rather than its hard choice"""
    readout: Annotated[str, one_of(*READOUTS)] = "tokens"
    """"tokens": per-token scores with log-likelihood, summed; "last": last token's state (it
    cannot learn the task's arithmetic at the demo's size, README, "What the demo shows")"""

    def __post_init__(self) -> None:
        ensure(self)


def bt_loss(r_a: torch.Tensor, r_b: torch.Tensor, p_a: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry loss: cross-entropy of P(a > b) = sigmoid(r_a - r_b) against label p_a."""
    return F.binary_cross_entropy_with_logits(r_a - r_b, p_a)


class RewardModel(nn.Module):
    def __init__(
        self, base: PreTrainedModel, tok: PreTrainedTokenizerBase, readout: str = "tokens"
    ) -> None:
        super().__init__()
        self.readout = readout
        self.trunk = copy.deepcopy(base.base_model)
        self.head = nn.Linear(base.config.get_text_config().hidden_size, 1)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)
        if readout == "tokens":
            self.lm_head = copy.deepcopy(base.get_output_embeddings())
            self.likelihood_weight = nn.Parameter(torch.tensor(0.1))
        self.tok = tok

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, response: torch.Tensor
    ) -> torch.Tensor:
        """Scores for left-padded rows; `response` marks the tokens being judged."""
        h = self.trunk(
            input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)
        ).last_hidden_state
        if self.readout == "last":
            return self.head(h[:, -1]).squeeze(-1)  # left padding: last column = last token
        per_token = self.head(h[:, 1:]).squeeze(-1).float()
        per_token = per_token + self.likelihood_weight * logprobs_from_logits(
            self.lm_head(h)[:, :-1], ids[:, 1:]
        )
        return (per_token * response[:, 1:]).sum(-1)

    def batch(
        self, prompts: list[str], responses: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids, mask and response mask of prompt + response + EOS, left-padded."""
        device = next(self.parameters()).device
        ends = [r + self.tok.eos_token for r in responses]
        ids, mask = encode(self.tok, [p + e for p, e in zip(prompts, ends, strict=True)], device)
        n = self.tok(ends, add_special_tokens=False)["input_ids"]
        n = torch.tensor([len(x) for x in n], device=device)
        cols = torch.arange(ids.shape[1], device=device)
        return ids, mask, (cols[None] >= ids.shape[1] - n[:, None]).float()

    def score(
        self, prompts: list[str], responses: list[str], batch_size: int = 256
    ) -> torch.Tensor:
        """Scalar rewards for responses to prompts, without gradients."""
        out = []
        self.eval()
        with torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                j = slice(i, i + batch_size)
                out.append(self(*self.batch(prompts[j], responses[j])).float())
        return torch.cat(out) if out else torch.zeros(0)


def train_reward_model(
    rm: RewardModel,
    prompts: list[str],
    a: list[str],
    b: list[str],
    p_a: list[float],
    cfg: RewardModelConfig,
    seed: int,
) -> dict[str, float]:
    """Fit on comparisons (prompt, response a, response b, P(a preferred)); returns final loss
    and training accuracy on decided pairs."""
    if not a:
        raise ValueError("no comparisons to train the reward model on")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(rm.parameters(), lr=cfg.lr)
    target = torch.tensor(p_a, dtype=torch.float32)  # soft or hard: the caller's choice
    rm.train()
    losses, correct, decided = [], 0, 0
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(a), generator=g).tolist()
        for i in tqdm(
            range(0, len(a), cfg.batch_size), desc=f"reward model epoch {epoch + 1}", leave=False
        ):
            idx = perm[i : i + cfg.batch_size]
            p = [prompts[j] for j in idx]
            r = rm(*rm.batch(p + p, [a[j] for j in idx] + [b[j] for j in idx])).float()
            r_a, r_b = r[: len(idx)], r[len(idx) :]
            t = target[idx].to(r.device)
            loss = bt_loss(r_a, r_b, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(rm.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            if epoch == cfg.epochs - 1:
                sure = t != 0.5
                correct += int((((r_a > r_b).float() == (t > 0.5).float()) & sure).sum())
                decided += int(sure.sum())
    rm.eval()
    return {
        "rm_loss": sum(losses[-10:]) / len(losses[-10:]),
        "rm_train_accuracy": correct / max(decided, 1),
    }


def pairwise_accuracy(
    rm: RewardModel, prompts: list[str], a: list[str], b: list[str], a_better: list[bool]
) -> float:
    """How often the reward model ranks the better response first."""
    r_a, r_b = rm.score(prompts, a).cpu(), rm.score(prompts, b).cpu()
    return float(((r_a > r_b) == torch.tensor(a_better)).float().mean())
