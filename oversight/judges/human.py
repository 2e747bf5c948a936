"""Human judges through the store: the protocol's pairs become items in the Streamlit UI.

`HumanJudge._judge` posts each pair as an item (keyed by its content, so posting is idempotent),
then waits, with a progress bar, until every item has `overlap` verdicts or `timeout_s` passes.
A run stopped while it waits loses nothing: the items and the verdicts are in the database,
and a restart (same config and seed, hence the same pairs) finds them instead of posting again.

Attention-check (gold) items come from the task (`Task.attention_checks`), the one that may read
answers; this judge never touches the truth.

`HumanOrSimulated` is the same judge, except that after the timeout a simulated rater decides
the items no human decided; each verdict names who gave it ("human:alice" or "simulated:rater").
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from sqlalchemy.engine import Engine
from tqdm.auto import tqdm

from oversight.judges.base import Comparison, Failure, Judge, Outcome, Verdict
from oversight.judges.human_settings import HumanOrSimulatedSettings, HumanSettings
from oversight.study import (
    NewItem,
    VerdictInfo,
    close_items,
    connect,
    done_counts,
    ensure_study,
    item_key,
    post_items,
    verdicts_for,
)
from oversight.tasks import PublicProblem, Task

log = logging.getLogger("oversight")


def _meta(p: PublicProblem) -> dict[str, object]:
    return {"problem_id": p.id, "difficulty": p.difficulty, "belief": p.belief}


@dataclass
class HumanJudge(HumanSettings, Judge):
    """People judge the pairs in the UI; the run waits for their verdicts (the fields: `HumanSettings`)."""

    _engine: Engine | None = field(default=None, init=False, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = connect(self.url)
        return self._engine

    def _warn_if_store_is_per_run(self) -> None:
        """The default SQLite store lives in the run's own directory: judges and restarts miss it."""
        try:
            run_dir = Path(HydraConfig.get().runtime.output_dir).resolve()
        except Exception:  # not under Hydra (tests, notebooks)
            return
        db = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and db and run_dir in Path(db).resolve().parents:
            log.warning(
                "the human-judge store %s is inside this run's directory: point the UI at it, "
                "and note a restart will not find these items; prefer store=postgres or a "
                "fixed store.url (docs/first_study.md)",
                db,
            )

    def attach(self, task: Task) -> None:
        super().attach(task)
        self._warn_if_store_is_per_run()
        self.study_id = ensure_study(
            self.engine,
            self.study,
            overlap=self.overlap,
            gold_rate=self.gold_rate,
            time_limit_s=self.time_limit_s,
            lease_s=self.lease_s,
            instructions=self.instructions,
        )
        gold = []
        for p, right, wrong in task.attention_checks(
            self.n_gold if self.gold_rate > 0 else 0, self.seed
        ):
            flip = random.Random(f"gold-order-{p.id}").random() < 0.5
            a, b = (wrong, right) if flip else (right, wrong)
            gold.append(
                NewItem(
                    key="gold-" + item_key(p.id, p.prompt, a, b),
                    payload={"prompt": p.prompt, "a": a, "b": b},
                    meta=_meta(p),
                    gold_answer="b" if flip else "a",
                )
            )
        if gold:
            post_items(self.engine, self.study_id, gold)

    # ---- posting and waiting ----------------------------------------------------------------

    def post(self, items: list[Comparison]) -> tuple[list[int], list[bool]]:
        """Item ids for the pairs, posting only pairs not posted before (by an earlier try).

        An item stores its two answers in a canonical order, so the same pair maps to the same
        item whichever way round it is asked; the flags say which pairs were turned round. The
        UI shuffles the display order per judge in any case.
        """
        flips = [c.b < c.a for c in items]
        new = []
        for c, flip in zip(items, flips, strict=True):
            a, b = (c.b, c.a) if flip else (c.a, c.b)
            new.append(
                NewItem(
                    key=item_key("pairwise", c.problem.id, c.problem.prompt, a, b),
                    payload={"prompt": c.problem.prompt, "a": a, "b": b},
                    meta=_meta(c.problem),
                )
            )
        return post_items(self.engine, self.study_id, new), flips

    def wait(self, item_ids: list[int]) -> bool:
        """Block until every item has `overlap` verdicts (True) or the timeout passes (False)."""
        unique = list(dict.fromkeys(item_ids))
        need = len(unique) * self.overlap
        deadline = time.monotonic() + self.timeout_s

        def received() -> int:
            counts = done_counts(self.engine, unique)
            return sum(min(counts.get(i, 0), self.overlap) for i in unique)

        got = received()
        if got >= need:
            return True
        log.info(
            "waiting for %d human verdicts on %d items (study %r, %s); %d already in",
            need,
            len(unique),
            self.study,
            self.engine.url.render_as_string(hide_password=True),
            got,
        )
        with tqdm(total=need, initial=got, desc=f"human verdicts ({self.study})") as bar:
            try:
                while got < need:
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(min(self.poll_s, max(deadline - time.monotonic(), 0.0)))
                    now = received()
                    bar.update(now - got)
                    got = now
            except KeyboardInterrupt:
                log.warning(
                    "interrupted with %d of %d verdicts in; they are kept in the store, and the "
                    "same command (same config and seed) resumes without posting again",
                    got,
                    need,
                )
                raise
        return True

    def _outcome(self, infos: list[VerdictInfo]) -> Outcome:
        decided = [v for v in infos if not v.timed_out]
        if not decided:
            why = "time limit ran out" if infos else f"no human verdict within {self.timeout_s:g} s"
            return Failure(f"timeout: {why}", f"human:{self.study}")
        probs = [v.prob_a for v in decided if v.prob_a is not None]  # every decided one has it
        prob_a = sum(probs) / len(probs)
        if prob_a != 0.5:
            prefers_a = prob_a > 0.5
        else:  # an even split: the majority of hard choices, else the first judge
            votes = sum(1 if v.choice == "a" else -1 for v in decided)
            prefers_a = votes > 0 if votes else decided[0].choice == "a"
        return Verdict(
            prob_a=prob_a,
            prefers_a=prefers_a,
            judge="human:" + ",".join(v.judge for v in infos),
            checks=0,
            # judge-seconds spent, timeouts included: the cost of the labels
            seconds=sum(v.seconds for v in infos),
        )

    def _collect(self, items: list[Comparison]) -> tuple[list[int], list[Outcome]]:
        ids, flips = self.post(items)
        complete = self.wait(ids)
        got = verdicts_for(self.engine, ids)
        outcomes = []
        for i, flip in zip(ids, flips, strict=True):
            o = self._outcome(got.get(i, []))
            if flip and isinstance(o, Verdict):
                o = Verdict(1.0 - o.prob_a, not o.prefers_a, o.judge, o.checks, o.seconds)
            outcomes.append(o)
        if not complete:
            undecided = sum(not isinstance(o, Verdict) for o in outcomes)
            log.warning(
                "timed out after %g s: %d of %d items without a human verdict",
                self.timeout_s,
                undecided,
                len(ids),
            )
            # Stop handing out items this run no longer waits for; a restart reopens them.
            short = [i for i in dict.fromkeys(ids) if len(got.get(i, [])) < self.overlap]
            close_items(self.engine, short, self._resolution())
        return ids, outcomes

    def _resolution(self) -> str:
        return "timeout"

    def _judge(self, items: list[Comparison], rng: random.Random) -> list[Outcome]:
        return self._collect(items)[1]


@dataclass
class HumanOrSimulated(HumanOrSimulatedSettings, HumanJudge):
    """Humans first; after `timeout_s`, a simulated rater decides what they left undecided."""

    def attach(self, task: Task) -> None:
        super().attach(task)
        assert self.fallback is not None
        self.fallback.attach(task)

    def _resolution(self) -> str:
        assert self.fallback is not None
        return f"fallback:{self.fallback.name}"

    def _judge(self, items: list[Comparison], rng: random.Random) -> list[Outcome]:
        assert self.fallback is not None
        _, outcomes = self._collect(items)
        todo = [i for i, o in enumerate(outcomes) if not isinstance(o, Verdict)]
        if todo:
            sim = self.fallback._judge([items[i] for i in todo], rng)
            for i, o in zip(todo, sim, strict=True):
                if isinstance(o, Verdict):
                    o = Verdict(o.prob_a, o.prefers_a, f"simulated:{o.judge}", o.checks, o.seconds)
                outcomes[i] = o
        return outcomes
