"""The human-study store: tokens, fair assignment, verdicts stored once, gold, agreement, export."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest
from sqlmodel import Session, select

from oversight import study
from oversight.analysis.stats import cohen_kappa, fleiss_kappa, percent_agreement
from oversight.study import AccessToken, Assignment, HumanVerdict, Item, admin
from tests.helpers import judge_id


@pytest.fixture
def engine(tmp_path):
    e = study.connect(f"sqlite:///{tmp_path}/study.db")
    yield e
    e.dispose()


def pairwise(n: int, prefix: str = "k") -> list[study.NewItem]:
    return [
        study.NewItem(
            key=f"{prefix}{i}",
            payload={"prompt": f"{i}+1=?\n", "a": f"{i}+1={(i + 1) % 10}.", "b": f"{i}+1=0."},
        )
        for i in range(n)
    ]


def answer_all(engine, judge_id: int, choice: str = "A") -> list[int]:
    """Answer the judge's queue to the end; the item ids they got, in order."""
    got = []
    while (v := study.next_assignment(engine, judge_id)) is not None:
        with Session(engine) as s:
            got.append(s.get(Assignment, v.assignment_id).item_id)
        study.submit(engine, judge_id, v.assignment_id, choice)
    return got


def test_tokens_are_stored_only_as_hashes_and_can_be_revoked(engine):
    token = study.issue_token(engine, "alice")
    second = study.issue_token(engine, "alice")
    assert token.startswith("ovs_") and len(token) > 30 and token != second
    with Session(engine) as s:
        stored = [t.token_hash for t in s.exec(select(AccessToken))]
    assert token not in stored and study.hash_token(token) in stored
    assert study.authenticate(engine, token) == study.authenticate(engine, second)
    assert study.authenticate(engine, token).name == "alice"
    assert study.authenticate(engine, "ovs_not-a-token") is None
    assert study.authenticate(engine, "") is None
    assert study.revoke(engine, "alice") == 2
    assert study.authenticate(engine, token) is None and study.authenticate(engine, second) is None
    assert study.revoke(engine, "nobody") == 0
    admin = study.issue_token(engine, "boss", admin=True)
    assert study.authenticate(engine, admin).is_admin


def test_posting_is_idempotent_and_reopens_closed_items(engine):
    sid = study.ensure_study(engine, "s", overlap=2)
    ids = study.post_items(engine, sid, pairwise(5))
    assert study.post_items(engine, sid, pairwise(5)) == ids
    assert study.ensure_study(engine, "s", overlap=2) == sid
    study.close_items(engine, ids[:2], "timeout")
    assert study.post_items(engine, sid, pairwise(3)) == ids[:3]
    with Session(engine) as s:
        items = s.exec(select(Item)).all()
    assert len(items) == 5 and not any(i.closed for i in items)
    # the same content in another study is another item
    other = study.ensure_study(engine, "t")
    assert set(study.post_items(engine, other, pairwise(5))).isdisjoint(ids)


def test_overlap_is_respected_and_nobody_gets_an_item_twice(engine):
    sid = study.ensure_study(engine, "s", overlap=2)
    ids = study.post_items(engine, sid, pairwise(6))
    judges = [judge_id(engine, n) for n in ("a", "b", "c")]
    got = {j: answer_all(engine, j) for j in judges}
    for j, items in got.items():
        assert len(items) == len(set(items)), f"judge {j} got an item twice"
    counts = study.done_counts(engine, ids)
    assert counts == {i: 2 for i in ids}
    # the first judge alone could not take the whole overlap of any item
    assert len(got[judges[0]]) == 6 and len(got[judges[1]]) == 6 and got[judges[2]] == []


