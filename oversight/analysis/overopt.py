"""Reward over-optimisation in a family (Gao, Schulman and Hilton 2022): each run's path of
(d = sqrt(KL), gold gain, proxy gain), the law gold gain = d (alpha - beta log d) fitted per
setting and per proxy, the proxy's rank correlation with gold along the path, and which of the
two experiments the family is: who labelled the pairs the proxy was trained on.

A *proxy* is the settings that share a reward model: the same values of every swept key but
those that only say how far RL goes (`OVEROPT_KEYS`: the KL coefficient, PPO steps). Its fit
pools those settings, as Gao et al. found the KL penalty acts like early stopping on gold vs d.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from oversight.analysis.group import Family, Setting, display_key, show_value
from oversight.analysis.load import OVEROPT_KEYS, RunData, held_out, lookup
from oversight.analysis.stats import CurveFit, fit_gold_curve, spearman

Point = tuple[float, float, float]
"""(d = sqrt(KL), gold gain over the base model, proxy gain over the base model)"""

GOLD_LABELS = (
    "proxy trained on the oracle's labels (Gao et al.'s setting): the gap between proxy and "
    "gold comes from the proxy's own errors"
)
BIASED_LABELS = (
    "proxy trained on the biased {}'s labels: the proxy points away from gold from the start"
)


def labeller(run: RunData) -> str:
    """The name of the judge whose labels trained the run's proxy, from its resolved config."""
    judge = run.config.get("judge")
    name = judge.get("name") if isinstance(judge, dict) else None
    return str(name or (run.summary or {}).get("judge") or "?")


def kind(runs: list[RunData]) -> str:
    """Which experiment these runs are, in words: gold labels (oracle) or biased ones."""
    if {labeller(r) for r in runs} == {"oracle"}:
        return GOLD_LABELS
    pool = any("Pool" in str((r.config.get("judge") or {}).get("_target_", "")) for r in runs)
    return BIASED_LABELS.format("pool" if pool else "judge")


def overopt_points(run: RunData) -> list[Point]:
    """(d, gold gain, proxy gain) at every held-out evaluation of a run's training.

    The KL logged at step s is measured on that step's rollout, before its update; the policy
    evaluated after step s is the one the rollout of step s + 1 measured, so that KL is used.
    """
    base_gold = lookup(run.summary, "base", "gold_accuracy", "all")
    base_proxy = lookup(run.summary, "base", "proxy_reward")
    gold = dict(held_out(run, "gold"))
    proxy = dict(held_out(run, "proxy"))
    if not gold or base_gold is None:
        return []
    total = max(gold)
    pts = []
    for s, g in sorted(gold.items()):
        if s == 0:
            continue
        row = run.steps.get(s + 1) or run.steps.get(s) or {}
        kl = lookup(run.summary, "kl") if s == total else lookup(row, "kl")
        if kl is None:
            continue
        pg = proxy.get(s)
        gain_p = pg - base_proxy if pg is not None and base_proxy is not None else math.nan
        pts.append((math.sqrt(max(kl, 0.0)), g - base_gold, gain_p))
    return pts


@dataclass
class PathFit:
    """The law fitted to every held-out evaluation of every finished run of some settings."""

    label: str
    settings: list[Setting]
    points: list[Point]
    fit: CurveFit | None
    spearman: float | None
    """rank correlation of proxy gain with gold gain over the points"""

    @property
    def runs(self) -> list[RunData]:
        return [r for s in self.settings for r in s.runs]

    @property
    def d_max(self) -> float:
        return max((p[0] for p in self.points), default=0.0)


def path_fit(label: str, settings: list[Setting]) -> PathFit:
    pts = [p for s in settings for r in s.finished for p in overopt_points(r)]
    fit = fit_gold_curve([p[0] for p in pts], [p[1] for p in pts])
    return PathFit(label, settings, pts, fit, spearman([p[2] for p in pts], [p[1] for p in pts]))


@dataclass
class Overopt:
    proxy_keys: list[str]
    """the swept keys that set the proxy (everything swept but how far RL goes)"""
    proxies: list[PathFit]
    settings: list[PathFit]


def overopt_fits(f: Family) -> Overopt:
    """Fits per proxy (its settings pooled) and per setting."""
    keys = [k for k in f.keys if k not in OVEROPT_KEYS]
    by_proxy: dict[str, list[Setting]] = defaultdict(list)
    for s in f.settings:  # already in sweep order, so the proxies are too
        label = ", ".join(f"{display_key(k)}={show_value(k, s.items.get(k, '–'))}" for k in keys)
        by_proxy[label or "all settings"].append(s)
    return Overopt(
        keys,
        [path_fit(label, ss) for label, ss in by_proxy.items()],
        [path_fit(s.label, [s]) for s in f.settings],
    )


def is_overopt(f: Family) -> bool:
    return f.name.startswith("overoptimization") or any(k in OVEROPT_KEYS for k in f.keys)
