"""Bradley-Terry reward model: a small transformer with a scalar head on the last token.

Initialised from the base model's trunk, as in Ouyang et al. 2022: a reward model trained from
scratch on a few thousand comparisons would not know the task's arithmetic at all.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from oversight.policy import encode, position_ids


@dataclass
class RewardModelConfig:
    epochs: int = 3
    batch_size: int = 32
    lr: float = 3e-4
    soft_labels: bool = True
    """protocols train on the judge's soft verdict (probability) rather than its hard choice"""


def bt_loss(r_a: torch.Tensor, r_b: torch.Tensor, p_a: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry loss: cross-entropy of P(a > b) = sigmoid(r_a - r_b) against label p_a."""
    return F.binary_cross_entropy_with_logits(r_a - r_b, p_a)


class RewardModel(nn.Module):
    def __init__(self, base: PreTrainedModel, tok: PreTrainedTokenizerBase) -> None:
        super().__init__()
        self.trunk = copy.deepcopy(base.base_model)
        self.head = nn.Linear(base.config.get_text_config().hidden_size, 1)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)
        self.tok = tok

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.trunk(
            input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)
        ).last_hidden_state
        return self.head(h[:, -1]).squeeze(-1)  # left padding: the last column is the last token

    def score(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Scalar rewards for full texts (prompt + response + EOS), without gradients."""
        device = next(self.parameters()).device
        out = []
        self.eval()
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                ids, mask = encode(self.tok, texts[i : i + batch_size], device)
                out.append(self(ids, mask).float())
        return torch.cat(out) if out else torch.zeros(0)


def train_reward_model(
    rm: RewardModel, a: list[str], b: list[str], p_a: list[float], cfg: RewardModelConfig, seed: int
) -> dict[str, float]:
    """Fit on comparisons (text a, text b, P(a preferred)); returns final loss and accuracy."""
    if not a:
        raise ValueError("no comparisons to train the reward model on")
    device = next(rm.parameters()).device
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
            ids, mask = encode(rm.tok, [a[j] for j in idx] + [b[j] for j in idx], device)
            r = rm(ids, mask).float()
            r_a, r_b = r[: len(idx)], r[len(idx) :]
            t = target[idx].to(device)
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


def pairwise_accuracy(rm: RewardModel, a: list[str], b: list[str], a_better: list[bool]) -> float:
    """How often the reward model ranks the better text first."""
    r_a, r_b = rm.score(a), rm.score(b)
    return float(((r_a > r_b) == torch.tensor(a_better)).float().mean())
