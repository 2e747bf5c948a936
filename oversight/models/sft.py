"""Supervised fine-tuning on (prompt, response) pairs: the base model's pre-training on the task
corpus, and any later SFT phase."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from oversight.engine.sampling import position_ids
from oversight.models.tokenizer import encode


def sft_batch(
    tok: PreTrainedTokenizerBase, pairs: list[tuple[str, str]], device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Tokenise (prompt, response) pairs; the loss covers the response and its EOS only."""
    prompts = [p for p, _ in pairs]
    full = [p + r + tok.eos_token for p, r in pairs]
    ids, mask = encode(tok, full, device)
    prompt_lens = torch.tensor(
        [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts], device=device
    )
    seq_lens = mask.sum(-1)
    cols = torch.arange(ids.shape[1], device=device)
    start = ids.shape[1] - seq_lens + prompt_lens  # first response column, after left padding
    labels = torch.where(cols[None] >= start[:, None], ids, torch.full_like(ids, -100))
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "position_ids": position_ids(mask),
        "labels": labels,
    }


def sft(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    pairs: list[tuple[str, str]],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str,
    desc: str = "sft",
) -> list[float]:
    """Plain next-token SFT on responses; returns the loss curve."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1
    )
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc=desc, leave=False):
        idx = torch.randint(len(pairs), (batch_size,), generator=g).tolist()
        batch = sft_batch(tok, [pairs[i] for i in idx], device)
        logits = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
        ).logits
        loss = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(),
            batch["labels"][:, 1:].flatten(),
            ignore_index=-100,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses
