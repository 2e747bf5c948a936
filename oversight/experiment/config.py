"""The typed Hydra config. Every default is defined once, in the code: the dataclasses below and
the signatures of the classes that config files name by `_target_` (judges, protocols). The YAML
files in `conf/` only select and override.

`register()` puts one structured config per part into Hydra's ConfigStore under `schema/…`
(derived from the part's signature by `schema_of`), and each YAML file extends its part's schema
(`defaults: [/schema/judge/simulated@_here_, _self_]`). So every key a part takes can be set from
the command line (`judge.length_bias=1.0`), and a typo'd key or a wrong type fails at start-up
with Hydra's one-line message instead of deep inside a run.

What each value may be is declared there too (`oversight.checks`), and `validate` checks a
composed config against it before a run, or a sweep's first job, builds anything.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from hydra.core.config_store import ConfigStore
from hydra.utils import get_class
from omegaconf import MISSING, DictConfig, OmegaConf

from oversight import checks
from oversight.checks import Check, Count, Natural
from oversight.engine.ppo import PPOConfig
from oversight.errors import ConfigError
from oversight.judges import Oracle, RaterPool, SimulatedRater
from oversight.judges.human_settings import HumanOrSimulatedSettings, HumanSettings
from oversight.models.policy import PolicyConfig
from oversight.roles.critic import LearnedCritic, SimulatedCritic
from oversight.tasks import TASKS, ArithmeticConfig
from protocols.amplification import Amplification
from protocols.assisted import Assisted
from protocols.constitutional import Constitutional
from protocols.consultancy import Consultancy
from protocols.debate import Debate
from protocols.rlhf import RLHF


def _is_device(name: str) -> bool:
    if name == "auto":
        return True
    import torch  # loaded already by every run; not by composing a config

    try:
        torch.device(name)
    except RuntimeError:
        return False
    return True


@dataclass
class EvalConfig:
    n_problems: Count = 1024
    """held-out problems, spread over all difficulties"""
    every: Natural = 0
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
    """the task family and its knobs (conf/task/)"""
    judge: Any = MISSING
    """who labels: oracle, simulated rater, rater pool, humans (conf/judge/)"""
    protocol: Any = MISSING
    """how outputs become training signal (conf/protocol/)"""
    critic: Any = None
    """the AI critic a protocol may consult (conf/critic/: simulated, learned); none by default"""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """the policy's architecture, base-model SFT and sampling"""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """the shared PPO core"""
    store: StoreConfig = field(default_factory=StoreConfig)
    """where runs, metrics and judgments go (conf/store/)"""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """the evaluation harness"""
    seed: int = 0
    """the run's seed: PPO's problems, samples and the judges' draws (not the base model)"""
    competence: Natural = 2
    """steps a judge can check per answer; also splits evaluation into within / beyond"""
    device: Annotated[str, Check(_is_device, "must be auto, cpu, cuda, cuda:N or mps")] = "auto"
    """auto picks CUDA (bf16) when present, else CPU"""
    threads: Natural = 0
    """torch CPU threads; 0: auto, one thread for small from-scratch policies during PPO
    (`oversight.engine.ppo.cpu_threads`) and torch's default otherwise"""
    checkpoint_every: Natural = 10
    """save a checkpoint every this many PPO steps (and once after the protocol's setup), from
    which the same command resumes a killed run (`oversight.experiment.checkpoint`); 0: never"""


_PLAIN = (int, float, bool, str)


def _typed(hint: Any) -> bool:
    """Plain values and settings dataclasses; a part (a Judge: an ABC) is built by `_target_`."""
    return hint in _PLAIN or (dataclasses.is_dataclass(hint) and not inspect.isabstract(hint))


def _field_type(hint: Any) -> Any:
    """The annotation OmegaConf can check, or Any for what it cannot type (a Judge, a list)."""
    if _typed(hint):
        return hint
    args = typing.get_args(hint)
    if len(args) == 2 and type(None) in args:  # X | None
        (inner,) = (a for a in args if a is not type(None))
        if _typed(inner):
            return inner | None
    return Any


_SCHEMAS: dict[type, type] = {}
_BUILDS: dict[str, type] = {}
"""each schema's `_target_` -> the class whose signature (and declared checks) it has"""


