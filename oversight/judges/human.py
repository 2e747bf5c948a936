"""Human judges through the store: the protocol's items become items in the Streamlit UI.

`HumanJudge._judge` posts each item (keyed by its content, so posting is idempotent), then
waits, with a progress bar, until every item has `overlap` verdicts or `timeout_s` passes.
A run stopped while it waits loses nothing: the items and the verdicts are in the database,
and a restart (same config and seed, hence the same items) finds them instead of posting again.

Each kind of item has its kind in the study (`study_item`): a pair is "pairwise", or
"critique_pairwise" when it carries a critique; a debate "debate"; an argued answer "argued"; a
sub-problem's answer "subquestion". People choose a side of the two-sided kinds and accept or
reject the others, whose verdict's `prob_a` is then the judges' mean probability of accepting.

Attention-check (gold) items come from the task (`Task.attention_checks`), the one that may read
answers; this judge never touches the truth.

`HumanOrSimulated` is the same judge, except that after the timeout a simulated rater decides
the items no human decided; each verdict names who gave it ("human:alice" or "simulated:rater").
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from sqlalchemy.engine import Engine
from tqdm.auto import tqdm

from oversight.judges.base import (
    TWO_SIDED,
    Argued,
    Comparison,
    Failure,
    Judge,
    JudgeItem,
    Outcome,
    Probe,
    SubAnswer,
    Transcript,
    Verdict,
    swapped,
)
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


def _probe(probe: Probe) -> dict[str, Any]:
    """A judge's probe as the study shows it: said by the judge, about answer "a" or "b"."""
    return asdict(probe) | {"speaker": "judge", "side": "ab"[probe.side]}


def _content(item: JudgeItem) -> tuple[str, dict[str, Any]]:
    """The item's kind in the study and what its judges see."""
    shown: dict[str, Any] = {"prompt": item.problem.prompt}
    if isinstance(item, Comparison):
        shown |= {"a": item.a, "b": item.b}
        if item.critique_a is None and item.critique_b is None:
            return "pairwise", shown
        return "critique_pairwise", shown | {
            "a_critique": item.critique_a,
            "b_critique": item.critique_b,
        }
    if isinstance(item, Transcript):
        turns = [
            _probe(t) if isinstance(t, Probe) else asdict(t) | {"speaker": "ab"[t.speaker]}
            for t in item.turns
        ]
        return "debate", shown | {"a": item.a, "b": item.b, "turns": turns}
    if isinstance(item, Argued):
        argument = [_probe(t) if isinstance(t, Probe) else t for t in item.argument]
        return "argued", shown | {"answer": item.answer, "argument": argument}
    if isinstance(item, SubAnswer):
        return "subquestion", shown | {"answer": item.answer}
    raise TypeError(f"not a judge item: {item!r}")


def study_item(item: JudgeItem) -> tuple[NewItem, bool]:
    """The study item for `item`, and whether its sides were turned round.

    A two-sided item stores its answers in a canonical order, so the same pair or debate maps
    to the same study item whichever way round it is asked. The key covers everything the
    judges see (a plain pair's key is what it always was, so a restart finds its old items).
    """
    flip = isinstance(item, TWO_SIDED) and item.b < item.a
    kind, payload = _content(swapped(item) if flip else item)
    p = item.problem
    if kind == "pairwise":
        key = item_key(kind, p.id, p.prompt, payload["a"], payload["b"])
    else:
        key = item_key(kind, p.id, payload)
    return NewItem(key=key, payload=payload, kind=kind, meta=_meta(p)), flip


@dataclass
class HumanJudge(HumanSettings, Judge):
    """People judge the items in the UI; the run waits for their verdicts (the fields: `HumanSettings`)."""

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

    def post(self, items: list[JudgeItem]) -> tuple[list[int], list[bool]]:
        """Item ids for the items, posting only those not posted before (by an earlier try).

        The flags say which two-sided items were turned round into their canonical order
        (`study_item`); the UI shuffles the display order per judge in any case.
        """
        made = [study_item(it) for it in items]
        flips = [flip for _, flip in made]
        return post_items(self.engine, self.study_id, [new for new, _ in made]), flips

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
            yes = [v.choice in ("a", "accept") for v in decided]
            votes = sum(1 if y else -1 for y in yes)
            prefers_a = votes > 0 if votes else yes[0]
        return Verdict(
            prob_a=prob_a,
            prefers_a=prefers_a,
            judge="human:" + ",".join(v.judge for v in infos),
            checks=0,
            # judge-seconds spent, timeouts included: the cost of the labels
            seconds=sum(v.seconds for v in infos),
        )

    def _collect(self, items: list[JudgeItem]) -> tuple[list[int], list[Outcome]]:
        ids, flips = self.post(items)
        complete = self.wait(ids)
        got = verdicts_for(self.engine, ids)
        outcomes = []
        for i, flip in zip(ids, flips, strict=True):
            o = self._outcome(got.get(i, []))
            if flip and isinstance(o, Verdict):
                o = o.flipped()
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

    def _judge(self, items: list[JudgeItem], rng: random.Random) -> list[Outcome]:
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

    def _judge(self, items: list[JudgeItem], rng: random.Random) -> list[Outcome]:
        assert self.fallback is not None
        _, outcomes = self._collect(items)
        todo = [i for i, o in enumerate(outcomes) if not isinstance(o, Verdict)]
        if todo:
            sim = self.fallback._judge([items[i] for i in todo], rng)
            for i, o in zip(todo, sim, strict=True):
                if isinstance(o, Verdict):
                    o = replace(o, judge=f"simulated:{o.judge}")
                outcomes[i] = o
        return outcomes
