"""Where this machine keeps what it builds once: base models and the CPU attention kernel."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(override: str | None = None) -> Path:
    """`override` if given, else `$OVERSIGHT_CACHE`, else `~/.cache/oversight`."""
    return Path(override or os.environ.get("OVERSIGHT_CACHE") or "~/.cache/oversight").expanduser()
