"""Plots per family: training curves, metrics against judge competence, judge cost, and gold
against sqrt(KL) with the fitted Gao et al. curve."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global state, renders with Agg

from oversight.analysis.group import Family, Setting, display_key, show_value
from oversight.analysis.load import OVEROPT_KEYS, RunData, lookup
from oversight.analysis.stats import CurveFit, fit_gold_curve, gold_curve


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["viridis" if n > 10 else "tab10"]
    return [cmap(i / max(n - 1, 1)) if n > 10 else cmap(i) for i in range(n)]


def _fraction_axis(ax: Any) -> None:
    """A 0-1 axis that still shows small differences: from 0 to a little above the data."""
    top = max((max(line.get_ydata(), default=0) for line in ax.get_lines()), default=0)
    ax.set_ylim(-0.02, min(1.02, max(0.1, float(top) * 1.15 + 0.02)))


def _integer_x(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _panels(axes: Any, xlabel: str, *panels: tuple[str, str]) -> None:
    """Side-by-side panels: the same x label on each, its own (y label, title), a light grid."""
    for ax, (ylabel, title) in zip(axes, panels, strict=True):
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        ax.grid(alpha=0.3)


def _held_out(run: RunData, key: str) -> list[tuple[int, float]]:
    """(step, value) of a held-out metric over training: base, every `eval.every`, final."""
    assert run.summary is not None
    total = int(run.config.get("ppo", {}).get("steps", max(run.steps, default=0)))
    path = {"gold": ("gold_accuracy", "all"), "proxy": ("proxy_reward",)}[key]
    step_key = {"gold": "eval/gold_accuracy/all", "proxy": "eval/proxy_reward"}[key]
    pts = [(0, lookup(run.summary, "base", *path))]
    pts += [(s, lookup(row, step_key)) for s, row in sorted(run.steps.items()) if 0 < s < total]
    pts.append((total, lookup(run.summary, "final", *path)))
    return [(s, v) for s, v in pts if v is not None]


def _mean_curve(runs: Sequence[RunData], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    by_step: dict[int, list[float]] = defaultdict(list)
    for r in runs:
        for s, v in _held_out(r, key):
            by_step[s].append(v)
    steps = np.array(sorted(by_step))
    mean = np.array([np.mean(by_step[s]) for s in steps])
    sem = np.array(
        [
            np.std(by_step[s], ddof=1) / np.sqrt(len(by_step[s])) if len(by_step[s]) > 1 else 0.0
            for s in steps
        ]
    )
    return steps, mean, sem


def plot_curves(f: Family, path: Path) -> None:
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = _colors(len(f.settings))
    for s, c in zip(f.settings, colors, strict=True):
        if not s.finished:
            continue
        for ax, key in zip(axes, ("gold", "proxy"), strict=True):
            x, m, e = _mean_curve(s.finished, key)
            ax.plot(x, m, "o-", color=c, ms=3, label=f"{s.label} (n={len(s.finished)})")
            ax.fill_between(x, m - e, m + e, color=c, alpha=0.15, lw=0)
    _panels(
        axes,
        "PPO step",
        ("held-out gold accuracy (fraction correct)", "Gold accuracy (truth, never trained on)"),
        ("proxy reward (RM score, s.d. of base answers)", "Proxy reward (what PPO maximises)"),
    )
    for ax in axes:
        _integer_x(ax)
    _fraction_axis(axes[0])
    # outside the plots: with many settings a legend inside would hide curves and bands
    axes[1].legend(
        fontsize=8,
        title=", ".join(map(display_key, f.keys)) or None,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    fig.suptitle(f"{f.name}: mean over seeds, band = ±1 standard error")
    fig.savefig(path, dpi=110)


def plot_competence(f: Family, path: Path, n_resamples: int) -> None:
    """Final gold accuracy and sycophancy (within / beyond) against judge competence."""
    others = [k for k in f.keys if k != "competence"]
    lines: dict[str, list[Setting]] = defaultdict(list)
    for s in f.settings:
        lines[
            ", ".join(f"{display_key(k)}={show_value(k, s.items.get(k))}" for k in others)
        ].append(s)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = _colors(max(len(lines), 2))
    for (name, settings), c in zip(lines.items(), colors, strict=False):
        comp = [float(s.items["competence"]) for s in settings]
        for ax, metric in zip(axes, ("gold_accuracy", "sycophancy_rate"), strict=True):
            for bucket, style in (("beyond", "o-"), ("within", "s--")):
                if len(lines) == 1:  # one line per bucket: tell them apart by colour too
                    c = colors[0] if bucket == "beyond" else colors[1]
                cis = [s.ci(f"{metric}_{bucket}", n_resamples) for s in settings]
                pts = [(x, ci) for x, ci in zip(comp, cis, strict=True) if ci.mean is not None]
                if not pts:
                    continue
                xs = [x for x, _ in pts]
                ms = np.array([ci.mean for _, ci in pts])
                lo = np.array([ci.low if ci.low is not None else ci.mean for _, ci in pts])
                hi = np.array([ci.high if ci.high is not None else ci.mean for _, ci in pts])
                ax.errorbar(
                    xs,
                    ms,
                    yerr=[ms - lo, hi - ms],
                    fmt=style,
                    color=c,
                    capsize=3,
                    label=f"{bucket} competence" + (f" — {name}" if name else ""),
                )
    _panels(
        axes,
        "judge competence (steps a rater can check per answer)",
        ("final held-out gold accuracy (fraction correct)", "Gold accuracy"),
        ("sycophancy rate (fraction agreeing with a wrong user)", "Sycophancy"),
    )
    for ax in axes:
        ax.legend(fontsize=8, loc="best")
        _integer_x(ax)
        _fraction_axis(ax)
    fig.suptitle(f"{f.name}: final values, mean over seeds with 95% bootstrap CI")
    fig.savefig(path, dpi=110)


def plot_judge_cost(f: Family, path: Path, n_resamples: int) -> None:
    cis = [s.ci("checks_per_label", n_resamples) for s in f.settings]
    fig = Figure(figsize=(7.5, 1.4 + 0.45 * len(f.settings)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(f.settings))
    m = np.array([ci.mean if ci.mean is not None else np.nan for ci in cis])
    lo = np.array([ci.low if ci.low is not None else mm for ci, mm in zip(cis, m, strict=True)])
    hi = np.array([ci.high if ci.high is not None else mm for ci, mm in zip(cis, m, strict=True)])
    ax.barh(y, m, xerr=[m - lo, hi - m], color="tab:blue", alpha=0.8, capsize=3, label="mean")
    ax.set_yticks(y, [s.label for s in f.settings])
    ax.invert_yaxis()
    ax.set(
        xlabel="judge cost: verifier checks per label (steps checked per comparison)",
        title=f"{f.name}: judge cost per label (error bars: 95% bootstrap CI)",
    )
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=110)


def overopt_points(run: RunData) -> list[tuple[float, float, float]]:
    """(d = sqrt(KL), gold gain over the base model, proxy gain) along a run's training.

    The KL logged at step s is measured on that step's rollout, before its update; the policy
    evaluated after step s is the one the rollout of step s + 1 measured, so that KL is used.
    """
    base_gold = lookup(run.summary, "base", "gold_accuracy", "all")
    base_proxy = lookup(run.summary, "base", "proxy_reward")
    gold = dict(_held_out(run, "gold"))
    proxy = dict(_held_out(run, "proxy"))
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


def overopt_fits(f: Family) -> dict[str, tuple[CurveFit | None, list[tuple[float, float, float]]]]:
    """Per setting, and pooled over all settings ("all settings"): the fit and its points."""
    out = {}
    pooled: list[tuple[float, float, float]] = []
    for s in f.settings:
        pts = [p for r in s.finished for p in overopt_points(r)]
        pooled += pts
        out[s.label] = (fit_gold_curve([p[0] for p in pts], [p[1] for p in pts]), pts)
    out["all settings"] = (fit_gold_curve([p[0] for p in pooled], [p[1] for p in pooled]), pooled)
    return out


def plot_overopt(f: Family, fits: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = _colors(len(f.settings))
    dmax = max([p[0] for _, pts in fits.values() for p in pts] + [1e-3])
    grid = np.linspace(0, dmax * 1.05, 200)
    for s, c in zip(f.settings, colors, strict=True):
        fit, pts = fits[s.label]
        if not pts:
            continue
        d = [p[0] for p in pts]
        axes[0].scatter(d, [p[1] for p in pts], color=c, s=14, alpha=0.7, label=s.label)
        axes[1].scatter(d, [p[2] for p in pts], color=c, s=14, alpha=0.7, label=s.label)
        if fit is not None:
            axes[0].plot(grid, gold_curve(grid, fit.alpha, fit.beta), color=c, lw=1, alpha=0.8)
    pooled = fits["all settings"][0]
    if pooled is not None:
        axes[0].plot(
            grid,
            gold_curve(grid, pooled.alpha, pooled.beta),
            "k-",
            lw=2,
            label=f"fit, all settings: α={pooled.alpha:.3f}, β={pooled.beta:.3f}",
        )
    _panels(
        axes,
        "d = √KL to the base model (√nats)",
        ("gold accuracy gain over base (fraction correct)", "Gold: d (α − β log d) fitted (lines)"),
        ("proxy reward gain over base (RM s.d.)", "Proxy reward"),
    )
    for ax in axes:
        ax.axhline(0, color="grey", lw=0.8)
        ax.legend(fontsize=8, title=", ".join(map(display_key, f.keys)) or None, loc="best")
    fig.suptitle(f"{f.name}: over-optimisation (every held-out evaluation of every seed)")
    fig.savefig(path, dpi=110)


def is_overopt(f: Family) -> bool:
    return f.name.split(" ")[0] == "overoptimization" or any(k in OVEROPT_KEYS for k in f.keys)
