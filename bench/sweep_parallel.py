"""Two tiny sweep jobs in parallel (n_jobs=2) against the same two in sequence (n_jobs=1).

    .venv/bin/python bench/sweep_parallel.py                 # 3 PPO steps (the tiny preset), then 30
    .venv/bin/python bench/sweep_parallel.py --steps 3 60 --launcher fork

Both timings do the same work: the base model is built once beforehand, and each job uses one
torch thread (the presets set threads=1), so two jobs fill two cores without oversubscribing.
Times are for the whole `python -m oversight.train -m ...` command, start-up included (about 4 s
of imports and config composition that no launcher can run in parallel). The default launcher,
`fork`, forks each job from the launching process with torch already imported; Hydra's `joblib`
launcher always uses loky, whose fresh workers import torch and transformers again (~3 s CPU
each), which a job of a few seconds never wins back."""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
from pathlib import Path

from _sweep import sweep


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[3, 30], help="PPO steps per job")
    p.add_argument("--launcher", nargs="+", default=["fork", "joblib"], help="launchers to time")
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        sweep(t / "warm", t / "cache", "competence=1", "seed=0", "ppo.steps=1")  # base model
        for steps, launcher in itertools.product(args.steps, args.launcher):
            jobs = ["competence=1,3", "seed=0", f"ppo.steps={steps}", f"hydra/launcher={launcher}"]
            walls = {}
            print(
                f"2 jobs of the tiny judge_competence preset, {steps} PPO steps each, {launcher} launcher:"
            )
            for n in (1, 2):
                wall, cpu, js = sweep(
                    t / f"s{steps}{launcher}n{n}", t / "cache", *jobs, f"hydra.launcher.n_jobs={n}"
                )
                assert all(j["base_model"]["cached"] for j in js)
                walls[n] = wall
                per_job = ", ".join(f"{j['wall_seconds']:.1f}" for j in js)
                name = "in sequence (n_jobs=1)" if n == 1 else "in parallel (n_jobs=2)"
                print(
                    f"  {name:<24} wall {wall:6.1f} s, CPU {cpu:6.1f} s"
                    f"   (each job's own run time: {per_job} s)"
                )
            print(f"  parallel / sequential wall time: {walls[2] / walls[1]:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