def test_items_are_served_oldest_first_and_breadth_first(engine):
    first = study.ensure_study(engine, "first", overlap=2)
    later = study.ensure_study(engine, "later", overlap=2)
    ids_later = study.post_items(engine, later, pairwise(2, "l"))
    ids_first = study.post_items(engine, first, pairwise(2, "f"))
    a, b = judge_id(engine, "a"), judge_id(engine, "b")
    with Session(engine) as s:

        def item_of(v):
            return s.get(Assignment, v.assignment_id).item_id

        va = study.next_assignment(engine, a)
        vb = study.next_assignment(engine, b)
        # both judges start on the older study, and on different items (breadth first)
        assert {item_of(va), item_of(vb)} == set(ids_first)
    assert ids_later


def test_pending_item_is_resumed_then_skip_frees_the_slot(engine):
    sid = study.ensure_study(engine, "s", overlap=1)
    (iid,) = study.post_items(engine, sid, pairwise(1))
    a, b = judge_id(engine, "a"), judge_id(engine, "b")
    v = study.next_assignment(engine, a)
    assert study.next_assignment(engine, a) == v  # a reload shows the same item
    assert study.next_assignment(engine, b) is None  # the only slot is taken
    study.skip(engine, a, v.assignment_id)
    assert study.next_assignment(engine, a) is None  # never offered again to who skipped it
    vb = study.next_assignment(engine, b)
    assert vb is not None
    study.submit(engine, b, vb.assignment_id, "B")
    p = study.progress(engine, a)
    assert (p.answered, p.skipped, p.waiting) == (0, 1, 0)
    with pytest.raises(study.AssignmentGone):
        study.skip(engine, a, v.assignment_id)
    assert study.done_counts(engine, [iid]) == {iid: 1}


def test_verdict_is_stored_once_in_the_items_own_orientation(engine):
    sid = study.ensure_study(engine, "s", overlap=1)
    study.post_items(engine, sid, pairwise(8))
    j = judge_id(engine, "a")
    seen_swapped = set()
    while (v := study.next_assignment(engine, j)) is not None:
        with Session(engine) as s:
            a = s.get(Assignment, v.assignment_id)
            item = s.get(Item, a.item_id)
        seen_swapped.add(a.swapped)
        assert v.payload["a"] == item.payload["b" if a.swapped else "a"]
        # the judge clicks whichever display slot holds the item's own "a"
        clicked = "B" if a.swapped else "A"
        rec = study.submit(engine, j, v.assignment_id, clicked, 0.8)
        assert not rec.timed_out and rec.seconds >= 0
        with pytest.raises(study.AssignmentGone):
            study.submit(engine, j, v.assignment_id, clicked)
    assert seen_swapped == {True, False}, "display order should be randomised"
    with Session(engine) as s:
        vs = s.exec(select(HumanVerdict)).all()
    assert len(vs) == 8
    assert all(v.choice == "a" and v.prob_a == pytest.approx(0.8) for v in vs)
    other = judge_id(engine, "b")
    with pytest.raises(study.AssignmentGone):
        study.submit(engine, other, vs[0].assignment_id, "A")
    with pytest.raises(ValueError):
        study.submit(engine, j, vs[0].assignment_id, "C")


def test_time_limit_and_lease_use_the_servers_clock(engine):
    sid = study.ensure_study(engine, "s", overlap=1, time_limit_s=10, lease_s=600)
    study.post_items(engine, sid, pairwise(3))
    a, b = judge_id(engine, "a"), judge_id(engine, "b")
    v = study.next_assignment(engine, a, now=1000.0)
    assert v.time_limit_s == 10 and v.deadline == 1010.0
    rec = study.submit(engine, a, v.assignment_id, "A", now=1000.0 + 10 + study.TIME_GRACE_S + 1)
    assert rec.timed_out and rec.seconds == pytest.approx(14.0)
    with Session(engine) as s:
        stored = s.exec(select(HumanVerdict)).one()
    assert stored.choice is None and stored.prob_a is None and stored.timed_out
    v2 = study.next_assignment(engine, a, now=2000.0)
    assert study.submit(engine, a, v2.assignment_id, "B", now=2005.0).timed_out is False
    # a judge who walks away: soon after the window (not the full 600 s lease) the item goes
    # to someone else
    v3 = study.next_assignment(engine, a, now=3000.0)
    assert study.next_assignment(engine, b, now=3010.0) is None
    vb = study.next_assignment(engine, b, now=3000.0 + 10 + 61)
    assert vb is not None
    with pytest.raises(study.AssignmentGone, match="expired"):
        study.submit(engine, a, v3.assignment_id, "A", now=3072.0)