def schema_of(target: type, path: str | None = None) -> type:
    """A structured config for `target`: `_target_` plus its keyword arguments, with their types
    and defaults read off its signature (a required argument is MISSING). `path`, when given, is
    the class to build instead, whose settings `target` holds. A subclass's schema subclasses its
    parent's, as the classes do."""
    if target in _SCHEMAS:
        return _SCHEMAS[target]
    # a dataclass's annotations resolve in the modules that declare them, base classes included
    hints = typing.get_type_hints(target if dataclasses.is_dataclass(target) else target.__init__)
    factories = {
        f.name: f.default_factory
        for f in (dataclasses.fields(target) if dataclasses.is_dataclass(target) else ())
        if f.default_factory is not dataclasses.MISSING
    }
    fields: list[tuple[str, Any, Any]] = [
        ("_target_", str, field(default=path or f"{target.__module__}.{target.__qualname__}"))
    ]
    for p in inspect.signature(target).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in factories:
            default = field(default_factory=factories[p.name])
        else:
            default = field(default=MISSING if p.default is p.empty else p.default)
        fields.append((p.name, _field_type(hints.get(p.name, Any)), default))
    # only where the signature extends the parent's (Oracle narrows SimulatedRater's to `name`)
    names = {name for name, _, _ in fields}
    parents = tuple(
        _SCHEMAS[b]
        for b in target.__mro__[1:2]
        if b in _SCHEMAS and {f.name for f in dataclasses.fields(_SCHEMAS[b])} <= names
    )
    schema = dataclasses.make_dataclass(f"{target.__name__}Schema", fields, bases=parents)
    _SCHEMAS[target] = schema
    _BUILDS[fields[0][2].default] = target
    return schema


def register() -> None:
    """The main schema, and one schema per part for the YAML files in conf/ to extend."""
    cs = ConfigStore.instance()
    cs.store(name="schema", node=Config)
    cs.store(group="schema/task", name="arithmetic", node=ArithmeticConfig)
    human = "oversight.judges.human."  # its settings only: the study backend stays unloaded
    parts = {
        "judge/oracle": schema_of(Oracle),
        "judge/simulated": schema_of(SimulatedRater),
        "judge/pool": schema_of(RaterPool),
        "judge/human": schema_of(HumanSettings, human + "HumanJudge"),
        "judge/human_or_simulated": schema_of(HumanOrSimulatedSettings, human + "HumanOrSimulated"),
        "protocol/rlhf": schema_of(RLHF),
        "protocol/constitutional": schema_of(Constitutional),
        "protocol/assisted": schema_of(Assisted),
        "protocol/debate": schema_of(Debate),
        "protocol/consultancy": schema_of(Consultancy),
        "protocol/amplification": schema_of(Amplification),
        "critic/simulated": schema_of(SimulatedCritic),
        "critic/learned": schema_of(LearnedCritic),
    }
    for part, schema in parts.items():
        group, name = part.split("/")
        cs.store(group=f"schema/{group}", name=name, node=schema)


def validate(cfg: DictConfig) -> None:
    """Check a composed config against what its classes declare (`oversight.checks`): the main
    sections by their dataclasses, the task by its config class, and every part a node builds by
    `_target_` (a judge, a pool's raters, a protocol), by the class that target names. Only the
    values checked are resolved, so `${hydra:...}` in a store URL need not be resolvable yet.
    Raises a one-line ConfigError: every problem found, `key=value: what is allowed`."""
    found = list(checks.problems(Config, cfg))
    task = cfg.get("task")
    if isinstance(task, DictConfig):
        name = task.get("name", "arithmetic")
        if name in TASKS:
            found += checks.problems(TASKS[name][0], task, "task.")
        else:
            found.append(f"task.name={name!r}: must be one of {', '.join(map(repr, TASKS))}")
    for key, node in _parts(cfg):
        cls = _BUILDS.get(node._target_)
        if cls is None:
            try:
                cls = get_class(node._target_)
            except Exception:  # an unknown target: building it says so, in one line
                continue
        found += checks.problems(cls, _Own(node), f"{key}.")
    if found:
        raise ConfigError("; ".join(found))


_COPY = re.compile(r"^\$\{[^:${}]+\}$")  # `${competence}`, not a resolver's `${oc.env:X}`


class _Own(Mapping[str, Any]):
    """A part's node without the values it copies from another key (a rater's `competence:
    ${competence}`): those are checked where they are set, so one bad value is one problem."""

    def __init__(self, node: DictConfig) -> None:
        self.node = node
        raw = OmegaConf.to_container(node, resolve=False)
        assert isinstance(raw, dict)
        self.keys_ = [k for k, v in raw.items() if not (isinstance(v, str) and _COPY.match(v))]

    def __getitem__(self, key: str) -> Any:
        return self.node[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_)

    def __len__(self) -> int:
        return len(self.keys_)

    def __contains__(self, key: object) -> bool:
        return key in self.keys_


def _parts(cfg: DictConfig) -> list[tuple[str, DictConfig]]:
    """(key, node) of every node with a `_target_`, found without resolving any value."""
    out: list[tuple[str, DictConfig]] = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            if "_target_" in value:
                out.append((key, OmegaConf.select(cfg, key)))
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]")

    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)
    walk({k: v for k, v in plain.items() if k != "hydra"}, "")
    return out
