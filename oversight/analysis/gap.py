"""Performance gap recovered (Burns et al. 2023) for every setting: its final gold accuracy on
problems beyond the judges' competence as a share of the gap between two plain-RLHF runs, the
ceiling (the oracle judge) and the floor (the default biased pool), found among the runs being
analysed and matched on everything but the judge and the protocol (same task, policy,
competence, budgets). The `baselines` preset runs both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oversight.analysis.group import Family, Setting
from oversight.analysis.load import RunData
from oversight.analysis.stats import CI, pgr

METRIC = "gold_accuracy_beyond"
RLHF = "protocols.rlhf.RLHF"
CEILING, FLOOR = "oracle", "pool"  # judge names of the two frame runs


def _context(items: dict[str, Any]) -> dict[str, Any]:
    """What a setting shares with its ceiling and floor: all but the judge and the protocol,
    with the AI helpers the protocol consults (the critic), which plain RLHF has none of."""
    return {k: v for k, v in items.items() if not k.startswith(("judge", "protocol", "critic"))}


def _frame(s: Setting, judge: str) -> bool:
    return s.items.get("judge.name") == judge and s.items.get("protocol._target_", RLHF) == RLHF


def frame_runs(families: Sequence[Family], family: Family) -> dict[str, list[RunData]]:
    """The ceiling's and the floor's finished runs matched to any setting of `family` (the
    frame itself excluded), keyed by their judge: what its plots show it against."""
    frame = [
        (judge, s)
        for f in families
        if f is not family
        for s in f.settings
        for judge in (CEILING, FLOOR)
        if _frame(s, judge)
    ]
    contexts = [
        _context(s.items) for s in family.settings if not (_frame(s, CEILING) or _frame(s, FLOOR))
    ]
    out: dict[str, list[RunData]] = {CEILING: [], FLOOR: []}
    for judge, s in frame:
        if _context(s.items) in contexts:
            out[judge] += s.finished
    return out


def gap_recovered(families: Sequence[Family], n_resamples: int) -> dict[int, CI]:
    """PGR with its bootstrap CI per setting, keyed by `id(setting)`; undefined (mean None)
    where no matching ceiling or floor was run or their gap is within its noise."""
    settings = [s for f in families for s in f.settings]

    def values(judge: str, context: dict[str, Any]) -> list[float | None]:
        return [
            r.value(METRIC)
            for s in settings
            if _frame(s, judge) and _context(s.items) == context
            for r in s.finished
        ]

    out = {}
    for s in settings:
        context = _context(s.items)
        own = [r.value(METRIC) for r in s.finished]
        out[id(s)] = pgr(
            own, values(FLOOR, context), values(CEILING, context), n_resamples=n_resamples
        )
    return out
