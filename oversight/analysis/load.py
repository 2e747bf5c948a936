"""Reading runs: a folder of run folders (summary.json, metrics.jsonl, .hydra/) or a store,
into one `RunData` per run, with its status (finished, failed, unfinished)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, Node, OmegaConf

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
    "judge_accuracy_within": ("judge_accuracy", "within"),
    "judge_accuracy_beyond": ("judge_accuracy", "beyond"),
    "kl": ("kl",),
    "checks_per_label": ("judge_cost", "checks_per_label"),
    # amplification: the targets' gold accuracy (by the harness), what the overseer spent per
    # target, and how far the curriculum rose
    "amplified_accuracy_beyond": ("scored", "amplified", "gold_accuracy", "beyond"),
    "overseer_calls_per_target": ("amplification", "overseer_calls_per_target"),
    "difficulty_reached": ("amplification", "difficulty_reached"),
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
# run wrote, how fast it ran or how often it was watched (held-out evaluation draws from its
# own generator), not what it computed
IGNORED = ("seed", "store", "threads", "device", "policy.cache_dir", "eval.every")
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
        return lookup(self.summary, *METRICS[metric])


def lookup(node: Any, *path: str) -> float | None:
    """A number inside nested dicts, or None where anything on the way is missing."""
    for k in path:
        node = node.get(k) if isinstance(node, dict) else None
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def held_out(run: RunData, key: str) -> list[tuple[int, float]]:
    """(step, value) of a held-out metric over training: base, every `eval.every`, final."""
    assert run.summary is not None
    total = int(run.config.get("ppo", {}).get("steps", max(run.steps, default=0)))
    path = {"gold": ("gold_accuracy", "all"), "proxy": ("proxy_reward",)}[key]
    step_key = {"gold": "eval/gold_accuracy/all", "proxy": "eval/proxy_reward"}[key]
    pts = [(0, lookup(run.summary, "base", *path))]
    pts += [(s, lookup(row, step_key)) for s, row in sorted(run.steps.items()) if 0 < s < total]
    pts.append((total, lookup(run.summary, "final", *path)))
    return [(s, v) for s, v in pts if v is not None]


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
            child = node._get_node(k)
            v = str(child._value()) if isinstance(child, Node) else None
        if isinstance(out, dict):
            out[k] = v
        else:
            out.append(v)
    return out


def natural_order(x: Any) -> tuple:
    """Sort numbers as numbers, then everything else as text."""
    if isinstance(x, Path):
        return tuple(natural_order(p) for p in re.split(r"(\d+)", str(x)))
    if isinstance(x, bool) or x is None:
        return (1, str(x))
    if isinstance(x, int | float):
        return (0, float(x))
    if isinstance(x, str) and x.isdigit():
        return (0, float(x))
    return (1, str(x))


def _family(run_dir: Path | None) -> str:
    """The Hydra preset a run came from (`experiment=X`, `experiment/size=Y`), if recorded."""
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
        key=natural_order,
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
