"""Supervised fine-tuning on (prompt, response) pairs: the base model's pre-training on the task
corpus, any later SFT phase, and the supervised term of other losses (`sft_loss`).

Llama models run on the PPO core's packed forward (`oversight.engine.fastlm`): no padding, and
the last layer only for the tokens that predict a response token. Any other model runs its own
padded forward. Both compute the same loss to float rounding (`tests/test_sft.py`).
Batches are planned on the host in numpy from a corpus tokenised once, so a step costs no
tokenisation and no device-to-host sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from oversight.engine import fastlm
from oversight.engine.ppo_math import logprobs_from_logits
from oversight.engine.sampling import position_ids
from oversight.models.tokenizer import unknown_chars

ROWS_PER_GROUP = 4
"""rows per SDPA block where the CPU attention kernel does not apply (as `PPOTrainer`'s)"""


@dataclass
class SFTBatch:
    """Rows of prompt + response + EOS, concatenated without padding, on the host.

    The loss covers each row's tokens from `prompt_lens[r]` on: the response and its EOS.
    """

    ids: np.ndarray
    """[N] every row's token ids, row after row"""
    lens: np.ndarray
    """[B] tokens per row"""
    prompt_lens: np.ndarray
    """[B] prompt tokens per row"""
    pad_id: int
    device: torch.device

    @property
    def tokens(self) -> int:
        return int(self.lens.sum())

    def _targets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, index within the row) of each token that predicts a target, in row order, and
        each row's number of targets."""
        n = self.lens - self.prompt_lens
        row = np.repeat(np.arange(len(n)), n)
        j = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        return row, self.prompt_lens[row] - 1 + j, n


@dataclass
class Corpus:
    """(prompt, response) pairs tokenised once; `batch` gathers rows of it."""

    ids: np.ndarray
    starts: np.ndarray
    """[n + 1] pair i's tokens are ids[starts[i] : starts[i + 1]]"""
    prompt_lens: np.ndarray
    pad_id: int

    def __len__(self) -> int:
        return len(self.prompt_lens)

    def batch(self, idx: np.ndarray | list[int], device: torch.device | str) -> SFTBatch:
        idx = np.asarray(idx, dtype=np.int64)
        lens = self.starts[idx + 1] - self.starts[idx]
        # token t of the batch comes from the corpus at its row's start + its offset in the row
        offset = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        ids = self.ids[np.repeat(self.starts[idx], lens) + offset]
        return SFTBatch(ids, lens, self.prompt_lens[idx], self.pad_id, torch.device(device))


def tokenize(tok: PreTrainedTokenizerBase, pairs: list[tuple[str, str]]) -> Corpus:
    """prompt + response + EOS of every pair, as one text (how the model reads it), and the
    prompt's own length."""
    # a character tokenizer's unknown token is PAD: unspellable text would vanish silently
    if unknown := unknown_chars(tok, [p + r for p, r in pairs]):
        raise ValueError(f"the tokenizer has no token for the characters {unknown!r}")

    def ids(texts: list[str]) -> list[list[int]]:
        return tok(texts, add_special_tokens=False)["input_ids"] if texts else []

    full, prompts = ids([p + r + tok.eos_token for p, r in pairs]), ids([p for p, _ in pairs])
    lens = np.array([len(x) for x in full], dtype=np.int64)
    ids = np.fromiter((t for x in full for t in x), dtype=np.int64, count=int(lens.sum()))
    prompt_lens = np.array([len(x) for x in prompts], dtype=np.int64)
    if np.any(prompt_lens < 1) or np.any(prompt_lens >= lens):
        raise ValueError("every pair needs a non-empty prompt")  # nothing would predict token 0
    return Corpus(ids, np.concatenate(([0], np.cumsum(lens))), prompt_lens, tok.pad_token_id)


def sft_batch(
    tok: PreTrainedTokenizerBase, pairs: list[tuple[str, str]], device: torch.device | str
) -> SFTBatch:
    """One batch of pairs; the loss covers the response and its EOS only."""
    return tokenize(tok, pairs).batch(np.arange(len(pairs)), device)


def _dev(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device, non_blocking=True)


