"""HumanJudge and HumanOrSimulated: posting, waiting, restarting, timing out, falling back."""

from __future__ import annotations

import random

import pytest
from sqlmodel import Session, select

from oversight import study
from oversight.judges import (
    Argued,
    Comparison,
    Failure,
    Probe,
    SimulatedRater,
    SubAnswer,
    Transcript,
    Turn,
)
from oversight.judges.human import HumanJudge, HumanOrSimulated
from oversight.study import Item
from oversight.tasks.base import truth_access
from tests.helpers import composed, correct_response, judge_id, wrong_first_step


def comparisons(task, n: int, seed: int = 0) -> list[Comparison]:
    """Pairs whose `a` is right and `b` wrong, so the verdict's orientation can be checked."""
    problems = task.sample(n, seed=seed, split="human-test")
    return [Comparison(p, correct_response(task, p), wrong_first_step(task, p)) for p in problems]


def pick_right(task, by_prompt):
    """A judge who picks the right answer (knows it from the test's own table)."""

    def choose(view):
        right = by_prompt.get(view.payload["prompt"])
        if right is None:  # a gold item: its right answer has a correct first step too
            return "A"
        return "A" if view.payload["a"] == right else "B"

    return choose


def make_judge(url: str, cls=HumanJudge, **kw) -> HumanJudge:
    defaults = dict(name="human", url=url, study="t", poll_s=0.05, timeout_s=20, n_gold=0)
    return cls(**(defaults | kw))


def test_attention_checks_have_a_known_right_answer(task):
    assert task.attention_checks(0, seed=0) == []
    pairs = task.attention_checks(5, seed=0)
    assert len(pairs) == 5
    for p, right, wrong in pairs:
        assert p.difficulty <= 2 and right != wrong
        with truth_access():
            answer = task.truth.get(p.id).answer
        assert task.final_answer(right) == answer and task.final_answer(wrong) != answer


def test_human_verdicts_reach_the_protocol_in_its_orientation(task, tmp_path, judge_bots):
    url = f"sqlite:///{tmp_path}/study.db"
    items = comparisons(task, 6)
    judge = make_judge(url, gold_rate=0.5, n_gold=3)
    judge.attach(task)
    bot = judge_bots(url, ["alice"], pick_right(task, {c.problem.prompt: c.a for c in items}))
    out = judge.compare(items, random.Random(0))
    assert all(o.prefers_a and o.prob_a == 1.0 for o in out)
    assert {o.judge for o in out} == {"human:alice"}
    assert all(o.seconds >= 0 for o in out) and judge.cost.labels == 6
    with Session(judge.engine) as s:
        stored = s.exec(select(Item)).all()
    assert sum(i.is_gold for i in stored) == 3 and sum(not i.is_gold for i in stored) == 6
    bot.stop()

    # A restarted run (a new judge object, same study) re-posts nothing and waits for nothing.
    again = make_judge(url, gold_rate=0.5, n_gold=3, timeout_s=0)
    again.attach(task)
    assert [o.prefers_a for o in again.compare(items, random.Random(1))] == [True] * 6
    with Session(again.engine) as s:
        assert len(s.exec(select(Item)).all()) == 9


def test_every_kind_is_posted_and_its_verdicts_come_back(task, tmp_path, judge_bots):
    url = f"sqlite:///{tmp_path}/study.db"
    p = task.sample(5, seed=0, split="human-kinds")
    good = [correct_response(task, q) for q in p]
    bad = [wrong_first_step(task, q) for q in p]
    items = [
        Comparison(p[0], good[0], bad[0], critique_b="Step 1 is wrong."),
        Transcript(
            p[1],
            bad[1],
            good[1],
            (
                Turn(1, "Your step 1 is wrong.", 0, bad[1][:5]),
                Probe(0, 0, bad[1][:5], False, f"Tested: {bad[1][:5]} is wrong."),
            ),
        ),
        Argued(p[2], good[2], ("Step 1 is right.",)),
        Argued(p[3], bad[3]),
        SubAnswer(p[4], good[4]),
    ]
    right = set(good)

    def knows(view):
        shown = view.payload
        if view.kind in ("argued", "subquestion"):
            return "accept" if shown["answer"] in right else "reject"
        for t in shown.get("turns", []):  # a quote stays with the answer it was found in
            if t["speaker"] == "judge":  # and a probe's with the answer it tested
                assert t["quote"] in shown[t["side"]] and t["right"] is False
                continue
            assert t["verified"] and t["quote"] in shown["b" if t["speaker"] == "a" else "a"]
        return "A" if shown["a"] in right else "B"

    judge = make_judge(url)
    judge.attach(task)
    judge_bots(url, ["alice"], knows)
    out = judge.decide(items, random.Random(0))
    assert [o.prefers_a for o in out] == [True, False, True, False, True]
    assert [o.prob_a for o in out] == [1.0, 0.0, 1.0, 0.0, 1.0]
    with Session(judge.engine) as s:
        stored = {i.id: i for i in s.exec(select(Item))}
        shown = [(stored[a.item_id], a.swapped) for a in s.exec(select(study.Assignment))]
    kinds = sorted(i.kind for i in stored.values())
    assert kinds == ["argued", "argued", "critique_pairwise", "debate", "subquestion"]
    pair = next(i.payload for i in stored.values() if i.kind == "critique_pairwise")
    # the critique stays with the answer it is about, whichever way round the item is stored
    about, other = ("a", "b") if pair["a"] == bad[0] else ("b", "a")
    assert (pair[f"{about}_critique"], pair[f"{other}_critique"]) == ("Step 1 is wrong.", None)
    argued = sorted(i.payload["argument"] for i in stored.values() if i.kind == "argued")
    assert argued == [[], ["Step 1 is right."]]
    assert not any(swapped for item, swapped in shown if item.kind in ("argued", "subquestion"))
    # A restart finds every item again, whichever way round it asks for the two-sided ones.
    again = make_judge(url, timeout_s=0)
    again.attach(task)
    assert [o.prefers_a for o in again.decide(items, random.Random(1))] == [
        o.prefers_a for o in out
    ]
    with Session(again.engine) as s:
        assert len(s.exec(select(Item)).all()) == 5


