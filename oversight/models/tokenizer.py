"""The character tokenizer of the from-scratch policies, and text <-> ids for any tokenizer."""

from __future__ import annotations

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from oversight.tasks.arithmetic import ALPHABET

PAD, EOS = "<pad>", "<eos>"


def char_tokenizer(alphabet: str = ALPHABET) -> PreTrainedTokenizerFast:
    """One token per character; PAD and EOS are distinct special tokens (PPO checklist)."""
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, *dict.fromkeys(alphabet)])}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token=PAD, eos_token=EOS, padding_side="left"
    )


def encode(
    tok: PreTrainedTokenizerBase, texts: list[str], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask, so every sequence ends at the last column."""
    enc = tok(
        texts, padding=True, return_tensors="pt", add_special_tokens=False, padding_side="left"
    )
    return enc["input_ids"].to(device), enc["attention_mask"].to(device)


def decode(tok: PreTrainedTokenizerBase, responses: torch.Tensor, eos_id: int) -> list[str]:
    """Response text up to (not including) EOS."""
    texts = []
    for row in responses.tolist():
        if eos_id in row:
            row = row[: row.index(eos_id)]
        texts.append(tok.decode(row, skip_special_tokens=True))
    return texts
