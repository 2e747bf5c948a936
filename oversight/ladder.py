"""Judge accuracy on the same answer pairs, deciding alone, with a consultant, with debaters and
as the oracle (`oversight.experiment.judge_ladder`), over seeds, with a plot.

python -m oversight.ladder                                    # 6-8 steps, competence 2, 3 seeds
python -m oversight.ladder --seeds 0 1 2 3 4 --problems 1024
python -m oversight.ladder protocol.best_of=4 judge.noise=0   # Hydra overrides, as for training
python -m oversight.ladder policy.path=/models/my-lm          # another policy argues
python -m oversight.ladder --best-of 1 4 8                    # judge accuracy against debaters' strength
python -m oversight.ladder --debaters RUN0/policy RUN1/policy RUN2/policy   # PPO-trained debaters, per seed
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hydra import compose, initialize
from omegaconf import DictConfig

from oversight.errors import ConfigError
from oversight.experiment.config import register
from oversight.experiment.judge_ladder import OVERRIDES, ladder, strength


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line; Hydra overrides (key=value) may stand anywhere, even after `--seeds`'
    list, which argparse alone would read them into."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides (after the ladder's own)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--problems", type=int, default=512, help="problems drawn per seed")
    ap.add_argument("--out", type=Path, default=None, help="default: outputs/ladder/DATE_TIME")
    ap.add_argument(
        "--best-of",
        type=int,
        nargs="+",
        default=None,
        help="a ladder per debaters' best-of-N (OUT/best_of_N) and strength.png: accuracy against N",
    )
    ap.add_argument(
        "--debaters",
        type=Path,
        nargs="+",
        default=None,
        help="per seed, a trained run's policy/ folder that argues instead of the base model",
    )
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    args = ap.parse_args([a for a in argv if a not in overrides])
    args.overrides = [*overrides, *args.overrides]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    out = args.out or Path("outputs/ladder") / time.strftime("%Y-%m-%d_%H-%M-%S")
    register()

    def climb(extra: list[str], to: Path) -> list[dict]:
        def cfg_for_seed(seed: int) -> DictConfig:
            with initialize(config_path="../conf", version_base="1.3"):
                return compose("config", [*OVERRIDES, *args.overrides, *extra, f"seed={seed}"])

        try:
            summary = ladder(cfg_for_seed, args.seeds, args.problems, to, debaters=args.debaters)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        for s in summary:
            acc = "-" if s["accuracy"] is None else f"{s['accuracy']:.3f} ± {s['sd']:.3f}"
            items = f"({s['items']:.0f} items, {s['checks_per_item']:.2f} checks)"
            print(f"{s['rung']:<32} {acc:>15}  {items}")
        print(f"written: {to / 'ladder.json'}, {to / 'ladder.png'}")
        return summary

    if not args.best_of:
        climb([], out)
        return
    # The same seeds draw the same answer pairs at every N; only the debaters' turns differ.
    by_n = {n: climb([f"protocol.best_of={n}"], out / f"best_of_{n}") for n in args.best_of}
    strength(by_n, out / "strength.png")
    print(f"written: {out / 'strength.png'}, {out / 'strength.json'}")


if __name__ == "__main__":
    main()
