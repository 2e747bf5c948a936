"""The human-study store: tokens, fair assignment, verdicts stored once, gold, agreement, export."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest
from sqlmodel import Session, select

from oversight import human
from oversight.human import AccessToken, Assignment, HumanVerdict, Item


@pytest.fixture
def engine(tmp_path):
    e = human.connect(f"sqlite:///{tmp_path}/study.db")
    yield e
    e.dispose()


def pairwise(n: int, prefix: str = "k") -> list[human.NewItem]:
    return [
        human.NewItem(
            key=f"{prefix}{i}",
            payload={"prompt": f"{i}+1=?\n", "a": f"{i}+1={(i + 1) % 10}.", "b": f"{i}+1=0."},
        )
        for i in range(n)
    ]


def judge(engine, name: str) -> int:
    ident = human.authenticate(engine, human.issue_token(engine, name))
    assert ident is not None
    return ident.judge_id


def answer_all(engine, judge_id: int, choice: str = "A") -> list[int]:
    """Answer the judge's queue to the end; the item ids they got, in order."""
    got = []
    while (v := human.next_assignment(engine, judge_id)) is not None:
        with Session(engine) as s:
            got.append(s.get(Assignment, v.assignment_id).item_id)
        human.submit(engine, judge_id, v.assignment_id, choice)
    return got


def test_tokens_are_stored_only_as_hashes_and_can_be_revoked(engine):
    token = human.issue_token(engine, "alice")
    second = human.issue_token(engine, "alice")
    assert token.startswith("ovs_") and len(token) > 30 and token != second
    with Session(engine) as s:
        stored = [t.token_hash for t in s.exec(select(AccessToken))]
    assert token not in stored and human.hash_token(token) in stored
    assert human.authenticate(engine, token) == human.authenticate(engine, second)
    assert human.authenticate(engine, token).name == "alice"
    assert human.authenticate(engine, "ovs_not-a-token") is None
    assert human.authenticate(engine, "") is None
    assert human.revoke(engine, "alice") == 2
    assert human.authenticate(engine, token) is None and human.authenticate(engine, second) is None
    assert human.revoke(engine, "nobody") == 0
    admin = human.issue_token(engine, "boss", admin=True)
    assert human.authenticate(engine, admin).is_admin


def test_posting_is_idempotent_and_reopens_closed_items(engine):
    sid = human.ensure_study(engine, "s", overlap=2)
    ids = human.post_items(engine, sid, pairwise(5))
    assert human.post_items(engine, sid, pairwise(5)) == ids
    assert human.ensure_study(engine, "s", overlap=2) == sid
    human.close_items(engine, ids[:2], "timeout")
    assert human.post_items(engine, sid, pairwise(3)) == ids[:3]
    with Session(engine) as s:
        items = s.exec(select(Item)).all()
    assert len(items) == 5 and not any(i.closed for i in items)
    # the same content in another study is another item
    other = human.ensure_study(engine, "t")
    assert set(human.post_items(engine, other, pairwise(5))).isdisjoint(ids)


def test_overlap_is_respected_and_nobody_gets_an_item_twice(engine):
    sid = human.ensure_study(engine, "s", overlap=2)
    ids = human.post_items(engine, sid, pairwise(6))
    judges = [judge(engine, n) for n in ("a", "b", "c")]
    got = {j: answer_all(engine, j) for j in judges}
    for j, items in got.items():
        assert len(items) == len(set(items)), f"judge {j} got an item twice"
    counts = human.done_counts(engine, ids)
    assert counts == {i: 2 for i in ids}
    # the first judge alone could not take the whole overlap of any item
    assert len(got[judges[0]]) == 6 and len(got[judges[1]]) == 6 and got[judges[2]] == []


def test_items_are_served_oldest_first_and_breadth_first(engine):
    first = human.ensure_study(engine, "first", overlap=2)
    later = human.ensure_study(engine, "later", overlap=2)
    ids_later = human.post_items(engine, later, pairwise(2, "l"))
    ids_first = human.post_items(engine, first, pairwise(2, "f"))
    a, b = judge(engine, "a"), judge(engine, "b")
    with Session(engine) as s:

        def item_of(v):
            return s.get(Assignment, v.assignment_id).item_id

        va = human.next_assignment(engine, a)
        vb = human.next_assignment(engine, b)
        # both judges start on the older study, and on different items (breadth first)
        assert {item_of(va), item_of(vb)} == set(ids_first)
    assert ids_later


