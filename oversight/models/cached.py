"""The on-disk cache of every model the platform trains itself (the base model, learned roles'
models): one entry per key of what determines the model, built by one job while concurrent jobs
wait, and complete or absent."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import torch
from filelock import FileLock
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from oversight.cache import cache_root
from oversight.models.policy import load_pretrained

Built = tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any]]
"""a model, its tokenizer, and what to record about how it was built"""


def model_key(spec: dict[str, Any]) -> str:
    """A key of everything in `spec`, hashed."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def cached_model(
    kind: str,
    key: str,
    build: Callable[[], Built],
    cache_dir: str | None = None,
    device: torch.device | str = "cpu",
) -> Built:
    """The model of `key`, from `<cache>/<kind>/<key>` or built now by `build`.

    The returned meta carries the key and whether it came from the cache."""
    root = cache_root(cache_dir) / kind
    root.mkdir(parents=True, exist_ok=True)
    entry = root / key
    with FileLock(str(root / f"{key}.lock")):  # concurrent sweep jobs: one trains, the rest wait
        if (entry / "meta.json").is_file():
            try:
                model, tok = load_pretrained(entry)
            except Exception:  # a corrupt entry is rebuilt, not crashed on
                pass
            else:
                meta = json.loads((entry / "meta.json").read_text())
                return model.to(device), tok, meta | {"cached": True}
        shutil.rmtree(entry, ignore_errors=True)
        # We hold the lock, so any temporary folder for this key is a killed builder's leftover.
        for stale in root.glob(f"{key}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        # Its own RNG stream: a run must draw the same after building the model as after loading.
        with torch.random.fork_rng(devices=[]):
            model, tok, meta = build()
        meta = {"key": key, **meta}
        tmp = root / f"{key}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "meta.json").write_text(json.dumps(meta))  # written last: marks the entry complete
        os.replace(tmp, entry)
        return model, tok, meta | {"cached": False}
