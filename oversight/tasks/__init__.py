"""Task families. Each hands out public problems and keeps its answers behind the truth wall."""

from __future__ import annotations

from typing import Any

from oversight.errors import ConfigError
from oversight.tasks.arithmetic import ArithmeticConfig, ArithmeticTask
from oversight.tasks.base import (
    GroundTruthAccessError,
    PublicProblem,
    PublicText,
    Task,
    Truth,
    TruthStore,
    Verifier,
)

TASKS = {"arithmetic": (ArithmeticConfig, ArithmeticTask)}


def build_task(cfg: dict[str, Any]) -> Task:
    cfg = dict(cfg)
    name = cfg.get("name", "arithmetic")
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    config_cls, task_cls = TASKS[name]
    return task_cls(config_cls(**cfg))


__all__ = [
    "ArithmeticConfig",
    "ArithmeticTask",
    "GroundTruthAccessError",
    "PublicProblem",
    "PublicText",
    "Task",
    "Truth",
    "TruthStore",
    "Verifier",
    "build_task",
]
