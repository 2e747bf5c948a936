"""Typed schema for the Hydra config. Group files in `conf/` fill it; a typo'd key or a wrong
type fails at start-up with Hydra's one-line message instead of deep inside a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from oversight.engine.ppo import PPOConfig
from oversight.models.policy import PolicyConfig


@dataclass
class EvalConfig:
    n_problems: int = 1024
    """held-out problems, spread over all difficulties"""
    every: int = 0
    """also evaluate every this many PPO steps (0: only before and after training)"""
    seed: int = 12345
    """held-out problems are the same for every run of a sweep"""


@dataclass
class StoreConfig:
    url: str = MISSING
    """SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db"""


@dataclass
class Config:
    task: Any = MISSING
    judge: Any = MISSING
    protocol: Any = MISSING
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    competence: int = 2
    """steps a judge can check per answer; also splits evaluation into within / beyond"""
    device: str = "auto"
    """auto picks CUDA (bf16) when present, else CPU"""
    threads: int = 0
    """CPU threads for torch (0: torch's default)"""


def register() -> None:
    ConfigStore.instance().store(name="schema", node=Config)
