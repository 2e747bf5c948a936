"""AI helper roles a protocol consults (see `base.Role`): today the critic, in two kinds.

`build_roles` builds each role group the config sets (`critic=simulated`, `critic=learned`; a
group left null is no role) and attaches the task, so each role has its own metered verifier
and, if learned, its model.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from oversight.errors import ConfigError, built
from oversight.roles.base import Failure, Role, RoleCost
from oversight.roles.critic import Critic, Critique, LearnedCritic, SimulatedCritic
from oversight.tasks import Task

ROLES: dict[str, type[Role]] = {"critic": Critic}
"""each role group of the config (conf/<group>/), and what its node must build"""


def build_roles(cfg: DictConfig, task: Task, device: torch.device | str = "cpu") -> dict[str, Role]:
    """The roles `cfg` configures, by group, attached to `task`; a one-line ConfigError for a
    node that cannot build one."""
    roles: dict[str, Role] = {}
    for group, kind in ROLES.items():
        node = cfg.get(group) if group in cfg else None
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(
                f"{group}: must name a kind ({group}=simulated|learned), got {node!r}"
            )
        role = built(node, group)
        if not isinstance(role, kind):
            raise ConfigError(f"{group}: {node._target_} is not a {kind.__name__}")
        role.attach(task, device)
        roles[group] = role
    return roles


__all__ = [
    "Critic",
    "Critique",
    "Failure",
    "LearnedCritic",
    "Role",
    "RoleCost",
    "SimulatedCritic",
    "build_roles",
]
