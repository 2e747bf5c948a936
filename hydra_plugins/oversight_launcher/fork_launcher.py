"""`hydra/launcher=fork` (conf/hydra/launcher/fork.yaml): local parallel jobs forked from the launching process.

Hydra's joblib launcher always uses loky, whose workers are fresh interpreters that import torch
and transformers again (~3 s CPU each), more than a tiny job's whole run (bench/sweep_parallel.py).
A forked worker starts with them imported. Each job gets its own fork (maxtasksperchild=1), so no
job inherits another's torch threads, RNG or memory. Forking is safe here because the launching
process only composes configs: it never starts CUDA or torch's thread pools. On GPUs, use one
job per device through the slurm or ray launchers instead.
"""

import logging
import multiprocessing as mp
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_joblib_launcher._core import execute_job
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# What every job shares, set just before forking: children inherit it instead of unpickling the
# task function (which pickle cannot find by name once hydra.main has wrapped it).
_SHARED: tuple[HydraContext, DictConfig, TaskFunction, dict[Any, Any]] | None = None


def _job(idx: int, overrides: list[str]) -> JobReturn:
    assert _SHARED is not None
    ret = execute_job(idx, overrides, *_SHARED)
    # Back to the launcher through a pipe: plain configs, since Hydra's plugin scan re-imports
    # the modules of the dataclasses that typed configs point to, and pickle refuses such classes.
    ret.cfg = OmegaConf.create(OmegaConf.to_container(ret.cfg))
    ret.hydra_cfg = OmegaConf.create(OmegaConf.to_container(ret.hydra_cfg))
    return ret


class ForkLauncher(Launcher):
    def __init__(self, n_jobs: int = -1) -> None:
        if n_jobs == 0 or n_jobs < -1:
            raise ValueError(f"hydra.launcher.n_jobs must be -1 or positive, got {n_jobs}")
        self.n_jobs = os.cpu_count() or 1 if n_jobs == -1 else n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        global _SHARED
        assert self.config and self.task_function and self.hydra_context
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        n = min(self.n_jobs, len(job_overrides))
        log.info(
            f"Forking {len(job_overrides)} jobs, {n} at a time, into {self.config.hydra.sweep.dir}"
        )
        for i, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + i} : {' '.join(filter_overrides(overrides))}")
        _SHARED = (self.hydra_context, self.config, self.task_function, Singleton.get_state())
        jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        try:
            with mp.get_context("fork").Pool(n, maxtasksperchild=1) as pool:
                return pool.starmap(_job, jobs, chunksize=1)
        finally:
            _SHARED = None
