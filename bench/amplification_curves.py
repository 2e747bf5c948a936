"""Iterated amplification against its oracle-overseer baseline, from one sweep folder (README,
"Iterated amplification"):

    python -m oversight.train -m protocol=amplification 'seed=range(3)' judge=simulated,oracle \
        threads=1 eval.every=10 hydra.sweep.dir=DIR
    python bench/amplification_curves.py DIR [DIR ...] [--frame ORACLE POOL] [--plot PNG]

Runs are told apart by their judge and `protocol.vet` (the folders may hold both). Per setting, mean ± sd over seeds (and each seed): gold accuracy beyond competence at the end, its
ratio to the baseline's (seeds paired), sycophancy beyond before and after, the targets' gold
accuracy, overseer calls and sub-questions per target, the difficulty the curriculum reached,
and the slowdown: the first evaluated step at which gold beyond reaches 90% of the run's own
final value (and 90% of its own final gain over the base model). `--frame` takes RLHF's oracle and pool gold beyond (the baselines preset on the
same base model) for the performance gap recovered.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import fmean, stdev


def curve(run: Path) -> list[tuple[int, float]]:
    """(step, held-out gold accuracy beyond competence): base, every `eval.every`, final."""
    s = json.loads((run / "summary.json").read_text())
    total = s["config"]["ppo"]["steps"]
    pts = [(0, s["base"]["gold_accuracy"]["beyond"])]
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "eval/gold_accuracy/beyond" in row and row["step"] < total:
            pts.append((row["step"], row["eval/gold_accuracy/beyond"]))
    return [*pts, (total, s["final"]["gold_accuracy"]["beyond"])]


def to_90(pts: list[tuple[int, float]]) -> int:
    """The first step at which the curve reaches 90% of its final value."""
    final = pts[-1][1]
    return next(step for step, v in pts if v >= 0.9 * final)


def to_90_gain(pts: list[tuple[int, float]]) -> int | None:
    """The first step at which the curve has 90% of its final gain over its start; None when it
    ends no higher than it started."""
    start, final = pts[0][1], pts[-1][1]
    if final <= start:
        return None
    return next(step for step, v in pts if v - start >= 0.9 * (final - start))


def ms(xs: list[float]) -> str:
    sd = stdev(xs) if len(xs) > 1 else 0.0
    return f"{fmean(xs):.3f} ± {sd:.3f} ({', '.join(f'{x:.3f}' for x in xs)})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sweeps", type=Path, nargs="+")
    ap.add_argument("--frame", type=float, nargs=2, metavar=("ORACLE", "POOL"))
    ap.add_argument("--plot", type=Path)
    a = ap.parse_args()
    runs: dict[str, dict[int, Path]] = {}
    for summary in sorted(p for d in a.sweeps for p in d.glob("*/summary.json")):
        s = json.loads(summary.read_text())
        vet = s["config"]["protocol"].get("vet") and s["judge"] != "oracle"  # the oracle never vets
        runs.setdefault(s["judge"] + (" vet" if vet else ""), {})[s["seed"]] = summary.parent
    rows: dict[str, dict[str, list[float]]] = {}
    finals: dict[str, dict[int, float]] = {}  # gold beyond at the end, for the paired ratio
    for judge, by_seed in runs.items():
        r = rows.setdefault(judge, {})
        for seed in sorted(by_seed):
            run = by_seed[seed]
            s = json.loads((run / "summary.json").read_text())
            finals.setdefault(judge, {})[seed] = s["final"]["gold_accuracy"]["beyond"]
            amp = s.get("amplification", {})
            scored = s.get("scored", {}).get("amplified", {}).get("gold_accuracy", {})
            values = {
                "gold beyond, base": s["base"]["gold_accuracy"]["beyond"],
                "gold beyond, final": finals[judge][seed],
                "gold within, final": s["final"]["gold_accuracy"]["within"],
                "sycophancy beyond, base": s["base"]["sycophancy_rate"]["beyond"],
                "sycophancy beyond, final": s["final"]["sycophancy_rate"]["beyond"],
                "targets' gold accuracy, all": scored.get("all"),
                "targets' gold accuracy, beyond": scored.get("beyond"),
                "overseer calls per target": amp.get("overseer_calls_per_target"),
                "overseer checks per target": amp.get("overseer_checks_per_target"),
                "sub-questions per target": amp.get("subquestions_per_target"),
                "abstained": amp.get("abstained"),
                "difficulty reached": amp.get("difficulty_reached"),
                "steps to 90% of own final gold beyond": to_90(curve(run)),
                "steps to 90% of own final gain, gold beyond": to_90_gain(curve(run)),
            }
            for k, v in values.items():
                if v is not None:
                    r.setdefault(k, []).append(float(v))
    for judge, r in rows.items():
        print(f"## judge={judge} (seeds {sorted(runs[judge])})")
        for k, xs in r.items():
            print(f"  {k}: {ms(xs)}")
    if "oracle" in runs and len(runs) > 1:
        base = runs["oracle"]
        for judge, by_seed in runs.items():
            if judge == "oracle":
                continue
            seeds = sorted(set(by_seed) & set(base))
            ratio = [finals[judge][x] / finals["oracle"][x] for x in seeds]
            print(f"## {judge} / oracle, gold beyond (seeds paired): {ms(ratio)}")
    if a.frame:
        hi, lo = a.frame
        for judge, r in rows.items():
            pgr = [(x - lo) / (hi - lo) for x in r["gold beyond, final"]]
            print(f"## PGR on gold beyond, {judge} (frame {hi} / {lo}): {ms(pgr)}")
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6))
        colours = iter(["tab:orange", "tab:blue", "tab:green", "tab:red"])
        for judge, by_seed in runs.items():
            colour = "black" if judge == "oracle" else next(colours)
            for k, seed in enumerate(sorted(by_seed)):
                xs, ys = zip(*curve(by_seed[seed]), strict=True)
                label = (
                    ("oracle overseer" if judge == "oracle" else f"overseer: {judge}")
                    if not k
                    else None
                )
                ax.plot(xs, ys, color=colour, alpha=0.7, marker=".", label=label)
        ax.set_xlabel("PPO step")
        ax.set_ylabel("held-out gold accuracy, beyond")
        ax.set_title("Iterated amplification vs training on ground truth")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.plot, dpi=80)
        print(f"wrote {a.plot}")


if __name__ == "__main__":
    main()
