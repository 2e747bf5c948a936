"""The character tokenizer of the from-scratch policies, and text <-> ids for any tokenizer."""

from __future__ import annotations

import weakref

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from oversight.tasks.arithmetic import ALPHABET

PAD, EOS = "<pad>", "<eos>"


def char_alphabet(chars: str = "") -> str:
    """ALPHABET, then the characters of `chars` it lacks, sorted.

    ALPHABET comes first and unchanged, so the task's text keeps its ids (and the default base
    model stays the one in every cache); sorting makes the vocabulary a function of the set of
    characters, not of the order a caller lists them in.
    """
    return ALPHABET + "".join(sorted(set(chars) - set(ALPHABET)))


def char_tokenizer(alphabet: str = ALPHABET) -> PreTrainedTokenizerFast:
    """One token per character of `char_alphabet(alphabet)`; PAD and EOS are distinct special
    tokens (PPO checklist)."""
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, *dict.fromkeys(char_alphabet(alphabet))])}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token=PAD, eos_token=EOS, padding_side="left"
    )


_CHARS: weakref.WeakKeyDictionary[PreTrainedTokenizerBase, frozenset[str] | None] = (
    weakref.WeakKeyDictionary()
)


def char_vocabulary(tok: PreTrainedTokenizerBase) -> frozenset[str] | None:
    """The characters a character tokenizer covers (built here or loaded from a cache entry);
    None for any other tokenizer, which has its own way with text it has not seen."""
    if tok not in _CHARS:
        backend = getattr(tok, "backend_tokenizer", None)
        model = backend.model if backend is not None else None
        char_level = isinstance(model, models.WordLevel) and model.unk_token == PAD
        _CHARS[tok] = frozenset(t for t in tok.get_vocab() if len(t) == 1) if char_level else None
    return _CHARS[tok]


def unknown_chars(tok: PreTrainedTokenizerBase, texts: list[str]) -> str:
    """The characters of `texts` a character tokenizer lacks, sorted ("" for other tokenizers).
    Special tokens written as text ("<eos>") are tokens, not characters."""
    chars = char_vocabulary(tok)
    if chars is None:
        return ""
    text = "".join(texts)
    for special in tok.all_special_tokens:
        text = text.replace(special, "")
    return "".join(sorted(set(text) - chars))


def encode(
    tok: PreTrainedTokenizerBase, texts: list[str], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask, so every sequence ends at the last column.

    Text a character tokenizer cannot spell raises: its unknown token is PAD, so it would
    otherwise vanish from the model's view without a trace.
    """
    if unknown := unknown_chars(tok, texts):
        raise ValueError(f"the tokenizer has no token for the characters {unknown!r}")
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