def test_pending_item_is_resumed_then_skip_frees_the_slot(engine):
    sid = human.ensure_study(engine, "s", overlap=1)
    (iid,) = human.post_items(engine, sid, pairwise(1))
    a, b = judge(engine, "a"), judge(engine, "b")
    v = human.next_assignment(engine, a)
    assert human.next_assignment(engine, a) == v  # a reload shows the same item
    assert human.next_assignment(engine, b) is None  # the only slot is taken
    human.skip(engine, a, v.assignment_id)
    assert human.next_assignment(engine, a) is None  # never offered again to who skipped it
    vb = human.next_assignment(engine, b)
    assert vb is not None
    human.submit(engine, b, vb.assignment_id, "B")
    p = human.progress(engine, a)
    assert (p.answered, p.skipped, p.waiting) == (0, 1, 0)
    with pytest.raises(human.AssignmentGone):
        human.skip(engine, a, v.assignment_id)
    assert human.done_counts(engine, [iid]) == {iid: 1}


def test_verdict_is_stored_once_in_the_items_own_orientation(engine):
    sid = human.ensure_study(engine, "s", overlap=1)
    human.post_items(engine, sid, pairwise(8))
    j = judge(engine, "a")
    seen_swapped = set()
    while (v := human.next_assignment(engine, j)) is not None:
        with Session(engine) as s:
            a = s.get(Assignment, v.assignment_id)
            item = s.get(Item, a.item_id)
        seen_swapped.add(a.swapped)
        assert v.payload["a"] == item.payload["b" if a.swapped else "a"]
        # the judge clicks whichever display slot holds the item's own "a"
        clicked = "B" if a.swapped else "A"
        rec = human.submit(engine, j, v.assignment_id, clicked, 0.8)
        assert not rec.timed_out and rec.seconds >= 0
        with pytest.raises(human.AssignmentGone):
            human.submit(engine, j, v.assignment_id, clicked)
    assert seen_swapped == {True, False}, "display order should be randomised"
    with Session(engine) as s:
        vs = s.exec(select(HumanVerdict)).all()
    assert len(vs) == 8
    assert all(v.choice == "a" and v.prob_a == pytest.approx(0.8) for v in vs)
    other = judge(engine, "b")
    with pytest.raises(human.AssignmentGone):
        human.submit(engine, other, vs[0].assignment_id, "A")
    with pytest.raises(ValueError):
        human.submit(engine, j, vs[0].assignment_id, "C")


def test_time_limit_and_lease_use_the_servers_clock(engine):
    sid = human.ensure_study(engine, "s", overlap=1, time_limit_s=10, lease_s=600)
    human.post_items(engine, sid, pairwise(3))
    a, b = judge(engine, "a"), judge(engine, "b")
    v = human.next_assignment(engine, a, now=1000.0)
    assert v.time_limit_s == 10 and v.deadline == 1010.0
    rec = human.submit(engine, a, v.assignment_id, "A", now=1000.0 + 10 + human.TIME_GRACE_S + 1)
    assert rec.timed_out and rec.seconds == pytest.approx(14.0)
    with Session(engine) as s:
        stored = s.exec(select(HumanVerdict)).one()
    assert stored.choice is None and stored.prob_a is None and stored.timed_out
    v2 = human.next_assignment(engine, a, now=2000.0)
    assert human.submit(engine, a, v2.assignment_id, "B", now=2005.0).timed_out is False
    # a judge who walks away: soon after the window (not the full 600 s lease) the item goes
    # to someone else
    v3 = human.next_assignment(engine, a, now=3000.0)
    assert human.next_assignment(engine, b, now=3010.0) is None
    vb = human.next_assignment(engine, b, now=3000.0 + 10 + 61)
    assert vb is not None
    with pytest.raises(human.AssignmentGone, match="expired"):
        human.submit(engine, a, v3.assignment_id, "A", now=3072.0)


def test_gold_items_are_mixed_in_scored_and_invisible_to_judges(engine):
    sid = human.ensure_study(engine, "s", overlap=1, gold_rate=0.3)
    human.post_items(engine, sid, pairwise(40))
    gold = [
        human.NewItem(
            key=f"g{i}",
            payload={"prompt": f"{i}*1=?\n", "a": f"{i}*1={i}.", "b": f"{i}*1={(i + 1) % 10}."},
            gold_answer="a",
        )
        for i in range(6)
    ]
    human.post_items(engine, sid, gold)
    j = judge(engine, "a")
    n_gold = 0
    while (v := human.next_assignment(engine, j)) is not None:
        assert set(v.payload) == {"prompt", "a", "b"}
        assert "gold" not in repr(v).lower()
        with Session(engine) as s:
            a = s.get(Assignment, v.assignment_id)
            item = s.get(Item, a.item_id)
        if item.is_gold:
            n_gold += 1
            # right on the first three gold items, wrong on the rest
            right = n_gold <= 3
            own = "a" if right else "b"
            clicked = "A" if (own == "a") != a.swapped else "B"
        else:
            clicked = "A"
        human.submit(engine, j, v.assignment_id, clicked)
    assert 4 <= n_gold <= 6, n_gold  # about 30% of the first ~14 items, then no gold left
    (stats,) = human.judge_stats(engine)
    assert stats["gold_answered"] == n_gold
    assert stats["gold_accuracy"] == pytest.approx(3 / n_gold)
    progress = human.study_progress(engine)[0]
    assert progress["items"] == 40 and progress["gold_verdicts"] == n_gold


