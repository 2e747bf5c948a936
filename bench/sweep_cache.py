"""The same sweep twice against a fresh base-model cache: the first builds the base model once
(its jobs run in parallel; one builds, the other waits on the lock), the second reuses it.

    .venv/bin/python bench/sweep_cache.py                   # tiny preset, base SFT 400 steps
    .venv/bin/python bench/sweep_cache.py --sft-steps 30    # exactly the tiny preset

A longer base-model SFT than the tiny preset's makes the saving visible next to start-up time.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _sweep import sweep


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sft-steps", type=int, default=400, help="base-model SFT steps")
    args = p.parse_args()
    over = ["competence=1,3", "seed=0", f"policy.sft_steps={args.sft_steps}"]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for i in (1, 2):
            wall, _, jobs = sweep(t / f"run{i}", t / "cache", *over)
            cached = ["reused" if j["base_model"]["cached"] else "BUILT" for j in jobs]
            runs = ", ".join(f"{j['wall_seconds']:.1f}" for j in jobs)
            print(
                f"sweep run {i}: wall {wall:6.1f} s; base model per job: {', '.join(cached)}; "
                f"per-job run time {runs} s"
            )
        n_entries = len([d for d in (t / "cache" / "base").iterdir() if d.is_dir()])
        print(f"base-model cache entries after both runs: {n_entries}")


if __name__ == "__main__":
    main()
