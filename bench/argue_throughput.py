"""PPO tokens/s of debate and consultancy training against RLHF's, on the same base model.

    .venv/bin/python bench/argue_throughput.py               # 10 PPO steps, 2 rounds of each
    .venv/bin/python bench/argue_throughput.py --steps 20 --repeats 3

Each run is a whole `python -m oversight.train` on `task=arguing` (the base model the arguing
protocols use), one torch thread, a small evaluation. tokens/s is the run's own figure: every
sampled and trained token of its PPO steps over their seconds (rollouts, judging and the update),
set-up and evaluation excluded. The protocols alternate, so drift in the machine's load falls on
each alike; the ratio is of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ("rlhf", "consultancy", "debate")


def run(protocol: str, steps: int, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "oversight.train",
        f"protocol={protocol}",
        "task=arguing",
        "judge=simulated",
        f"ppo.steps={steps}",
        "threads=1",
        "eval.n_problems=64",
        "checkpoint_every=0",
        "store.url=sqlite://",
        f"hydra.run.dir={out}",
    ]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{protocol} failed:\n{res.stderr[-3000:]}")
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10, help="PPO steps per run")
    p.add_argument("--repeats", type=int, default=2, help="runs of each protocol, alternating")
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    rates: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for name in PROTOCOLS:
                s = run(name, args.steps, Path(tmp) / f"{name}{i}")
                rates[name].append(s["tokens_per_second"])
    base = statistics.median(rates["rlhf"])
    print(f"{args.steps} PPO steps per run, {args.repeats} runs each (tokens/s, median):")
    for name, xs in rates.items():
        each = ", ".join(f"{x:.0f}" for x in xs)
        print(
            f"  {name:<12} {statistics.median(xs):7.0f}  ({each})  {statistics.median(xs) / base:.2f}x rlhf"
        )


if __name__ == "__main__":
    main()