def test_no_gold_without_real_work(engine):
    sid = human.ensure_study(engine, "s", overlap=1, gold_rate=1.0)
    human.post_items(
        engine,
        sid,
        [human.NewItem(key="g", payload={"prompt": "", "a": "", "b": ""}, gold_answer="a")],
    )
    assert human.next_assignment(engine, judge(engine, "a")) is None


def test_kappas_match_known_values():
    # Cohen's kappa, worked example: po = 0.6, pe = 0.5 -> 0.2
    x = list("aaaaabbbbb")
    y = list("aaabbbbbaa")
    assert human.cohen_kappa(x, y) == pytest.approx(0.2)
    assert human.cohen_kappa(list("ab"), list("ab")) == pytest.approx(1.0)
    assert human.cohen_kappa(list("aa"), list("aa")) is None  # chance agreement is total
    # Fleiss' kappa for 3 raters: every item unanimous but categories mixed -> 1
    assert human.fleiss_kappa([list("aaa"), list("bbb"), list("aaa")]) == pytest.approx(1.0)
    ratings = [list("aab"), list("abb"), list("aaa"), list("bbb")]
    # P_i = 1/3, 1/3, 1, 1 -> P = 2/3; p_a = p_b = 1/2 -> Pe = 1/2; kappa = 1/3
    assert human.fleiss_kappa(ratings) == pytest.approx(1 / 3)
    assert human.percent_agreement(ratings) == pytest.approx(2 / 3)
    assert human.fleiss_kappa([list("a")]) is None


def test_agreement_and_export(engine):
    sid = human.ensure_study(engine, "s", overlap=2)
    human.post_items(engine, sid, pairwise(6))
    a, b = judge(engine, "a"), judge(engine, "b")
    rng = random.Random(0)
    for j in (a, b):
        while (v := human.next_assignment(engine, j)) is not None:
            with Session(engine) as s:
                asg = s.get(Assignment, v.assignment_id)
                item = s.get(Item, asg.item_id)
            # both judges prefer the item's own "a" except b on item k5
            own = "b" if (j == b and item.key == "k5") else "a"
            human.submit(
                engine,
                j,
                v.assignment_id,
                "A" if (own == "a") != asg.swapped else "B",
                rng.choice([None, 0.6]),
            )
    (study, pair) = human.agreement(engine)
    assert study["items_with_2plus"] == 6
    assert study["percent_agreement"] == pytest.approx(5 / 6)
    assert pair["common_items"] == 6 and pair["percent_agreement"] == pytest.approx(5 / 6)
    assert pair["cohen_kappa"] == pytest.approx(0.0)  # judge a never varies: no info beyond chance

    rows = human.export_rows(engine)
    assert len(rows) == 12
    lines = human.to_jsonl(rows).splitlines()
    assert [json.loads(line)["verdict_id"] for line in lines] == [r["verdict_id"] for r in rows]
    assert set(rows[0]) == set(human.EXPORT_FIELDS)
    parsed = list(csv.DictReader(io.StringIO(human.to_csv(rows))))
    assert len(parsed) == 12 and list(parsed[0]) == human.EXPORT_FIELDS
    assert [r["prompt"] for r in parsed] == [r["prompt"] for r in rows]  # newlines survive


def test_csv_export_defuses_spreadsheet_formulas(engine):
    sid = human.ensure_study(engine, "s")
    human.post_items(
        engine,
        sid,
        [
            human.NewItem(
                key="x", payload={"prompt": "=cmd|' /C calc'!A0", "a": "@SUM(1)", "b": "ok"}
            )
        ],
    )
    j = judge(engine, "a")
    v = human.next_assignment(engine, j)
    human.submit(engine, j, v.assignment_id, "A")
    rows = human.export_rows(engine)
    assert rows[0]["prompt"] == "=cmd|' /C calc'!A0"  # JSONL keeps it verbatim
    text = human.to_csv(rows)
    assert "'=cmd|" in text and "'@SUM(1)" in text
