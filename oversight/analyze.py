"""Comparative analysis of a sweep: a table you can trust, significance tests and plots.

    python -m oversight.analyze multirun/judge_competence/2026-01-01_12-00-00
    python -m oversight.analyze multirun/                       # many sweeps, grouped by preset
    python -m oversight.analyze sqlite:///multirun/judge_competence/2026-01-01_12-00-00/store.db
    python -m oversight.analyze postgresql+psycopg://me@dbhost/oversight --out analysis/
    python -m oversight.analyze DIR --baseline competence=2 --test mannwhitney

It reads every run (a run folder's `summary.json` and `metrics.jsonl`, or the store's tables),
groups runs into *families* (the Hydra preset, `+experiment=...`, and its size) and, within a
family, into *settings* (runs whose configs differ only in the seed). The swept keys are the
config keys that differ between a family's settings. It writes into the output folder:

- `results.csv`: one row per setting: mean and 95% percentile-bootstrap CI over seeds of the
  final held-out metrics; `comparisons.csv`: each setting against the family's baseline;
  `runs.csv`: every run with its status;
- `report.md`: the same tables, the failed and unfinished runs, and the plots;
- PNG plots per family: held-out gold accuracy and proxy reward over training; final gold
  accuracy and sycophancy against judge competence (when competence was swept); judge cost per
  label; for over-optimisation sweeps, gold gain against d = sqrt(KL) with the fitted
  d (alpha - beta log d) curve (Gao et al. 2022).

Failed runs and runs without a summary (still running, or killed) are listed, never dropped
silently; statistics use finished runs only.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure  # no pyplot: no global state, renders with Agg
from omegaconf import DictConfig, ListConfig, OmegaConf

from oversight.errors import ConfigError
from oversight.stats import (
    CI,
    TEST_NAMES,
    CurveFit,
    Test,
    bootstrap_ci,
    compare,
    fit_gold_curve,
    gold_curve,
    holm,
)

# final metric (a column of results.csv) -> its path in summary.json
METRICS: dict[str, tuple[str, ...]] = {
    "gold_accuracy_within": ("final", "gold_accuracy", "within"),
    "gold_accuracy_beyond": ("final", "gold_accuracy", "beyond"),
    "gold_accuracy_all": ("final", "gold_accuracy", "all"),
    "sycophancy_rate_within": ("final", "sycophancy_rate", "within"),
    "sycophancy_rate_beyond": ("final", "sycophancy_rate", "beyond"),
    "sycophancy_rate_all": ("final", "sycophancy_rate", "all"),
    "proxy_reward": ("final", "proxy_reward"),
    "label_accuracy_within": ("label_accuracy", "within"),
    "label_accuracy_beyond": ("label_accuracy", "beyond"),
    "kl": ("kl",),
    "checks_per_label": ("judge_cost", "checks_per_label"),
}
# the metrics tested against the baseline (Holm runs over all of them in a family)
COMPARED = (
    "gold_accuracy_within",
    "gold_accuracy_beyond",
    "sycophancy_rate_within",
    "sycophancy_rate_beyond",
    "proxy_reward",
)
# keys that never define a setting: the seed is what we average over; the rest say where a
# run wrote or how fast it ran, not what it computed
IGNORED = ("seed", "store", "threads", "device", "policy.cache_dir")
OVEROPT_KEYS = ("ppo.kl_coef", "ppo.steps", "ppo.target_kl", "ppo.adaptive_kl")
NO_PRESET = "(no preset)"


# ---- reading runs ------------------------------------------------------------------------------
@dataclass
class RunData:
    source: str
    """the run folder, or `store #id` for a store row without a readable folder"""
    status: str
    """finished, failed or unfinished (no summary: still running, or killed)"""
    config: dict[str, Any]
    summary: dict[str, Any] | None = None
    steps: dict[int, dict[str, float | None]] = field(default_factory=dict)
    family: str = NO_PRESET
    detail: str = ""

    @property
    def seed(self) -> Any:
        return self.config.get("seed", "?")

    def value(self, metric: str) -> float | None:
        return _get(self.summary, *METRICS[metric])


def _get(node: Any, *path: str) -> float | None:
    """A number inside nested dicts, or None where anything on the way is missing."""
    for k in path:
        node = node.get(k) if isinstance(node, dict) else None
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def _plain(node: Any) -> Any:
    """An OmegaConf node as plain data, resolving what resolves; an interpolation that cannot
    be resolved outside its Hydra job (`${hydra:...}`) is kept as its text."""
    if isinstance(node, DictConfig):
        items: Iterable[Any] = node.keys()
    elif isinstance(node, ListConfig):
        items = range(len(node))
    else:
        return node
    out = {} if isinstance(node, DictConfig) else []
    for k in items:
        try:
            v = _plain(node[k])
        except Exception:  # unresolvable interpolation
            v = str(node._get_node(k)._value())  # type: ignore[union-attr]
        if isinstance(out, dict):
            out[k] = v
        else:
            out.append(v)
    return out


def _family(run_dir: Path | None) -> str:
    """The Hydra preset a run came from (`+experiment=X`, `experiment/size=Y`), if recorded."""
    if run_dir is None:
        return NO_PRESET
    try:
        hydra = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())
        choices = hydra["hydra"]["runtime"]["choices"]
    except Exception:  # not a Hydra run folder, or not readable from here
        return NO_PRESET
    exp, size = choices.get("experiment"), choices.get("experiment/size")
    if not exp:
        return NO_PRESET
    return exp if size in (None, "full") else f"{exp} ({size})"


def _read_metrics(path: Path) -> dict[int, dict[str, float | None]]:
    steps: dict[int, dict[str, float | None]] = {}
    if not path.is_file():
        return steps
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # the last line of a killed job may be cut short
            continue
        steps[int(row["step"])] = row
    return steps


def _store_status(db: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """output_dir -> (status, config) for every run a SQLite store file knows."""
    from oversight.store import Store  # lazy: only needed for runs without a summary

    out = {}
    try:
        store = Store(f"sqlite:///{db}")
        for r in store.runs():
            out[str(Path(r.output_dir).resolve())] = (r.status, r.config or {})
        store.engine.dispose()
    except Exception:  # a store we cannot read only loses us a status, never the analysis
        pass
    return out


def load_dir(root: Path, exclude: Path | None = None) -> list[RunData]:
    """Every run folder under `root` (a run, a sweep, or a folder of sweeps)."""
    root = root.resolve()
    run_dirs = sorted(
        {p.parent.parent if p.parent.name == ".hydra" else p.parent for p in _candidates(root)},
        key=_natural,
    )
    if exclude is not None:
        run_dirs = [d for d in run_dirs if exclude.resolve() not in (d, *d.parents)]
    stores: dict[Path, dict[str, tuple[str, dict[str, Any]]]] = {}

    def store_info(d: Path) -> tuple[str, dict[str, Any]] | None:
        for folder in (d, *d.parents):  # the job's own store.db, or the sweep's shared one
            db = folder / "store.db"
            if db.is_file():
                if db not in stores:
                    stores[db] = _store_status(db)
                if str(d) in stores[db]:
                    return stores[db][str(d)]
            if folder == root:
                break
        return None

    runs = []
    for d in run_dirs:
        steps = _read_metrics(d / "metrics.jsonl")
        summary, detail = None, ""
        if (d / "summary.json").is_file():
            try:
                summary = json.loads((d / "summary.json").read_text())
            except json.JSONDecodeError:
                detail = "summary.json unreadable (cut short?)"
        if summary is not None:
            cfg = summary.get("config") or {}
            runs.append(RunData(str(d), "finished", cfg, summary, steps, _family(d)))
            continue
        info = store_info(d)
        config: dict[str, Any] = {}
        if info is not None and info[1]:
            config = info[1]
        elif (d / ".hydra" / "config.yaml").is_file():
            config = _plain(OmegaConf.load(d / ".hydra" / "config.yaml"))
        status = "failed" if info is not None and info[0] == "failed" else "unfinished"
        if not detail:
            detail = {
                "failed": "the store marks it failed",
                "running": "no summary; the store says running (still running, or killed)",
            }.get(info[0] if info else "", "no summary.json (still running, killed, or failed)")
        runs.append(
            RunData(
                str(d), status, config, None, steps, _family(d), _progress(detail, steps, config)
            )
        )
    return runs


def _candidates(root: Path) -> Iterable[Path]:
    for name in ("summary.json", "metrics.jsonl"):
        yield from root.rglob(name)
    yield from root.rglob(".hydra/config.yaml")


def _progress(detail: str, steps: dict[int, Any], config: dict[str, Any]) -> str:
    total = config.get("ppo", {}).get("steps") if isinstance(config.get("ppo"), dict) else None
    done = max(steps) if steps else 0
    return f"{detail}; stopped after PPO step {done} of {total if total is not None else '?'}"


def load_store(url: str) -> list[RunData]:
    """Every run in a store (SQLite file or PostgreSQL), with its per-step metrics."""
    from sqlmodel import Session, select

    from oversight.store import Metric, Run, Store

    store = Store(url)
    runs = []
    with Session(store.engine) as s:
        all_runs = list(s.exec(select(Run)))
        metrics: dict[int, dict[int, dict[str, float | None]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for m in s.exec(select(Metric)):
            metrics[m.run_id][m.step][m.name] = m.value
    store.engine.dispose()
    for r in sorted(all_runs, key=lambda r: r.id or 0):
        d = Path(r.output_dir) if r.output_dir else None
        source = str(d) if d is not None and d.is_dir() else f"store #{r.id} ({r.output_dir})"
        steps = {k: dict(v) for k, v in metrics.get(r.id or -1, {}).items()}
        family = _family(d if d is not None and d.is_dir() else None)
        if r.status == "finished" and r.summary:
            cfg = r.summary.get("config") or r.config or {}
            runs.append(RunData(source, "finished", cfg, r.summary, steps, family))
        else:
            status = "failed" if r.status == "failed" else "unfinished"
            detail = (
                "the store marks it failed"
                if status == "failed"
                else f"store status {r.status!r} (still running, or killed)"
            )
            runs.append(
                RunData(
                    source,
                    status,
                    r.config or {},
                    None,
                    steps,
                    family,
                    _progress(detail, steps, r.config or {}),
                )
            )
    return runs


# ---- settings and families ---------------------------------------------------------------------
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


def _natural(x: Any) -> tuple:
    """Sort numbers as numbers, then everything else as text."""
    if isinstance(x, Path):
        return tuple(_natural(p) for p in re.split(r"(\d+)", str(x)))
    if isinstance(x, bool) or x is None:
        return (1, str(x))
    if isinstance(x, int | float):
        return (0, float(x))
    if isinstance(x, str) and x.isdigit():
        return (0, float(x))
    return (1, str(x))


def _display(key: str) -> str:
    """judge.name -> judge, protocol._target_ -> protocol: what a reader calls the swept thing."""
    for suffix in (".name", "._target_"):
        if key.endswith(suffix) and key.count(".") == 1:
            return key[: -len(suffix)]
    return key


def _show(key: str, value: Any) -> str:
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
            s.label_values = {_display(k): _show(k, s.items.get(k, "–")) for k in keys}
            s.label = ", ".join(f"{k}={v}" for k, v in s.label_values.items()) or "all runs"
            s.runs.sort(key=lambda r: _natural(r.seed))
        settings.sort(key=lambda s: tuple(_natural(s.items.get(k)) for k in keys))
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


# ---- tables ------------------------------------------------------------------------------------
@dataclass
class Comparison:
    family: str
    setting: str
    baseline: str
    metric: str
    diff: float | None
    p: float
    p_holm: float = math.nan


def comparisons(f: Family, test: Test) -> list[Comparison]:
    """Each setting against the baseline on each compared metric; Holm over the whole family."""
    if f.baseline is None:
        return []
    out = []
    base = f.baseline.finished
    for s in f.settings:
        if s is f.baseline:
            continue
        for m in COMPARED:
            a = [r.value(m) for r in s.finished]
            b = [r.value(m) for r in base]
            ma, mb = _mean(a), _mean(b)
            diff = None if ma is None or mb is None else ma - mb
            out.append(Comparison(f.name, s.label, f.baseline.label, m, diff, compare(a, b, test)))
    for c, p in zip(out, holm([c.p for c in out]), strict=True):
        c.p_holm = p
    return out


def _mean(xs: Sequence[float | None]) -> float | None:
    v = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(v) / len(v) if v else None


def _num(x: float | None, digits: int = 4) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def write_csvs(
    out: Path, families: Sequence[Family], comps: Sequence[Comparison], n_resamples: int
) -> None:
    with (out / "results.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["family", "setting", "baseline", "n_runs", "n_finished", "n_failed", "n_unfinished"]
            + [f"{m}_{x}" for m in METRICS for x in ("mean", "ci_low", "ci_high", "n")]
        )
        for f in families:
            for s in f.settings:
                row: list[Any] = [
                    f.name,
                    s.label,
                    s is f.baseline,
                    len(s.runs),
                    len(s.finished),
                    sum(r.status == "failed" for r in s.runs),
                    sum(r.status == "unfinished" for r in s.runs),
                ]
                for m in METRICS:
                    ci = s.ci(m, n_resamples)
                    row += [_num(ci.mean, 10), _num(ci.low, 10), _num(ci.high, 10), ci.n]
                w.writerow(row)
    with (out / "comparisons.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["family", "setting", "baseline", "metric", "mean_diff", "p_value", "p_holm"])
        for c in comps:
            w.writerow(
                [c.family, c.setting, c.baseline, c.metric, _num(c.diff, 10), _num(c.p, 10)]
                + [_num(c.p_holm, 10)]
            )
    with (out / "runs.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["family", "setting", "seed", "status", "source", "detail", *METRICS])
        for f in families:
            for s in f.settings:
                for r in s.runs:
                    vals = [_num(r.value(m), 10) if r.summary else "" for m in METRICS]
                    w.writerow([f.name, s.label, r.seed, r.status, r.source, r.detail, *vals])


# ---- plots -------------------------------------------------------------------------------------
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


def _held_out(run: RunData, key: str) -> list[tuple[int, float]]:
    """(step, value) of a held-out metric over training: base, every `eval.every`, final."""
    assert run.summary is not None
    total = int(run.config.get("ppo", {}).get("steps", max(run.steps, default=0)))
    path = {"gold": ("gold_accuracy", "all"), "proxy": ("proxy_reward",)}[key]
    step_key = {"gold": "eval/gold_accuracy/all", "proxy": "eval/proxy_reward"}[key]
    pts = [(0, _get(run.summary, "base", *path))]
    pts += [(s, _get(row, step_key)) for s, row in sorted(run.steps.items()) if 0 < s < total]
    pts.append((total, _get(run.summary, "final", *path)))
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
    axes[0].set(
        xlabel="PPO step",
        ylabel="held-out gold accuracy (fraction correct)",
        title="Gold accuracy (truth, never trained on)",
    )
    axes[1].set(
        xlabel="PPO step",
        ylabel="proxy reward (RM score, s.d. of base answers)",
        title="Proxy reward (what PPO maximises)",
    )
    for ax in axes:
        ax.grid(alpha=0.3)
        _integer_x(ax)
    _fraction_axis(axes[0])
    # outside the plots: with many settings a legend inside would hide curves and bands
    axes[1].legend(
        fontsize=8,
        title=", ".join(map(_display, f.keys)) or None,
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
        lines[", ".join(f"{_display(k)}={_show(k, s.items.get(k))}" for k in others)].append(s)
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
    axes[0].set(
        xlabel="judge competence (steps a rater can check per answer)",
        ylabel="final held-out gold accuracy (fraction correct)",
        title="Gold accuracy",
    )
    axes[1].set(
        xlabel="judge competence (steps a rater can check per answer)",
        ylabel="sycophancy rate (fraction agreeing with a wrong user)",
        title="Sycophancy",
    )
    for ax in axes:
        ax.grid(alpha=0.3)
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
    base_gold = _get(run.summary, "base", "gold_accuracy", "all")
    base_proxy = _get(run.summary, "base", "proxy_reward")
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
        kl = _get(run.summary, "kl") if s == total else _get(row, "kl")
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
    axes[0].set(
        xlabel="d = √KL to the base model (√nats)",
        ylabel="gold accuracy gain over base (fraction correct)",
        title="Gold: d (α − β log d) fitted (lines)",
    )
    axes[1].set(
        xlabel="d = √KL to the base model (√nats)",
        ylabel="proxy reward gain over base (RM s.d.)",
        title="Proxy reward",
    )
    for ax in axes:
        ax.axhline(0, color="grey", lw=0.8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title=", ".join(map(_display, f.keys)) or None, loc="best")
    fig.suptitle(f"{f.name}: over-optimisation (every held-out evaluation of every seed)")
    fig.savefig(path, dpi=110)


def is_overopt(f: Family) -> bool:
    return f.name.split(" ")[0] == "overoptimization" or any(k in OVEROPT_KEYS for k in f.keys)


# ---- the report --------------------------------------------------------------------------------
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
    write_csvs(out, families, comps, n_resamples)

    plots: dict[str, list[str]] = {}
    fits: dict[str, dict[str, Any]] = {}
    for f in families:
        names = plots.setdefault(f.name, [])
        if not any(s.finished for s in f.settings):
            continue
        plot_curves(f, out / f"{f.slug}_curves.png")
        names.append(f"{f.slug}_curves.png")
        if "competence" in f.keys:
            plot_competence(f, out / f"{f.slug}_competence.png", n_resamples)
            names.append(f"{f.slug}_competence.png")
        plot_judge_cost(f, out / f"{f.slug}_judge_cost.png", n_resamples)
        names.append(f"{f.slug}_judge_cost.png")
        if is_overopt(f):
            fits[f.name] = overopt_fits(f)
            plot_overopt(f, fits[f.name], out / f"{f.slug}_overoptimization.png")
            names.append(f"{f.slug}_overoptimization.png")

    report = _report(source, runs, families, comps, plots, fits, test, n_resamples)
    (out / "report.md").write_text(report)
    return {"runs": runs, "families": families, "comparisons": comps, "plots": plots, "fits": fits}


def _report(
    source: str,
    runs: Sequence[RunData],
    families: Sequence[Family],
    comps: Sequence[Comparison],
    plots: dict[str, list[str]],
    fits: dict[str, dict[str, Any]],
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
            f"Swept: {', '.join(f'`{_display(k)}`' for k in f.keys) or '(one setting)'}. "
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
                p = _num(c.p, 3) or "n/a"
                ph = _num(c.p_holm, 3) or "n/a"
                diff = f"{c.diff:+.3f}" if c.diff is not None else "–"
                lines.append(f"| {c.setting} | {c.metric} | {diff} | {p} | {ph} | {sig} |")
            lines.append("")
        if f.name in fits:
            lines += [
                "### Over-optimisation fit",
                "",
                "gold(d) − gold(0) = d (α − β log d), d = √KL (nats), fitted by least squares "
                "(`scipy.optimize.curve_fit`) to every held-out evaluation of every seed; "
                "d* = exp(α/β − 1) is where the fitted gold peaks.",
                "",
                "| setting | points | α ± s.e. | β ± s.e. | d* |",
                "|---|---|---|---|---|",
            ]
            for label, (fit, pts) in fits[f.name].items():
                if fit is None:
                    lines.append(f"| {label} | {len(pts)} | too few points | | |")
                    continue
                peak = f"{fit.d_peak:.3g}" if fit.d_peak is not None else "none (β ≤ 0)"
                lines.append(
                    f"| {label} | {fit.n} | {fit.alpha:.4f} ± {fit.alpha_se:.4f} | "
                    f"{fit.beta:.4f} ± {fit.beta_se:.4f} | {peak} |"
                )
            lines.append("")
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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="oversight-analyze",
        description="Tables, tests and plots for a sweep: a run/sweep folder or a store URL.",
    )
    p.add_argument("source", help="a sweep folder (or a folder of sweeps), or a store URL")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: SOURCE/analysis for a folder, ./analysis for a URL)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the setting to compare against, e.g. competence=2 or judge=oracle (repeatable; "
        "default: each family's first setting)",
    )
    p.add_argument(
        "--test",
        choices=sorted(TEST_NAMES),
        default="welch",
        help="welch (default): Welch's t-test; mannwhitney: Mann-Whitney U",
    )
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    args = p.parse_args(argv)
    out = args.out or (Path("analysis") if "://" in args.source else Path(args.source) / "analysis")
    try:
        res = analyze(args.source, out, args.baseline, args.test, args.resamples)
    except (FileNotFoundError, ValueError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runs = res["runs"]
    n_ok = sum(r.status == "finished" for r in runs)
    print(f"{len(runs)} runs ({n_ok} finished) in {len(res['families'])} families -> {out}/")
    for name in ("report.md", "results.csv", "comparisons.csv", "runs.csv"):
        print(f"  {out / name}")
    for names in res["plots"].values():
        for n in names:
            print(f"  {out / n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
