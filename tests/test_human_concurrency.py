"""Many judges at once: every verdict stored exactly once, no item past its overlap.

20 judges answer their queues in parallel threads, each with its own connection pool, against
the running PostgreSQL (and, with fewer judges, against SQLite, the embedded default). Some
judges skip, and some double-submit (two clicks racing) to show the second never lands.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from sqlmodel import Session, select

from oversight import study
from oversight.study import Assignment, HumanVerdict, Item

N_ITEMS, OVERLAP, N_GOLD = 60, 3, 5


def play(url: str, token: str, seed: int, barrier: threading.Barrier, out: dict) -> None:
    engine = study.connect(url)
    rng = random.Random(seed)
    ident = study.authenticate(engine, token)
    assert ident is not None
    stored, skipped, rejected = [], 0, 0
    barrier.wait()  # everyone starts at once
    while (view := study.next_assignment(engine, ident.judge_id)) is not None:
        if rng.random() < 0.1:
            study.skip(engine, ident.judge_id, view.assignment_id)
            skipped += 1
            continue
        choice = rng.choice("AB")
        if rng.random() < 0.2:  # a double click: two submissions race
            results: list[object] = []

            def click(
                results: list[object] = results, aid: int = view.assignment_id, c: str = choice
            ) -> None:
                try:
                    results.append(study.submit(engine, ident.judge_id, aid, c))
                except Exception as e:  # anything but AssignmentGone fails below
                    results.append(e)

            clicks = [threading.Thread(target=click) for _ in range(2)]
            for t in clicks:
                t.start()
            for t in clicks:
                t.join()
            ok = [r for r in results if isinstance(r, study.Recorded)]
            gone = [r for r in results if isinstance(r, study.AssignmentGone)]
            assert len(ok) == 1 and len(gone) == 1, results
            stored.append(ok[0].verdict_id)
            rejected += 1
        else:
            stored.append(
                study.submit(engine, ident.judge_id, view.assignment_id, choice).verdict_id
            )
    engine.dispose()
    out[ident.judge_id] = (stored, skipped, rejected)


def run_judges(url: str, n_judges: int) -> None:
    setup = study.connect(url)
    sid = study.ensure_study(setup, "crowd", overlap=OVERLAP, gold_rate=0.1)
    items = [
        study.NewItem(key=f"k{i}", payload={"prompt": f"q{i}", "a": f"x{i}", "b": f"y{i}"})
        for i in range(N_ITEMS)
    ] + [
        study.NewItem(key=f"g{i}", payload={"prompt": f"g{i}", "a": "r", "b": "w"}, gold_answer="a")
        for i in range(N_GOLD)
    ]
    study.post_items(setup, sid, items)
    tokens = [study.issue_token(setup, f"judge-{i:02d}") for i in range(n_judges)]
    barrier = threading.Barrier(n_judges)
    out: dict[int, tuple[list[int], int, int]] = {}
    errors: list[BaseException] = []

    def guarded(token: str, seed: int) -> None:
        try:
            play(url, token, seed, barrier, out)
        except BaseException as e:
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=guarded, args=(tok, i)) for i, tok in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[0]
    assert len(out) == n_judges
    # A judge who found nothing free while others held an item's last slots has left; a skip
    # may have freed one since. Like the judge page, which looks again by itself, they come
    # back: one pass, answering only, fills every slot a skip freed.
    for jid, (stored, _, _) in out.items():
        while (view := study.next_assignment(setup, jid)) is not None:
            stored.append(study.submit(setup, jid, view.assignment_id, "A").verdict_id)

    with Session(setup) as s:
        verdicts = s.exec(select(HumanVerdict)).all()
        assignments = s.exec(select(Assignment)).all()
        regular = s.exec(select(Item).where(Item.is_gold == False)).all()  # noqa: E712
    setup.dispose()

    # every successful submission is in the store exactly once, and nothing else is
    claimed = sorted(v for stored, _, _ in out.values() for v in stored)
    assert claimed == sorted(v.id for v in verdicts)
    assert len({v.assignment_id for v in verdicts}) == len(verdicts)
    assert Counter(a.status for a in assignments)["done"] == len(verdicts)
    for jid, (stored, _, _) in out.items():
        assert sum(v.judge_id == jid for v in verdicts) == len(stored)
    # never the same item twice for one judge; every regular item exactly at its overlap
    assert len({(a.item_id, a.judge_id) for a in assignments}) == len(assignments)
    per_item = Counter(v.item_id for v in verdicts if not v.is_gold)
    assert {i.id: per_item[i.id] for i in regular} == {i.id: OVERLAP for i in regular}
    assert all(i.n_active == OVERLAP for i in regular)
    assert sum(skipped for _, skipped, _ in out.values()) > 0
    assert sum(rejected for _, _, rejected in out.values()) > 0
    # the work was shared, not taken by a few
    assert sum(bool(stored) for stored, _, _ in out.values()) >= n_judges // 2


@pytest.mark.postgres
def test_twenty_judges_at_once_on_postgres(pg_url):
    run_judges(pg_url, 20)


def test_judges_at_once_on_sqlite(tmp_path):
    run_judges(f"sqlite:///{tmp_path}/study.db", 8)


@pytest.mark.postgres
def test_runs_posting_the_same_items_at_once_get_one_copy(pg_url):
    """Two training processes restarted at once (or one retried) race to post the same batch."""
    engine = study.connect(pg_url)
    sid = study.ensure_study(engine, "race")
    items = [
        study.NewItem(key=f"k{i}", payload={"prompt": f"q{i}", "a": "x", "b": "y"})
        for i in range(200)
    ]
    results: list[list[int]] = []
    barrier = threading.Barrier(4)

    def post() -> None:
        e = study.connect(pg_url)
        barrier.wait()
        results.append(study.post_items(e, sid, items))
        e.dispose()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 4 and all(r == results[0] for r in results)
    with Session(engine) as s:
        assert len(s.exec(select(Item)).all()) == 200
    engine.dispose()
