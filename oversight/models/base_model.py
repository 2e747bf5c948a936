"""The base ("pretrained") model and its on-disk cache.

A small Llama-shaped transformer trained from scratch on the task's mixed corpus, or any causal
LM from a local path fine-tuned on that corpus. It is cached under a key derived from everything
that determines it, so runs and sweep jobs share it; one job builds a key while the others wait.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from oversight.errors import ConfigError
from oversight.models.cached import cached_model
from oversight.models.policy import PolicyConfig, build_model, load_pretrained
from oversight.models.sft import sft
from oversight.models.tokenizer import char_alphabet, char_tokenizer
from oversight.tasks import Task
from oversight.tasks.arithmetic import ALPHABET

CACHE_FORMAT = 6  # bump when the task's text format or the way base models are built changes
# 4: SFT on the packed forward with a fused AdamW (the same math, rounded differently)
# 5: critique -> revision demonstrations in the corpus, critique characters in the alphabet


def base_key(policy: PolicyConfig, task_cfg: dict[str, Any], extra_chars: str = "") -> str:
    """Everything that determines the base model, hashed. The run seed is deliberately not in it.
    With no `extra_chars` the vocabulary is ALPHABET's, and the key what it always was."""
    spec = {
        k: v
        for k, v in asdict(policy).items()
        if k not in ("cache_dir", "temperature", "max_new_tokens")
    }
    if policy.path is not None:
        spec["path_mtime"] = Path(policy.path).expanduser().stat().st_mtime
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "alphabet": char_alphabet(extra_chars),
            "policy": spec,
            "task": task_cfg,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def base_model(
    policy: PolicyConfig,
    task: Task,
    task_cfg: dict[str, Any],
    device: torch.device | str = "cpu",
    extra_chars: str = "",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any]]:
    """The base model for this config, from the cache or trained now (one builder per key).

    `extra_chars`: characters beyond the task's that its prompts will carry (a protocol that
    writes critiques into them declares theirs); they extend a from-scratch model's vocabulary.
    """
    if policy.path is not None and not Path(policy.path).expanduser().is_dir():
        raise ConfigError(f"policy path {policy.path!r} does not exist or is not a directory")

    def build() -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any]]:
        if policy.path is not None:
            model, tok = load_pretrained(policy.path)
        else:
            tok = char_tokenizer(ALPHABET + extra_chars)
            torch.manual_seed(policy.base_seed)
            model = build_model(policy, tok)
        model.to(device)
        pairs = task.corpus(policy.sft_examples, seed=policy.base_seed)
        losses = sft(
            model,
            tok,
            pairs,
            policy.sft_steps,
            policy.sft_batch_size,
            policy.sft_lr,
            policy.base_seed,
            device,
            desc="base model SFT",
        )
        return model, tok, {"final_sft_loss": sum(losses[-50:]) / max(len(losses[-50:]), 1)}

    key = base_key(policy, task_cfg, extra_chars)
    return cached_model("base", key, build, policy.cache_dir, device)
