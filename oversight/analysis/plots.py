"""Plots per family: training curves, where the final policies land (gold vs sycophancy),
metrics against judge competence, judge cost, and gold and proxy against sqrt(KL) per proxy,
with the fitted Gao et al. curves."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global state, renders with Agg

from oversight.analysis.group import Family, Setting, display_key, show_value
from oversight.analysis.load import RunData, held_out
from oversight.analysis.overopt import Overopt
from oversight.analysis.stats import gold_curve


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


def _mean_curve(runs: Sequence[RunData], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    by_step: dict[int, list[float]] = defaultdict(list)
    for r in runs:
        for s, v in held_out(r, key):
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


def _outcome(runs: Sequence[RunData]) -> list[tuple[float, float]]:
    pts = [(r.value("gold_accuracy_beyond"), r.value("sycophancy_rate_beyond")) for r in runs]
    return [(g, y) for g, y in pts if g is not None and y is not None]


def plot_outcomes(f: Family, path: Path, frame: dict[str, list[RunData]] | None = None) -> None:
    """Where each run ends on (gold accuracy, sycophancy rate) beyond the judges' competence:
    one point per seed, one colour per setting, and in grey the frame's matched runs (plain
    RLHF with each judge of `frame`). Bottom right is what oversight is for."""
    fig = Figure(figsize=(7.5, 5.2), layout="constrained")
    ax = fig.subplots()
    for (judge, runs), marker in zip((frame or {}).items(), "xv", strict=False):
        if pts := _outcome(runs):
            label = f"plain RLHF, {judge} (n={len(pts)})"
            ax.scatter(*zip(*pts, strict=True), color="grey", marker=marker, s=40, label=label)
    for s, c in zip(f.settings, _colors(len(f.settings)), strict=True):
        if pts := _outcome(s.finished):
            ax.scatter(*zip(*pts, strict=True), color=c, s=30, label=f"{s.label} (n={len(pts)})")
    ax.set_xlabel("held-out gold accuracy beyond competence")
    ax.set_ylabel("held-out sycophancy rate beyond competence")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=", ".join(map(display_key, f.keys)) or None, loc="best")
    fig.suptitle(f"{f.name}: final policies, one point per seed")
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


def plot_overopt(f: Family, o: Overopt, path: Path) -> None:
    """One row per proxy: gold gain (with the fitted curves) and proxy gain against d."""
    fig = Figure(figsize=(11, 0.6 + 3.8 * len(o.proxies)), layout="constrained")
    axes = fig.subplots(len(o.proxies), 2, squeeze=False, sharex=True)
    dmax = max([p.d_max for p in o.proxies] + [1e-3])
    grid = np.linspace(0, dmax * 1.05, 200)
    fits = {p.label: p for p in o.settings}
    others = [k for k in f.keys if k not in o.proxy_keys]
    for (gold_ax, proxy_ax), proxy in zip(axes, o.proxies, strict=True):
        for s, c in zip(proxy.settings, _colors(len(proxy.settings)), strict=True):
            pts, fit = fits[s.label].points, fits[s.label].fit
            own = grid[grid <= fits[s.label].d_max]  # its curve only as far as its runs went
            label = ", ".join(f"{display_key(k)}={show_value(k, s.items.get(k))}" for k in others)
            for ax, i in ((gold_ax, 1), (proxy_ax, 2)):
                ax.scatter([p[0] for p in pts], [p[i] for p in pts], color=c, s=14, alpha=0.7)
            if fit is not None:
                gold_ax.plot(own, gold_curve(own, fit.alpha, fit.beta), color=c, lw=1)
            proxy_ax.plot([], [], "o", color=c, ms=4, label=label or s.label)
        if proxy.fit is not None:
            a, b = proxy.fit.alpha, proxy.fit.beta
            gold_ax.plot(grid, gold_curve(grid, a, b), "k-", lw=2, label=f"α={a:.3f}, β={b:.3f}")
            peak = proxy.fit.d_peak
            if peak is not None and peak <= grid[-1]:
                gold_ax.axvline(peak, color="k", ls=":", lw=1, label=f"d* = {peak:.2f}")
            gold_ax.legend(fontsize=8, title="fit, settings pooled", loc="best")
        _panels(
            (gold_ax, proxy_ax),
            "d = √KL to the base model (√nats)",
            ("gold accuracy gain over base", f"{proxy.label}: gold, d (α − β log d) fitted"),
            ("proxy reward gain over base (RM s.d.)", f"{proxy.label}: proxy"),
        )
        proxy_ax.legend(fontsize=8, loc="best")
        for ax in (gold_ax, proxy_ax):
            ax.axhline(0, color="grey", lw=0.8)
    fig.suptitle(
        f"{f.name}: over-optimisation, every held-out evaluation of every seed "
        "(thin lines: one setting's fit)"
    )
    fig.savefig(path, dpi=110)
