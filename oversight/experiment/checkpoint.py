"""Runs survive interruption: a run's key, its lock and registry entry, and its checkpoints.

Two invocations of the same experiment share a key (`run_key`). While a run lives it holds an
exclusive lock on `<cache>/runs/<key>.lock`; the OS drops the lock however the process dies
(`kill -9` included), so a free lock means no identical run is alive, with no pid to trust. Next
to it, `<key>.json` says where the run writes (its output dir, store and run row): a rerun of
the same command gets a new, timestamped output dir and store, so only this entry leads back.

A checkpoint (`<output_dir>/checkpoint/state.pt`, replaced atomically) holds everything the rest
of a run depends on: the policy, the reference model when a protocol's SFT phase replaced it,
the optimiser, the KL coefficient, every random stream, the protocol's problem stream, the
judge's cost, the task's truth store (verifiers and the harness read answers to problems drawn
before it), the protocol's own state and what `_train` has accumulated. So a resumed run on a
CPU ends where an uninterrupted one would, bit for bit (only its timings differ).
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import logging
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import PreTrainedModel

from oversight.cache import cache_root
from oversight.engine.ppo import PolicyWithValue, PPOTrainer
from oversight.errors import ConfigError
from oversight.store import Store
from oversight.tasks import Task
from protocols import Protocol, ProtocolContext

log = logging.getLogger(__name__)

FORMAT = 1
STATE = Path("checkpoint") / "state.pt"
"""a run's checkpoint, relative to its output dir"""
IGNORED = ("store", "checkpoint_every")
"""config keys that do not change what a run computes (the store's resolved paths change with
every invocation; its configured form stays in the key)"""


def run_key(cfg: DictConfig) -> str:
    """The experiment's identity: its resolved config but where it writes and how often it saves.

    The store stays in as configured (`sqlite:///${hydra:runtime.output_dir}/store.db`), not as
    resolved: a run killed with one kind of store is not resumed into it when asked for another.
    """
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    spec = {k: v for k, v in resolved.items() if k not in IGNORED}
    spec["store"] = OmegaConf.to_container(cfg.store, resolve=False)
    blob = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- the registry ------------------------------------------------------------------------------
@dataclass
class Entry:
    """Where a run writes, kept while it lives so the same command finds it again."""

    output_dir: str
    store_url: str
    run_id: int


class Claim:
    """This process's hold on a run key; the OS releases it when the process dies."""

    def __init__(self, key: str, fd: int) -> None:
        self.key, self.fd = key, fd
        self.entry_path = cache_root() / "runs" / f"{key}.json"

    def entry(self) -> Entry | None:
        try:
            return Entry(**json.loads(self.entry_path.read_text()))
        except (OSError, ValueError, TypeError):  # none, or a stale format: start afresh
            return None

    def register(self, entry: Entry) -> None:
        _write_atomically(self.entry_path, json.dumps(asdict(entry)).encode())

    def finish(self, output_dir: Path) -> None:
        """The run finished: nothing is left to resume."""
        shutil.rmtree(output_dir / STATE.parent, ignore_errors=True)
        self.entry_path.unlink(missing_ok=True)

    def release(self) -> None:
        os.close(self.fd)