def _target_logprobs(model: nn.Module, batch: SFTBatch) -> tuple[torch.Tensor, np.ndarray]:
    """(log p of every target token, in row order [M]; targets per row [B])."""
    row, at, n = batch._targets()
    dev, lens = batch.device, batch.lens
    B, S = len(lens), int(lens.max())
    start = np.cumsum(lens) - lens
    target = _dev(batch.ids[start[row] + at + 1], dev)
    if fastlm.supports(model):
        pk = fastlm.pack(np.arange(S)[None] < lens[:, None], _groups(B, dev), dev)
        want = fastlm.queries(pk, start[row] + at, at - batch.prompt_lens[row] + 1)
        lg = fastlm.logits(model, fastlm.hidden(model, _dev(batch.ids, dev), pk, want)[0])
        return logprobs_from_logits(lg, target), n
    # left-padded, as `oversight.models.tokenizer.encode` pads
    flat = np.repeat(np.arange(B) * S + S - lens - start, lens) + np.arange(batch.tokens)
    ids = np.full(B * S, batch.pad_id, dtype=np.int64)
    ids[flat] = batch.ids
    mask = np.zeros(B * S, dtype=np.int64)
    mask[flat] = 1
    ids_t, mask_t = _dev(ids.reshape(B, S), dev), _dev(mask.reshape(B, S), dev)
    logits = model(input_ids=ids_t, attention_mask=mask_t, position_ids=position_ids(mask_t)).logits
    pred = _dev(row * S + S - lens[row] + at, dev)  # the predicting tokens' padded places
    return logprobs_from_logits(logits.flatten(0, 1).index_select(0, pred), target), n


def _groups(B: int, device: torch.device) -> int:
    # Attention groups of similar lengths pay off on a CPU; a GPU wants one big block.
    return 1 if device.type == "cuda" else max(1, B // ROWS_PER_GROUP)


def sft_loss(model: nn.Module, batch: SFTBatch) -> torch.Tensor:
    """Mean next-token cross-entropy over the batch's response tokens and EOS.

    Leaves the model's train/eval mode as it finds it: a caller may add it to another loss.
    """
    return -_target_logprobs(model, batch)[0].mean()


@torch.no_grad()
def response_logprob(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    pairs: list[tuple[str, str]],
    device: torch.device | str,
    batch_size: int = 256,
) -> torch.Tensor:
    """[N] log p(response + EOS | prompt) of each pair, summed over its tokens."""
    corpus, out = tokenize(tok, pairs), []
    for s in range(0, len(pairs), batch_size):
        lp, n = _target_logprobs(
            model, corpus.batch(np.arange(s, min(s + batch_size, len(pairs))), device)
        )
        row = _dev(np.repeat(np.arange(len(n)), n), lp.device)
        out.append(lp.new_zeros(len(n)).index_add_(0, row, lp))
    return torch.cat(out)


def sft_steps(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    pairs: list[tuple[str, str]],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str,
) -> Iterator[tuple[torch.Tensor, SFTBatch]]:
    """`sft`'s loop, one optimiser step per item: (its loss, detached, on the device; its batch).

    The model is in train mode while the loop runs and in eval mode once it is exhausted.
    """
    g = torch.Generator().manual_seed(seed)
    drawn = torch.randint(len(pairs), (steps, batch_size), generator=g).numpy()  # a step's draw
    # Tokenised once, up front, and only the pairs the run draws: tokenising the whole default
    # corpus costs seconds, and a short run draws a small part of it.
    used, rows = np.unique(drawn, return_inverse=True)
    corpus, rows = tokenize(tok, [pairs[i] for i in used]), rows.reshape(drawn.shape)
    # fused: one kernel per parameter for the update instead of a dozen element-wise ones
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, fused=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1
    )
    model.train()
    for step in range(steps):
        batch = corpus.batch(rows[step], device)
        loss = sft_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()
        sched.step()
        yield loss.detach(), batch
    model.eval()


def sft(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    pairs: list[tuple[str, str]],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str,
    desc: str = "sft",
) -> list[float]:
    """Plain next-token SFT on responses; returns the loss curve (the same for a seed)."""
    run = sft_steps(model, tok, pairs, steps, batch_size, lr, seed, device)
    losses = [loss for loss, _ in tqdm(run, total=steps, desc=desc, leave=False)]
    return torch.stack(losses).tolist() if losses else []  # one host copy, not one a step
