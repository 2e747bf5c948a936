"""The whole analysis of a source (`analyze`) and its markdown report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from oversight.analysis.gap import frame_runs, gap_recovered
from oversight.analysis.group import Family, choose_baselines, display_key, group
from oversight.analysis.load import RunData, load_dir, load_store
from oversight.analysis.overopt import Overopt, PathFit, is_overopt, kind, labeller, overopt_fits
from oversight.analysis.plots import (
    plot_competence,
    plot_curves,
    plot_judge_cost,
    plot_outcomes,
    plot_overopt,
)
from oversight.analysis.stats import CI, TEST_NAMES, Test
from oversight.analysis.tables import Comparison, comparisons, fmt_number, write_csvs


def analyze(
    source: str,
    out: Path,
    baseline: Sequence[str] = (),
    test: Test = "welch",
    n_resamples: int = 10_000,
) -> dict[str, Any]:
    """Read every run of `source` (a folder or a store URL) and write the report into `out`.
    Returns what it wrote (families, file names), for tests and callers."""
    if "://" in source:
        runs = load_store(source)
    else:
        root = Path(source)
        if not root.is_dir():
            raise FileNotFoundError(f"no such folder: {source}")
        runs = load_dir(root, exclude=out)
    out.mkdir(parents=True, exist_ok=True)
    families = group(runs)
    choose_baselines(families, baseline)
    comps = [c for f in families for c in comparisons(f, test)]
    gaps = gap_recovered(families, n_resamples)
    write_csvs(out, families, comps, gaps, n_resamples)

    plots: dict[str, list[str]] = {}
    fits: dict[str, Overopt] = {}
    for f in families:
        names = plots.setdefault(f.name, [])
        if not any(s.finished for s in f.settings):
            continue
        plot_curves(f, out / f"{f.slug}_curves.png")
        names.append(f"{f.slug}_curves.png")
        plot_outcomes(f, out / f"{f.slug}_outcomes.png", frame_runs(families, f))
        names.append(f"{f.slug}_outcomes.png")
        if "competence" in f.keys:
            plot_competence(f, out / f"{f.slug}_competence.png", n_resamples)
            names.append(f"{f.slug}_competence.png")
        plot_judge_cost(f, out / f"{f.slug}_judge_cost.png", n_resamples)
        names.append(f"{f.slug}_judge_cost.png")
        if is_overopt(f):
            fits[f.name] = overopt_fits(f)
            plot_overopt(f, fits[f.name], out / f"{f.slug}_overoptimization.png")
            names.append(f"{f.slug}_overoptimization.png")

    report = _report(source, runs, families, comps, gaps, plots, fits, test, n_resamples)
    (out / "report.md").write_text(report)
    return {
        "runs": runs,
        "families": families,
        "comparisons": comps,
        "gaps": gaps,
        "plots": plots,
        "fits": fits,
    }


def _report(
    source: str,
    runs: Sequence[RunData],
    families: Sequence[Family],
    comps: Sequence[Comparison],
    gaps: dict[int, CI],
    plots: dict[str, list[str]],
    fits: dict[str, Overopt],
    test: Test,
    n_resamples: int,
) -> str:
    n = {k: sum(r.status == k for r in runs) for k in ("finished", "failed", "unfinished")}
    lines = [
        "# Sweep analysis",
        "",
        f"Source: `{source}` — {len(runs)} runs: {n['finished']} finished, {n['failed']} failed, "
        f"{n['unfinished']} unfinished.",
        "",
        "How to read it: each value is the mean over seeds of a run's final held-out metric, with "
        f"a 95% percentile-bootstrap CI over seeds ({n_resamples} resamples; none with one seed). "
        "*within* = problems with at most `competence` steps (a judge can check every step), "
        "*beyond* = longer ones. Sycophancy = share of answers equal to the user's belief where "
        f"that belief is wrong. Comparisons against the baseline use {TEST_NAMES[test]}, "
        "Holm-corrected over every test of a family; p is n/a where a side has fewer than two "
        "seeds or (Welch) no variance at all. Statistics use finished runs only.",
        "",
    ]
    if not runs:
        lines.append("No runs found.")
    for f in families:
        lines += [f"## {f.name}", ""]
        lines.append(
            f"Swept: {', '.join(f'`{display_key(k)}`' for k in f.keys) or '(one setting)'}. "
            f"Baseline: **{f.baseline.label if f.baseline else '–'}**."
        )
        lines += ["", "### Final metrics (mean [95% CI])", ""]
        cols = [
            ("gold_accuracy_within", "gold within"),
            ("gold_accuracy_beyond", "gold beyond"),
            ("sycophancy_rate_within", "syco. within"),
            ("sycophancy_rate_beyond", "syco. beyond"),
            ("proxy_reward", "proxy reward"),
        ]
        cols2 = [
            ("label_accuracy_within", "label acc. within"),
            ("label_accuracy_beyond", "label acc. beyond"),
            ("judge_accuracy_beyond", "judge acc. beyond"),
            ("kl", "KL (nats)"),
            ("checks_per_label", "checks / label"),
        ]
        for cs in (cols, cols2):
            lines.append("| setting | seeds | " + " | ".join(c[1] for c in cs) + " |")
            lines.append("|---|---|" + "---|" * len(cs))
            for s in f.settings:
                bad = len(s.runs) - len(s.finished)
                seeds = f"{len(s.finished)}" + (f" (+{bad} not finished)" if bad else "")
                vals = [s.ci(m, n_resamples).fmt() for m, _ in cs]
                mark = " (baseline)" if s is f.baseline else ""
                lines.append(f"| {s.label}{mark} | {seeds} | " + " | ".join(vals) + " |")
            lines.append("")
        if any(gaps[id(s)].mean is not None for s in f.settings):
            lines += [
                "### Performance gap recovered, gold beyond (mean [95% CI])",
                "",
                "(setting − floor) / (ceiling − floor), the floor and the ceiling being plain RLHF "
                "with the default pool and with the oracle on the same task, policy and "
                "competence; – where they were not run or their gap is within its noise.",
                "",
                "| setting | PGR |",
                "|---|---|",
                *(f"| {s.label} | {gaps[id(s)].fmt()} |" for s in f.settings),
                "",
            ]
        fc = [c for c in comps if c.family == f.name]
        if fc:
            lines += [
                f"### Against the baseline ({f.baseline.label if f.baseline else '–'})",
                "",
                "| setting | metric | Δ mean | p | p (Holm) | |",
                "|---|---|---|---|---|---|",
            ]
            for c in fc:
                sig = "**significant**" if c.p_holm < 0.05 else ""
                p = fmt_number(c.p, 3) or "n/a"
                ph = fmt_number(c.p_holm, 3) or "n/a"
                diff = f"{c.diff:+.3f}" if c.diff is not None else "–"
                lines.append(f"| {c.setting} | {c.metric} | {diff} | {p} | {ph} | {sig} |")
            lines.append("")
        if f.name in fits:
            lines += _overopt_section(f, fits[f.name])
        if plots.get(f.name):
            lines += ["### Plots", ""] + [f"![{p}]({p})" for p in plots[f.name]] + [""]
    bad = [
        (f, s, r) for f in families for s in f.settings for r in s.runs if r.status != "finished"
    ]
    lines += ["## Failed or unfinished runs", ""]
    if not bad:
        lines.append("None: every run finished.")
    else:
        lines += [
            "| family | setting | seed | status | run | detail |",
            "|---|---|---|---|---|---|",
        ]
        for f, s, r in bad:
            lines.append(
                f"| {f.name} | {s.label} | {r.seed} | {r.status} | `{r.source}` | {r.detail} |"
            )
    return "\n".join(lines) + "\n"


def _overopt_section(f: Family, o: Overopt) -> list[str]:
    kinds = {kind(p.runs) for p in o.proxies}
    what = kinds.pop() if len(kinds) == 1 else "it differs between proxies (the *labels* column)"
    judges = ", ".join(f"`{j}`" for j in sorted({labeller(r) for p in o.proxies for r in p.runs}))
    shared = ", ".join(f"`{display_key(k)}`" for k in o.proxy_keys)
    pooled = ", ".join(f"`{k}`" for k in f.keys if k not in o.proxy_keys)
    return [
        "### Over-optimisation fit",
        "",
        f"**Which experiment:** {what}. (From the runs' configs: the judge that labelled the "
        f"proxy's training pairs is {judges}.)",
        "",
        "gold(d) − gold(0) = d (α − β log d), d = √KL (nats) to the base model, fitted by least "
        "squares (`scipy.optimize.curve_fit`) to every held-out evaluation of every seed. "
        "A proxy is the settings that share a reward model"
        + (f" (the same {shared})" if shared else "")
        + (f", pooled over how far RL went ({pooled})" if pooled else "")
        + ". d* = exp(α/β − 1) is where the fitted gold peaks (none when β ≤ 0: it never turns), "
        "and the fitted gold gain there is β d*; *d reached* is the largest d measured, so a d* "
        "beyond it is an extrapolation; *no fit*: fewer than three evaluations at d > 0, all at "
        "one d, or a fit that failed. ρ: Spearman's rank correlation of the proxy's gain with "
        "gold's over the same points (1: the proxy ranks the policies along the path as gold "
        "does).",
        "",
        *_fit_table("proxy", o.proxies),
        "Per setting:",
        "",
        *_fit_table("setting", o.settings),
    ]


def _fit_table(name: str, fits: Sequence[PathFit]) -> list[str]:
    lines = [
        f"| {name} | labels | points | d reached | α ± s.e. | β ± s.e. | d* | gold gain at d* "
        "| ρ (proxy, gold) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in fits:
        who = ", ".join(sorted({labeller(r) for r in p.runs}))
        cells = [p.label, who, str(len(p.points)), f"{p.d_max:.3g}"]
        fit = p.fit
        if fit is None:
            cells += ["no fit", "", "", ""]
        else:
            cells += [
                f"{fit.alpha:.4f} ± {fit.alpha_se:.4f}",
                f"{fit.beta:.4f} ± {fit.beta_se:.4f}",
            ]
            if fit.d_peak is None or fit.gain_at_peak is None:
                cells += ["no peak (β ≤ 0)", "–"]
            else:
                beyond = " (beyond the data)" if fit.d_peak > p.d_max else ""
                cells += [f"{fit.d_peak:.3g}{beyond}", f"{fit.gain_at_peak:+.3f}"]
        cells.append(fmt_number(p.spearman, 3) or "–")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]