def claim(key: str) -> Claim | None:
    """The key's lock, or None while an identical run holds it."""
    runs = cache_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    # Not filelock: it removes its file on release, and a waiter may then lock a file that a
    # newcomer no longer sees. The lock file stays; only the lock comes and goes.
    fd = os.open(runs / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return Claim(key, fd)


@dataclass
class Resume:
    """A dead run of this key to continue: where it wrote, and its checkpoint."""

    entry: Entry
    store: Store
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return self.state["progress"].step

    @property
    def output_dir(self) -> Path:
        return Path(self.entry.output_dir)


def resumable(c: Claim, device: torch.device) -> Resume | None:
    """The run this key's entry names, if it died after a checkpoint and before it finished."""
    entry = c.entry()
    if entry is None or not (Path(entry.output_dir) / STATE).is_file():
        return None
    try:
        store = Store(entry.store_url)  # opening it marks the dead run "interrupted"
    except ConfigError as e:
        log.warning("not resuming %s: %s", entry.output_dir, e)
        return None
    row = store.run(entry.run_id)
    if row is None or row.status == "finished" or row.key != c.key:
        return None
    state = torch.load(Path(entry.output_dir) / STATE, map_location=device, weights_only=False)
    if state.get("format") != FORMAT:
        log.warning("not resuming %s: its checkpoint is of another format", entry.output_dir)
        return None
    return Resume(entry, store, state)


def truncate_metrics(output_dir: Path, step: int) -> None:
    """metrics.jsonl as it was at the checkpoint: the steps after it are run again."""
    path = output_dir / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    kept = [x for x in lines if x.endswith("\n") and json.loads(x)["step"] <= step]
    _write_atomically(path, "".join(kept).encode())


# ---- the checkpoint ----------------------------------------------------------------------------
@dataclass
class Progress:
    """What `_train` has accumulated by the end of PPO step `step` (0: after the setup)."""

    step: int = 0
    records: list[Any] = field(default_factory=list)
    """every judgment the protocol asked for, for the label accuracy"""
    base_eval: dict[str, Any] = field(default_factory=dict)
    pretrained: dict[str, Any] = field(default_factory=dict)
    """the evaluation before a protocol's SFT phase; empty without one"""
    tokens: int = 0
    rollout_seconds: float = 0.0
    last_kl: float = 0.0


@dataclass
class Parts:
    """The live objects whose state a checkpoint holds; `restore` sets them in place."""

    policy: PolicyWithValue
    trainer: PPOTrainer
    base: PreTrainedModel
    """the frozen base model, the KL reference unless a protocol's SFT phase replaced it"""
    sampler: torch.Generator
    minibatches: torch.Generator
    ctx: ProtocolContext
    problems: Any
    """the protocol's problem stream (`oversight.experiment.run.ProblemStream`)"""
    protocol: Protocol
    task: Task


def _rng_state(parts: Parts) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "sampler": parts.sampler.get_state(),
        "minibatches": parts.minibatches.get_state(),
        "ctx": parts.ctx.rng.getstate(),
    }


def _set_rng_state(parts: Parts, s: dict[str, Any]) -> None:
    random.setstate(s["python"])
    torch.set_rng_state(s["torch"].cpu())
    if s["cuda"] is not None:
        torch.cuda.set_rng_state_all([x.cpu() for x in s["cuda"]])
    parts.sampler.set_state(s["sampler"].cpu())
    parts.minibatches.set_state(s["minibatches"].cpu())
    parts.ctx.rng.setstate(s["ctx"])


def save(output_dir: Path, progress: Progress, parts: Parts) -> None:
    """Write the checkpoint of step `progress.step`, replacing the last one in one rename."""
    ref = parts.trainer.ref
    state = {
        "format": FORMAT,
        # One pickle: objects the protocol and `progress` share (its records list) stay shared.
        "progress": progress,
        "protocol": parts.protocol.state_dict(),
        "policy": parts.policy.state_dict(),
        "reference": None if ref is parts.base else ref.state_dict(),
        "optimizer": parts.trainer.opt.state_dict(),
        "kl_coef": parts.trainer.kl_ctl.value,
        "rng": _rng_state(parts),
        "problems": parts.problems.drawn,
        "judge_cost": parts.ctx.judge.cost,
        "role_costs": {k: r.cost for k, r in parts.ctx.roles.items()},
        "truth": parts.task.truth,
    }
    path = output_dir / STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp")
    with tmp.open("wb") as f:
        torch.save(state, f)
    os.replace(tmp, path)


def restore(state: dict[str, Any], parts: Parts) -> Progress:
    """Set the live parts to a checkpoint's state; returns what `_train` had accumulated."""
    parts.policy.load_state_dict(state["policy"])
    if state["reference"] is not None:
        ref = copy.deepcopy(parts.base)
        ref.load_state_dict(state["reference"])
        parts.trainer.ref = ref
    parts.trainer.opt.load_state_dict(state["optimizer"])
    parts.trainer.kl_ctl.value = state["kl_coef"]
    _set_rng_state(parts, state["rng"])
    parts.problems.drawn = state["problems"]
    parts.ctx.judge.cost = state["judge_cost"]
    for k, cost in state["role_costs"].items():
        parts.ctx.roles[k].cost = cost
    parts.task.truth = state["truth"]
    parts.protocol.ctx = parts.ctx  # `setup`, which sets it, does not run again
    parts.protocol.load_state_dict(state["protocol"])
    return state["progress"]


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
