"""`hydra/launcher=fork` (conf/hydra/launcher/fork.yaml): local parallel jobs forked from the
launching process.

Hydra's joblib launcher always uses loky, whose workers are fresh interpreters that import torch
and transformers again (~3 s CPU each), more than a tiny job's whole run (bench/sweep_parallel.py).
A forked job starts with them imported, and each job gets a fresh fork, so no job inherits
another's torch threads, RNG or memory. Forking is safe here because the launching process only
composes configs: it never starts CUDA or torch's thread pools. On GPUs, use one job per device
through the slurm or ray launchers instead.

A job that exits (a clear-error `sys.exit`) or dies (a signal, the OOM killer) is reported as a
failed job, like one that raises: the sweep goes on and Hydra reports the failure at the end.
A job whose config is bad never starts: every job's config is composed and validated first
(`oversight.experiment.config.validate`), and one bad value stops the whole sweep with one line
naming the job, before any job is forked.
"""

import logging
import multiprocessing as mp
import os
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_joblib_launcher._core import execute_job
from omegaconf import DictConfig, OmegaConf

from oversight.errors import ConfigError
from oversight.experiment.config import validate

log = logging.getLogger(__name__)

# What every job shares, set just before forking: children inherit it instead of unpickling the
# task function (which pickle cannot find by name once hydra.main has wrapped it).
_SHARED: tuple[HydraContext, DictConfig, TaskFunction, dict[Any, Any]] | None = None


def _failed(overrides: Sequence[str], why: str) -> JobReturn:
    return JobReturn(
        overrides=list(overrides), status=JobStatus.FAILED, _return_value=RuntimeError(why)
    )


def _job(idx: int, overrides: list[str], out: Connection) -> None:
    """The forked child: run job `idx` and send its JobReturn back through `out`."""
    assert _SHARED is not None
    try:
        ret = execute_job(idx, overrides, *_SHARED)
    except SystemExit as e:  # Hydra catches what a task raises, not its sys.exit
        ret = _failed(overrides, f"job #{idx} exited with status {e.code}")
    # Back through a pipe as plain configs: Hydra's plugin scan re-imports the modules of the
    # dataclasses that typed configs point to, and pickle refuses such classes.
    for field in ("cfg", "hydra_cfg"):
        if getattr(ret, field) is not None:
            setattr(ret, field, OmegaConf.create(OmegaConf.to_container(getattr(ret, field))))
    out.send(ret)
    out.close()


class ForkLauncher(Launcher):
    def __init__(self, n_jobs: int = -1) -> None:
        if n_jobs == 0 or n_jobs < -1:
            raise ValueError(f"hydra.launcher.n_jobs must be -1 or positive, got {n_jobs}")
        self.n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
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
        todo = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        self._validate(todo)
        sweep_dir = self.config.hydra.sweep.dir
        Path(str(sweep_dir)).mkdir(parents=True, exist_ok=True)
        n = min(self.n_jobs, len(job_overrides))
        log.info(f"Forking {len(job_overrides)} jobs, {n} at a time, into {sweep_dir}")
        for i, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + i} : {' '.join(filter_overrides(overrides))}")

        _SHARED = (self.hydra_context, self.config, self.task_function, Singleton.get_state())
        fork = mp.get_context("fork")
        results: dict[int, JobReturn] = {}
        running: dict[Connection, tuple[int, list[str], Any]] = {}
        try:
            while todo or running:
                while todo and len(running) < n:
                    idx, overrides = todo.pop(0)
                    inbox, out = fork.Pipe(duplex=False)
                    proc = fork.Process(target=_job, args=(idx, overrides, out), name=f"job{idx}")
                    proc.start()
                    out.close()  # the child holds the only writer: its death reads as EOF
                    running[inbox] = (idx, overrides, proc)
                for inbox in wait(list(running)):
                    idx, overrides, proc = running.pop(inbox)  # type: ignore[index]
                    try:
                        ret = inbox.recv()
                    except EOFError:  # no result: the child died
                        ret = None
                    proc.join()
                    inbox.close()
                    why = f"job #{idx} died with exit code {proc.exitcode}"
                    results[idx] = ret or _failed(overrides, why)
        finally:
            _SHARED = None
            for _, _, proc in running.values():  # interrupted: take the running jobs down too
                proc.terminate()
        return [results[initial_job_idx + i] for i in range(len(job_overrides))]

    def _validate(self, todo: list[tuple[int, list[str]]]) -> None:
        """Every job's config, composed as its job will compose it, checked before any starts:
        a value out of range in a sweep is one line now, not dozens of failed jobs later."""
        assert self.config and self.hydra_context
        bad: list[tuple[int, list[str], ConfigError]] = []
        for idx, overrides in todo:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            try:
                validate(cfg)
            except ConfigError as e:
                bad.append((idx, overrides, e))
        if not bad:
            return
        idx, overrides, e = bad[0]
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise e
        more = f" (and {len(bad) - 1} more of {len(todo)} jobs)" if len(bad) > 1 else ""
        print(
            f"error: job {idx} ({' '.join(filter_overrides(overrides))}): {e}{more}",
            file=sys.stderr,
        )
        sys.exit(2)
