"""Training with people in the loop: `python -m oversight.train judge=human`, tiny budget.

A thread plays the judges (through the same calls as the UI) while the real entry point posts
its comparison items and waits. The run is interrupted with Ctrl-C while it waits, verdicts
keep arriving while it is down, and the restarted run finds its items (posting none twice),
picks up every verdict that arrived, and trains on them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlmodel import Session, select

from oversight import study
from oversight.store import Run, Store
from oversight.study import HumanVerdict, Item, Study, admin
from tests.helpers import ROOT, TINY

# The suite's tiny base model (shared through the session's cache), with 8 comparisons to judge.
OVERRIDES = [o for o in TINY if not o.startswith("protocol.n_comparisons=")] + [
    "protocol.n_comparisons=8"
]
N_ITEMS = 8


def train(url: str, cache_dir, run_dir, log_path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "oversight.train",
        "judge=human",
        f"store.url={url}",
        "judge.study=loop",
        "judge.gold_rate=0.25",
        "judge.n_gold=2",
        "judge.poll_s=0.2",
        "judge.timeout_s=600",
        *OVERRIDES,
        f"policy.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
    ]
    env = os.environ | {"TQDM_DISABLE": "1"}
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        # a test run from a background job inherits SIGINT ignored; the Ctrl-C below needs it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def regular_items(engine) -> list[Item]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(Item).join(Study).where(Study.name == "loop", Item.is_gold == False)  # noqa: E712
            )
        )


def regular_verdicts(engine) -> list[HumanVerdict]:
    with Session(engine) as s:
        return list(s.exec(select(HumanVerdict).where(HumanVerdict.is_gold == False)))  # noqa: E712


def wait_until(cond, proc: subprocess.Popen, log_path, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < end, log_path.read_text()[-3000:]
        time.sleep(0.2)


@pytest.mark.slow
def test_training_consumes_human_verdicts_across_an_interruption(tmp_path, cache_dir, judge_bots):
    url = f"sqlite:///{tmp_path}/study.db"
    engine = study.connect(url)
    log1, log2 = tmp_path / "run1.log", tmp_path / "run2.log"

    # 1. The run posts its comparisons and waits for people.
    first = train(url, cache_dir, tmp_path / "run1", log1)
    wait_until(lambda: len(regular_items(engine)) == N_ITEMS, first, log1)
    posted = {i.id: i.key for i in regular_items(engine)}
    early = judge_bots(url, ["alice", "bob"], limit=4)
    early.wait_for(4)
    early.stop()
    time.sleep(0.5)  # the run sees them (and would still be waiting for the rest)
    assert first.poll() is None

    # 2. Ctrl-C while it waits.
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=60) != 0
    assert not (tmp_path / "run1" / "summary.json").exists()

    # 3. Verdicts keep arriving while no run is up.
    before = len(regular_verdicts(engine))
    assert 1 <= before < N_ITEMS
    downtime = judge_bots(url, ["carol"], limit=1)
    downtime.wait_for(1)
    downtime.stop()
    while_down = len(regular_verdicts(engine))

    # 4. The restart finds its items, takes what arrived, and waits only for the rest.
    second = train(url, cache_dir, tmp_path / "run2", log2)
    wait_until(lambda: "already in" in log2.read_text(), second, log2)
    assert f"{while_down} already in" in log2.read_text()
    late = judge_bots(url, ["dave"])
    assert second.wait(timeout=300) == 0, log2.read_text()[-3000:]
    late.stop()

    assert {i.id: i.key for i in regular_items(engine)} == posted  # nothing posted twice
    with Session(engine) as s:
        assert len(s.exec(select(Item)).all()) == N_ITEMS + 2  # plus the two gold items, once
    verdicts = regular_verdicts(engine)
    assert Counter(v.item_id for v in verdicts) == Counter(dict.fromkeys(posted, 1))

    summary = json.loads((tmp_path / "run2" / "summary.json").read_text())
    assert summary["judge"] == "human" and summary["judge_cost"]["labels"] == N_ITEMS
    store = Store(url)
    judgments = store.judgments(summary["run_id"])
    assert len(judgments) == N_ITEMS
    who = Counter(j.judge for j in judgments)
    assert set(who) <= {f"human:{n}" for n in ("alice", "bob", "carol", "dave")}
    assert who["human:carol"] == 1 and who["human:dave"] == N_ITEMS - while_down
    assert who["human:alice"] + who["human:bob"] == before

    # Each stored preference is the one the person gave, through both display shuffles.
    chosen = {}
    for bot in (early, downtime, late):
        for _, item_id, _, text in bot.log:
            chosen[item_id] = text
    with Session(engine) as s:
        items = {
            (i.payload["prompt"], frozenset((i.payload["a"], i.payload["b"]))): i.id
            for i in s.exec(select(Item))
        }
    for j in judgments:
        if j.response_a == j.response_b:
            continue
        item_id = items[(j.prompt, frozenset((j.response_a, j.response_b)))]
        assert j.prefers_a == (j.response_a == chosen[item_id])
    with Session(store.engine) as s:
        statuses = sorted(r.status for r in s.exec(select(Run)))
    assert statuses == ["failed", "finished"]
    # the admin's progress page ties the study to both runs
    (progress,) = admin.study_progress(engine)
    assert progress["runs"] == "#1 failed, #2 finished"
    assert progress["verdicts"] == progress["verdicts_needed"] == N_ITEMS
    engine.dispose()
    store.engine.dispose()