def test_overlap_aggregates_the_judges(task, tmp_path, judge_bots):
    url = f"sqlite:///{tmp_path}/study.db"
    items = comparisons(task, 4)
    judge = make_judge(url, overlap=2)
    judge.attach(task)
    right = {c.problem.prompt: c.a for c in items}
    judge_bots(url, ["careful"], pick_right(task, right))
    contrary = pick_right(task, right)
    judge_bots(url, ["contrary"], lambda v: "B" if contrary(v) == "A" else "A")
    out = judge.compare(items, random.Random(0))
    for o in out:
        assert o.prob_a == 0.5
        assert sorted(o.judge.removeprefix("human:").split(",")) == ["careful", "contrary"]


def test_timeout_without_verdicts_is_a_typed_failure_and_closes_items(task, tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    judge = make_judge(url, timeout_s=0.2)
    judge.attach(task)
    out = judge.compare(comparisons(task, 3), random.Random(0))
    assert all(isinstance(o, Failure) and o.reason.startswith("timeout") for o in out)
    with Session(judge.engine) as s:
        assert all(i.closed and i.resolution == "timeout" for i in s.exec(select(Item)))
    assert study.next_assignment(judge.engine, judge_id(judge.engine, "bob")) is None


def test_human_or_simulated_falls_back_and_says_who_answered(task, tmp_path, judge_bots):
    url = f"sqlite:///{tmp_path}/study.db"
    items = comparisons(task, 6)
    fallback = SimulatedRater(name="rater", competence=None)
    judge = make_judge(url, cls=HumanOrSimulated, timeout_s=1.5, fallback=fallback)
    judge.attach(task)
    bot = judge_bots(url, ["alice"], pick_right(task, {c.problem.prompt: c.a for c in items}), 2)
    out = judge.compare(items, random.Random(0))
    names = [o.judge for o in out]
    assert names.count("human:alice") == 2 and names.count("simulated:rater") == 4
    assert all(o.prefers_a for o in out)  # a rater with unlimited competence is right too
    answered = {item_id for _, item_id, _, _ in bot.log}
    with Session(judge.engine) as s:
        for i in s.exec(select(Item)):
            if i.id in answered:
                assert not i.closed
            else:
                assert i.closed and i.resolution == "fallback:rater"


def test_bad_settings_are_rejected(tmp_path):
    with pytest.raises(ValueError):
        HumanJudge(name="h", url=f"sqlite:///{tmp_path}/x.db", overlap=0)
    with pytest.raises(ValueError):
        HumanOrSimulated(name="h", url=f"sqlite:///{tmp_path}/x.db")


@pytest.mark.parametrize("name", ["human", "human_or_simulated"])
def test_judge_configs_build(name, tmp_path):
    from hydra.utils import instantiate

    url = f"sqlite:///{tmp_path}/study.db"
    cfg = composed(f"judge={name}", f"store.url={url}", "seed=3")
    judge = instantiate(cfg.judge, _convert_="all")
    assert isinstance(judge, HumanJudge) and judge.url == url and judge.study == "study-seed3"
    if name == "human_or_simulated":
        assert isinstance(judge, HumanOrSimulated)
        assert isinstance(judge.fallback, SimulatedRater) and judge.fallback.competence == 2