def test_gold_items_are_mixed_in_scored_and_invisible_to_judges(engine):
    sid = study.ensure_study(engine, "s", overlap=1, gold_rate=0.3)
    study.post_items(engine, sid, pairwise(40))
    gold = [
        study.NewItem(
            key=f"g{i}",
            payload={"prompt": f"{i}*1=?\n", "a": f"{i}*1={i}.", "b": f"{i}*1={(i + 1) % 10}."},
            gold_answer="a",
        )
        for i in range(6)
    ]
    study.post_items(engine, sid, gold)
    j = judge_id(engine, "a")
    n_gold = 0
    while (v := study.next_assignment(engine, j)) is not None:
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
        study.submit(engine, j, v.assignment_id, clicked)
    assert 4 <= n_gold <= 6, n_gold  # about 30% of the first ~14 items, then no gold left
    (stats,) = admin.judge_stats(engine)
    assert stats["gold_answered"] == n_gold
    assert stats["gold_accuracy"] == pytest.approx(3 / n_gold)
    progress = admin.study_progress(engine)[0]
    assert progress["items"] == 40 and progress["gold_verdicts"] == n_gold


def test_no_gold_without_real_work(engine):
    sid = study.ensure_study(engine, "s", overlap=1, gold_rate=1.0)
    study.post_items(
        engine,
        sid,
        [study.NewItem(key="g", payload={"prompt": "", "a": "", "b": ""}, gold_answer="a")],
    )
    assert study.next_assignment(engine, judge_id(engine, "a")) is None


def test_kappas_match_known_values():
    # Cohen's kappa, worked example: po = 0.6, pe = 0.5 -> 0.2
    x = list("aaaaabbbbb")
    y = list("aaabbbbbaa")
    assert cohen_kappa(x, y) == pytest.approx(0.2)
    assert cohen_kappa(list("ab"), list("ab")) == pytest.approx(1.0)
    assert cohen_kappa(list("aa"), list("aa")) is None  # chance agreement is total
    # Fleiss' kappa for 3 raters: every item unanimous but categories mixed -> 1
    assert fleiss_kappa([list("aaa"), list("bbb"), list("aaa")]) == pytest.approx(1.0)
    ratings = [list("aab"), list("abb"), list("aaa"), list("bbb")]
    # P_i = 1/3, 1/3, 1, 1 -> P = 2/3; p_a = p_b = 1/2 -> Pe = 1/2; kappa = 1/3
    assert fleiss_kappa(ratings) == pytest.approx(1 / 3)
    assert percent_agreement(ratings) == pytest.approx(2 / 3)
    assert fleiss_kappa([list("a")]) is None


def test_agreement_and_export(engine):
    sid = study.ensure_study(engine, "s", overlap=2)
    study.post_items(engine, sid, pairwise(6))
    a, b = judge_id(engine, "a"), judge_id(engine, "b")
    rng = random.Random(0)
    for j in (a, b):
        while (v := study.next_assignment(engine, j)) is not None:
            with Session(engine) as s:
                asg = s.get(Assignment, v.assignment_id)
                item = s.get(Item, asg.item_id)
            # both judges prefer the item's own "a" except b on item k5
            own = "b" if (j == b and item.key == "k5") else "a"
            study.submit(
                engine,
                j,
                v.assignment_id,
                "A" if (own == "a") != asg.swapped else "B",
                rng.choice([None, 0.6]),
            )
    (per_study, pair) = admin.agreement(engine)
    assert per_study["items_with_2plus"] == 6
    assert per_study["percent_agreement"] == pytest.approx(5 / 6)
    assert pair["common_items"] == 6 and pair["percent_agreement"] == pytest.approx(5 / 6)
    assert pair["cohen_kappa"] == pytest.approx(0.0)  # judge a never varies: no info beyond chance

    rows = study.export_rows(engine)
    assert len(rows) == 12
    lines = study.to_jsonl(rows).splitlines()
    assert [json.loads(line)["verdict_id"] for line in lines] == [r["verdict_id"] for r in rows]
    assert set(rows[0]) == set(study.EXPORT_FIELDS)
    parsed = list(csv.DictReader(io.StringIO(study.to_csv(rows))))
    assert len(parsed) == 12 and list(parsed[0]) == study.EXPORT_FIELDS
    assert [r["prompt"] for r in parsed] == [r["prompt"] for r in rows]  # newlines survive


