"""The config: every default is defined once, in the code; the YAML files only select and
override; every field is documented; every judge and protocol config composes and builds."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest
from omegaconf import OmegaConf

from oversight.engine.ppo import PPOConfig
from oversight.experiment.config import Config, EvalConfig, schema_of
from oversight.experiment.run import build
from oversight.judges import Judge, SimulatedRater
from oversight.judges.human_settings import HumanOrSimulatedSettings, HumanSettings
from oversight.models.policy import PolicyConfig
from oversight.models.reward_model import RewardModelConfig
from oversight.tasks import ArithmeticConfig
from protocols import Protocol
from protocols.rlhf import RLHF
from tests.helpers import ROOT, composed

CONF = ROOT / "conf"
CONFIGURED = [PolicyConfig, PPOConfig, EvalConfig, Config, RewardModelConfig, ArithmeticConfig]
CONFIGURED += [RLHF, Judge, SimulatedRater, HumanSettings, HumanOrSimulatedSettings]


def test_schema_of_reads_types_and_defaults_off_the_signature():
    node = OmegaConf.structured(schema_of(SimulatedRater))
    assert node._target_ == "oversight.judges.simulated.SimulatedRater"
    assert node.agreement_bias == 0.0 and node.competence == 2
    assert OmegaConf.is_missing(node, "name")  # required: no default
    assert "cost" not in node  # not an init argument
    with pytest.raises(Exception, match="could not be converted"):
        node.noise = "lots"
    rlhf = OmegaConf.structured(schema_of(RLHF))
    assert rlhf.reward_model.readout == RewardModelConfig().readout  # nested dataclass, typed


@pytest.mark.parametrize(
    "path",
    sorted(CONF.glob("judge/*.yaml")) + sorted(CONF.glob("protocol/*.yaml")),
    ids=lambda p: f"{p.parent.name}={p.stem}",
)
def test_every_judge_and_protocol_config_composes_and_builds(path, tmp_path):
    cfg = composed(f"{path.parent.name}={path.stem}", f"store.url=sqlite:///{tmp_path}/s.db")
    part = build(cfg[path.parent.name], path.parent.name)
    assert isinstance(part, Judge if path.parent.name == "judge" else Protocol)


@pytest.mark.parametrize(
    "path", sorted(CONF.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_yaml_sets_no_value_its_schema_already_has(path):
    """A group file that restated a default would be a second place to change it."""
    group = path.parent.name
    if group not in ("judge", "protocol", "task"):
        return
    cfg = composed(f"{group}={path.stem}")[group]
    schema = OmegaConf.structured(_schema(cfg))
    own = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    for key, value in own.items():
        if key == "defaults" or OmegaConf.is_missing(schema, key):
            continue
        assert value != schema[key], f"{path.name} restates the default {key}={value!r}"


def _schema(cfg) -> object:
    target = cfg.get("_target_")
    if target is None:
        return ArithmeticConfig
    module, _, name = target.rpartition(".")
    return schema_of(getattr(__import__(module, fromlist=[name]), name))


@pytest.mark.parametrize("cls", CONFIGURED, ids=lambda c: c.__name__)
def test_every_config_field_has_a_docstring(cls):
    """cleanrl's style: a one-line docstring under each field."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    documented = {
        stmt.target.id
        for stmt, after in zip(body, body[1:], strict=False)
        if isinstance(stmt, ast.AnnAssign)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
        and isinstance(after.value.value, str)
    }
    inherited = {
        f.name
        for base in cls.__mro__[1:]
        if dataclasses.is_dataclass(base)
        for f in dataclasses.fields(base)
    }
    assert names - documented - inherited == set()


def test_the_main_config_is_the_dataclass_defaults():
    cfg = composed()
    assert OmegaConf.to_object(cfg.policy) == PolicyConfig()
    assert OmegaConf.to_object(cfg.ppo) == PPOConfig()
    assert cfg.judge.name == "pool" and cfg.protocol.n_comparisons == RLHF().n_comparisons
