"""Runs into settings (configs that differ only in the seed) and families (a preset and its size),
the swept keys of a family, and its baseline."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from oversight.analysis.load import IGNORED, RunData, natural_order
from oversight.analysis.stats import CI, bootstrap_ci


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": [1, 2]}} -> {"a.b.0": 1, "a.b.1": 2}"""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out |= flatten(v, f"{prefix}{k}.")
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out |= flatten(v, f"{prefix}{i}.")
    else:
        out[prefix[:-1]] = d
    return out


def setting_items(config: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in flatten(config).items()
        if not any(k == i or k.startswith(i + ".") for i in IGNORED)
    }


def display_key(key: str) -> str:
    """judge.name -> judge, protocol._target_ -> protocol: what a reader calls the swept thing."""
    for suffix in (".name", "._target_"):
        if key.endswith(suffix) and key.count(".") == 1:
            return key[: -len(suffix)]
    return key


def show_value(key: str, value: Any) -> str:
    if key.endswith("._target_") and isinstance(value, str):
        value = value.rsplit(".", 1)[-1]
    return str(value)


def swept_keys(settings: Sequence[dict[str, Any]]) -> list[str]:
    """The keys that name what differs between settings, most readable first.

    Every differing config key is a candidate; one determined by keys already kept (like
    `judge.members.0.rater.competence` by `competence`, or a pool's members by its name) is left
    out, so a label reads `competence=3`, not a list of every consequence of it.
    """
    if len(settings) < 2:
        return []
    missing = "<absent>"
    keys = sorted({k for s in settings for k in s})
    differing = [k for k in keys if len({json.dumps(s.get(k, missing)) for s in settings}) > 1]

    def priority(k: str) -> tuple:
        if "." not in k:
            return (0, k)
        if k.endswith(".name"):
            return (1, k.count("."), k)
        if k.endswith("._target_"):
            return (2, k.count("."), k)
        return (3, k.count("."), k)

    kept: list[str] = []
    for k in sorted(differing, key=priority):
        seen: dict[str, set[str]] = defaultdict(set)
        for s in settings:
            seen[json.dumps([s.get(j, missing) for j in kept])].add(json.dumps(s.get(k, missing)))
        if not kept or any(len(v) > 1 for v in seen.values()):
            kept.append(k)
    return kept


@dataclass
class Setting:
    items: dict[str, Any]
    runs: list[RunData]
    label: str = ""
    label_values: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> list[RunData]:
        return [r for r in self.runs if r.status == "finished"]

    def ci(self, metric: str, n_resamples: int) -> CI:
        return bootstrap_ci([r.value(metric) for r in self.finished], n_resamples=n_resamples)


@dataclass
class Family:
    name: str
    settings: list[Setting]
    keys: list[str]
    baseline: Setting | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") or "sweep"


def group(runs: Sequence[RunData]) -> list[Family]:
    """Runs -> families (preset) -> settings (same config but for the seed), sorted."""
    by_family: dict[str, dict[str, Setting]] = defaultdict(dict)
    for r in runs:
        items = setting_items(r.config)
        key = json.dumps(sorted(items.items()), default=str)
        s = by_family[r.family].setdefault(key, Setting(items, []))
        s.runs.append(r)
    families = []
    for name in sorted(by_family):
        settings = list(by_family[name].values())
        keys = swept_keys([s.items for s in settings])
        for s in settings:
            s.label_values = {display_key(k): show_value(k, s.items.get(k, "–")) for k in keys}
            s.label = ", ".join(f"{k}={v}" for k, v in s.label_values.items()) or "all runs"
            s.runs.sort(key=lambda r: natural_order(r.seed))
        settings.sort(key=lambda s: tuple(natural_order(s.items.get(k)) for k in keys))
        families.append(Family(name, settings, keys))
    return families


def choose_baselines(families: Sequence[Family], specs: Sequence[str]) -> None:
    """The setting matching every `key=value` spec (by label or by config key), else the first."""
    wanted = [s.split("=", 1) for s in specs]
    for f in families:
        f.baseline = f.settings[0]
        for s in f.settings:
            if wanted and all(
                str(s.label_values.get(k, s.items.get(k, object()))) == v for k, v in wanted
            ):
                f.baseline = s
                break