def test_csv_export_defuses_spreadsheet_formulas(engine):
    sid = study.ensure_study(engine, "s")
    study.post_items(
        engine,
        sid,
        [
            study.NewItem(
                key="x", payload={"prompt": "=cmd|' /C calc'!A0", "a": "@SUM(1)", "b": "ok"}
            )
        ],
    )
    j = judge_id(engine, "a")
    v = study.next_assignment(engine, j)
    study.submit(engine, j, v.assignment_id, "A")
    rows = study.export_rows(engine)
    assert rows[0]["prompt"] == "=cmd|' /C calc'!A0"  # JSONL keeps it verbatim
    text = study.to_csv(rows)
    assert "'=cmd|" in text and "'@SUM(1)" in text


def test_one_answer_kinds_take_accept_or_reject_and_debates_swap_their_speakers(engine):
    sid = study.ensure_study(engine, "s", overlap=8)
    turns = [{"speaker": "a", "text": "b is wrong", "step": 0, "quote": "2", "verified": True}]
    debate = {"prompt": "p", "a": "1", "b": "2", "turns": turns}
    study.post_items(
        engine,
        sid,
        [
            study.NewItem(key="arg", kind="argued", payload={"prompt": "p", "answer": "1"}),
            study.NewItem(key="sub", kind="subquestion", payload={"prompt": "p", "answer": "1"}),
            study.NewItem(key="deb", kind="debate", payload=debate),
        ],
    )
    answers = {"arg": "reject", "sub": "accept"}
    for name in "abcdefgh":  # enough judges to see the debate both ways round
        j = judge_id(engine, name)
        while (v := study.next_assignment(engine, j)) is not None:
            with Session(engine) as s:
                a = s.get(Assignment, v.assignment_id)
                key = s.get(Item, a.item_id).key
            if key == "deb":
                (t,) = v.payload["turns"]
                assert v.payload[t["speaker"]] == "1"  # the speaker's own answer, as displayed
                with pytest.raises(ValueError):
                    study.submit(engine, j, v.assignment_id, "accept")
                study.submit(engine, j, v.assignment_id, "A")
                continue
            assert not a.swapped  # one answer: nothing to put first
            with pytest.raises(ValueError):
                study.submit(engine, j, v.assignment_id, "A")
            study.submit(engine, j, v.assignment_id, answers[key], 0.8)
    with Session(engine) as s:
        rows = s.exec(
            select(Item.key, HumanVerdict.choice, HumanVerdict.prob_a, Assignment.swapped)
            .join(Item, Item.id == HumanVerdict.item_id)
            .join(Assignment, Assignment.id == HumanVerdict.assignment_id)
        ).all()
    assert sorted((k, c, p) for k, c, p, _ in rows if k != "deb") == [
        *[("arg", "reject", pytest.approx(0.2))] * 8,
        *[("sub", "accept", 0.8)] * 8,
    ]
    debates = [(c, swapped) for k, c, _, swapped in rows if k == "deb"]
    assert {swapped for _, swapped in debates} == {True, False}
    assert all(c == ("b" if swapped else "a") for c, swapped in debates)
