"""Train a policy under one oversight protocol and measure it against hidden ground truth.

python -m oversight.train                                   # RLHF, biased rater pool
python -m oversight.train judge=oracle ppo.steps=100 seed=3
python -m oversight.train store=postgres                    # shared PostgreSQL store
python -m oversight.train -m seed=0,1,2                     # a sweep (Hydra multirun)

Killed, the same command resumes the run from its last checkpoint (`checkpoint_every`); a sweep
run again skips the jobs that finished in its store (`oversight.experiment.checkpoint`).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from oversight.errors import ConfigError
from oversight.experiment.config import register
from oversight.experiment.run import report, run

log = logging.getLogger("oversight")
register()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    try:
        hydra = HydraConfig.get()
        summary = run(cfg, Path(hydra.runtime.output_dir), sweep=hydra.mode == RunMode.MULTIRUN)
    except ConfigError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    log.info("base vs final (held-out problems)\n%s", report(summary))
    return summary["final"]["gold_accuracy"]["all"]


if __name__ == "__main__":
    main()
