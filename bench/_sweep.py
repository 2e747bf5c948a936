"""Shared helper of the sweep benchmarks: run one `oversight.train -m` sweep and time it."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["experiment=judge_competence", "experiment/size=tiny"]


def sweep(sweep_dir: Path, cache: Path, *overrides: str) -> tuple[float, float, list[dict]]:
    """Wall seconds and CPU seconds (all processes) of the whole command, and each job's
    summary.json (in job order)."""
    cmd = [
        sys.executable,
        "-m",
        "oversight.train",
        "-m",
        *TINY,
        f"hydra.sweep.dir={sweep_dir}",
        f"policy.cache_dir={cache}",
        *overrides,
    ]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    t0, cpu0 = time.perf_counter(), _children_cpu()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if res.returncode != 0:
        sys.exit(f"sweep failed:\n{res.stderr[-3000:]}")
    jobs = sorted(sweep_dir.glob("*/summary.json"), key=lambda p: int(p.parent.name))
    return wall, cpu, [json.loads(p.read_text()) for p in jobs]


def _children_cpu() -> float:
    """User + system CPU seconds of finished child processes (joblib's workers included)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
