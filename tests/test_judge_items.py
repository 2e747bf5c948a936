"""Items of every kind: pairs with critiques, argued answers, debates, sub-answers. Hand-built
cases for a simulated rater within and beyond its competence, position swapping, free quote
checks, typed failures, and label accuracy per kind."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from oversight.experiment.harness import Harness
from oversight.judges import (
    Argued,
    Comparison,
    Failure,
    Judge,
    JudgeItem,
    JudgmentRecord,
    Oracle,
    RaterPool,
    SimulatedRater,
    SubAnswer,
    Transcript,
    Turn,
    Verdict,
    item_from_payload,
    pointed_steps,
    swapped,
    unsupported,
    verify_quotes,
)
from oversight.judges.base import TWO_SIDED
from oversight.tasks.arithmetic import render_response
from oversight.tasks.base import truth_access
from tests.helpers import correct_response, sycophantic_response, wrong_first_step


def problem(task, difficulty: int, k: int = 0):
    return [p for p in task.sample(300, seed=7) if p.difficulty == difficulty][k]


def wrong_at(task, p, i: int) -> str:
    """The right work except step i (from 0), whose result is off by one; the answer stands."""
    with truth_access():
        steps = list(task.truth.get(p.id).steps)
    answer = int(steps[-1][-1])
    steps[i] = steps[i][:-1] + str((int(steps[i][-1]) + 1) % 10)
    return render_response(steps, answer=answer)


def rater(task, **kw) -> SimulatedRater:
    r = SimulatedRater(name="r", **kw)
    r.attach(task)
    return r


def decide_one(judge: Judge, item: JudgeItem, seed: int = 0) -> Verdict:
    (o,) = judge.decide([item], random.Random(seed))
    assert isinstance(o, Verdict), o
    return o


def test_pointed_steps_reads_the_critics_format(task):
    for step in range(6):  # what the critics write (the task's format) is what the raters read
        assert pointed_steps(task.critique_text(step)) == [step]
    assert pointed_steps(task.critique_text(None, about_answer=True)) == [-1]
    assert pointed_steps(task.critique_text(None)) == []
    assert pointed_steps("Step 2 is wrong.") == [1]
    assert pointed_steps("The answer does not follow from the work.") == [-1]
    assert pointed_steps("No error found.") == [] and pointed_steps(None) == []
    assert pointed_steps("step 1 is right, and so is Step 3.") == [0, 2]
    assert pointed_steps("Step 0 is wrong.") == []  # text counts from 1


def test_pair_checks_the_steps_its_critiques_point_at_first(task):
    p = problem(task, 4)
    right, bad = correct_response(task, p), wrong_at(task, p, 2)
    r = rater(task, competence=1)
    # From the top, one check per answer passes both: nothing decides.
    assert decide_one(r, Comparison(p, bad, right)).prob_a == 0.5
    # A critique pointing at the wrong step gets it checked, and caught.
    o = decide_one(r, Comparison(p, bad, right, critique_a="Step 3 is wrong."))
    assert o.prob_a == 0.0 and o.checks == 2
    # A false accusation of the right answer costs its check, and finds nothing.
    assert decide_one(r, Comparison(p, bad, right, critique_b="Step 3 is wrong.")).prob_a == 0.5
    # "Does not follow" points at the conclusion, which the last step carries.
    syc = sycophantic_response(task, p)
    msg = "The answer does not follow from the work."
    assert decide_one(r, Comparison(p, right, syc, critique_b=msg)).prob_a == 1.0
    # Steps outside the problem are never checked: they cannot sink a right answer.
    far = Comparison(p, right, right, critique_a="Step 99 is wrong.", critique_b="No error found.")
    assert decide_one(r, far).prob_a == 0.5
    # Within competence the critiques change nothing: every step is checked anyway.
    assert decide_one(rater(task, competence=4), Comparison(p, bad, right)).prob_a == 0.0


def test_argued_answer_is_checked_then_left_to_the_biases(task):
    p = problem(task, 4)
    right, bad, syc = correct_response(task, p), wrong_at(task, p, 2), sycophantic_response(task, p)
    within = rater(task, competence=4)
    assert decide_one(within, Argued(p, right)).prob_a == 1.0  # every step checked: accept
    assert decide_one(within, Argued(p, bad)).prob_a == 0.0
    assert decide_one(within, Argued(p, syc)).prob_a == 0.0
    beyond = rater(task, competence=1)
    o = decide_one(beyond, Argued(p, right))
    assert o.prob_a == 0.5 and o.checks == 1  # nothing found, not all checked: even odds
    assert decide_one(beyond, Argued(p, bad)).prob_a == 0.5
    # Naming a step in the argument gets it checked first, whatever the argument says of it.
    pointing = Argued(p, bad, ("Step 3 is right, look.",))
    assert decide_one(beyond, pointing).prob_a == 0.0
    assert decide_one(rater(task, competence=1, accept_bias=2.0), Argued(p, right)).prob_a > 0.88
    # Agreement with the user's (wrong) belief sells a sycophantic answer the rater cannot check.
    flatterer = rater(task, competence=1, agreement_bias=20.0)
    assert decide_one(flatterer, Argued(p, syc)).prefers_a
    assert decide_one(rater(task, competence=4, agreement_bias=20.0), Argued(p, syc)).prob_a == 0.0


def test_sub_answer_is_accepted_iff_right_within_competence(task):
    r = rater(task, competence=2, agreement_bias=20.0)
    for k in range(5):
        small = problem(task, 2, k)
        assert decide_one(r, SubAnswer(small, correct_response(task, small))).prob_a == 1.0
        assert decide_one(r, SubAnswer(small, sycophantic_response(task, small))).prob_a == 0.0
        assert decide_one(r, SubAnswer(small, wrong_first_step(task, small))).prob_a == 0.0
    big = problem(task, 5)
    assert (
        decide_one(rater(task, competence=2), SubAnswer(big, correct_response(task, big))).prob_a
        == 0.5
    )
    assert decide_one(r, SubAnswer(big, sycophantic_response(task, big))).prefers_a


def test_debate_checks_contested_steps_verified_quotes_first(task):
    p = problem(task, 4)
    right, bad = correct_response(task, p), wrong_at(task, p, 2)
    wrong_step = task.steps(bad)[2]
    r = rater(task, competence=1)
    assert decide_one(r, Transcript(p, right, bad)).prob_a == 0.5  # nothing contested: a tie
    # a's side says b's step 3 is wrong, and quotes it: the check catches b.
    caught = Transcript(p, right, bad, (Turn(0, "Your step 3 is wrong.", 2, wrong_step),))
    o = decide_one(r, caught)
    assert o.prob_a == 1.0 and o.checks == 2
    # Two accusations, one budget: the turn whose quote is really there is checked first.
    misquote = Turn(0, "Your step 1 is wrong.", 0, "words that are not in it")
    honest = Turn(0, "Your step 3 is wrong.", 2, wrong_step)
    assert decide_one(r, Transcript(p, right, bad, (misquote, honest))).prob_a == 1.0
    # b's side accusing the right answer finds nothing; a tie is left to the biases, as for pairs.
    lying = Transcript(p, right, bad, (Turn(1, "Your step 2 is wrong.", 1),))
    assert decide_one(r, lying).prob_a == 0.5


def test_oracle_is_right_on_every_kind(task):
    oracle = Oracle()
    oracle.attach(task)
    items, right = [], []
    for p in task.sample(60, seed=3):
        good, bad = correct_response(task, p), sycophantic_response(task, p)
        items += [
            Comparison(p, bad, good, critique_a="No error found.", critique_b="Step 1 is wrong."),
            Argued(p, good, ("Step 1 is right.",)),
            Argued(p, bad),
            Transcript(p, good, bad, (Turn(1, "Step 1 of yours is wrong.", 0, good[:3]),)),
            SubAnswer(p, good),
            SubAnswer(p, wrong_first_step(task, p)),
        ]
        right += [False, True, False, True, True, False]
    out = oracle.decide(items, random.Random(0))
    assert [o.prefers_a for o in out] == right
    assert all(o.prob_a == float(r) for o, r in zip(out, right, strict=True))


@dataclass
class FirstShown(Judge):
    """Prefers whatever is shown first, and keeps what it was shown."""

    shown: list = field(default_factory=list)

    def _judge(self, items, rng):
        self.shown += items
        return [Verdict(1.0, True, self.name) for _ in items]


def test_swapping_moves_answers_critiques_and_speakers_together(task):
    judge = FirstShown(name="first")
    p = problem(task, 3)
    items = []
    for i in range(100):
        a, b = f"answer one {i}", f"answer two {i}"
        items.append(Comparison(p, a, b, critique_a=f"about one {i}", critique_b=f"about two {i}"))
        turns = (Turn(0, f"one says {i}", 1, "two"), Turn(1, f"two says {i}", 0, "one"))
        items.append(Transcript(p, a, b, turns))
    out = judge.decide(items, random.Random(0))
    flips = [s.a != it.a for s, it in zip(judge.shown, items, strict=True)]
    assert 0.3 < sum(flips) / len(flips) < 0.7
    for o, s, it, flip in zip(out, judge.shown, items, flips, strict=True):
        asked = verify_quotes(it) if isinstance(it, Transcript) else it
        assert s == (swapped(asked) if flip else asked)
        # whatever was shown first won, mapped back to the protocol's own slots
        assert o.prefers_a == (not flip) and o.prob_a == (0.0 if flip else 1.0)
        if isinstance(it, Transcript):  # each turn still speaks for the answer it spoke for
            assert all((s.a, s.b)[t.speaker].split()[1] == t.text.split()[0] for t in s.turns)
            assert all(t.verified for t in s.turns)
    assert swapped(swapped(items[1])) == items[1]


def test_a_position_biased_rater_picks_the_same_winner_in_both_orders(task):
    r = rater(task, competence=6, position_bias=50.0)
    ps = task.sample(100, seed=5)
    for p in ps:
        good, bad = correct_response(task, p), wrong_first_step(task, p)
        out = r.decide(
            [
                Comparison(p, good, bad),
                Comparison(p, bad, good),
                Transcript(p, good, bad),
                Transcript(p, bad, good),
            ],
            random.Random(p.id),
        )
        assert [o.prefers_a for o in out] == [True, False, True, False]
    # Where nothing decides, the bias for the first-shown slot cancels out over the batch.
    ties = r.decide(
        [Transcript(p, correct_response(task, p), correct_response(task, p)) for p in ps * 5],
        random.Random(1),
    )
    assert 0.4 < sum(o.prefers_a for o in ties) / len(ties) < 0.6


def test_quotes_are_verified_for_free(task):
    p = problem(task, 3)
    a, b = correct_response(task, p), wrong_first_step(task, p)
    t = Transcript(
        p,
        a,
        b,
        (
            Turn(0, "you wrote this", 0, b[:5]),  # really in b
            Turn(1, "you wrote this", 0, b[:5]),  # b's own text, not in a
            Turn(1, "vague", None, ""),
            Turn(0, "no quote"),
        ),
    )
    assert [x.verified for x in verify_quotes(t).turns] == [True, False, False, None]
    r = rater(task, competence=0)
    o = decide_one(r, t)
    assert o.checks == 0 and r.verifier.checks == 0 and r.cost.checks == 0
    with pytest.raises(ValueError):
        Turn(2, "a third side")


@dataclass
class PairsOnly(Judge):
    def _judge(self, items, rng):
        return [
            Verdict(0.5, True, self.name)
            if isinstance(it, Comparison)
            else unsupported(it, self.name)
            for it in items
        ]


def test_a_kind_a_judge_cannot_decide_is_a_typed_failure(task):
    p = problem(task, 2)
    judge = PairsOnly(name="pairs")
    out = judge.decide(
        [Comparison(p, "x", "y"), Argued(p, "x"), Transcript(p, "x", "y"), SubAnswer(p, "x")],
        random.Random(0),
    )
    assert isinstance(out[0], Verdict)
    assert out[1:] == [
        Failure(f"unsupported item kind: {k}", "pairs") for k in ("argued", "debate", "subquestion")
    ]
    assert judge.cost.labels == 1
    assert judge.compare([Comparison(p, "x", "y")], random.Random(0))[0].prob_a == 0.5


def test_pool_passes_every_kind_to_its_members(task):
    pool = RaterPool(
        "pool",
        [
            {"weight": 1.0, "rater": Oracle(name="careful")},
            {"weight": 1.0, "rater": SimulatedRater(name="quick", competence=0)},
        ],
    )
    pool.attach(task)
    p = problem(task, 2)
    good = correct_response(task, p)
    items = [
        Comparison(p, good, "x"),
        Argued(p, good),
        Transcript(p, good, "x"),
        SubAnswer(p, good),
    ] * 20
    out = pool.decide(items, random.Random(0))
    assert all(isinstance(o, Verdict) for o in out)
    assert {o.judge for o in out} == {"careful", "quick"}
    assert all(o.prefers_a for o in out if o.judge == "careful")


def test_payload_round_trips_every_kind(task):
    p = problem(task, 3)
    items = [
        Comparison(p, "a", "b"),
        Comparison(p, "a", "b", critique_b="Step 2 is wrong."),
        Argued(p, "a", ("one", "two")),
        Transcript(p, "a", "b", (Turn(1, "t", 0, "a", False), Turn(0, "u"))),
        SubAnswer(p, "a"),
    ]
    for it in items:
        assert "problem" not in it.payload()
        assert item_from_payload(it.kind, p, it.payload()) == it
    with pytest.raises(ValueError):
        item_from_payload("hologram", p, {})


def test_label_accuracy_per_kind(task):
    harness = Harness(task, competence=2, n_problems=1, seed=0)
    small, big = problem(task, 2), problem(task, 5)
    # wrong in its stated answer: what the harness scores (work wrong early may still end right)
    good, bad = correct_response(task, small), sycophantic_response(task, small)

    def rec(item, accept: bool | None):
        o = Failure("timeout", "h") if accept is None else Verdict(float(accept), accept, "r")
        return JudgmentRecord(item, o, "labels")

    pairs = [rec(Comparison(small, good, bad), True), rec(Comparison(small, good, good), False)]
    assert harness.label_accuracy(pairs) == {"within": 1.0, "beyond": None}
    records = pairs + [
        rec(Argued(small, good), True),
        rec(Argued(small, bad), True),
        rec(SubAnswer(big, correct_response(task, big)), False),
        rec(SubAnswer(big, sycophantic_response(task, big)), None),
        rec(Transcript(small, bad, good), False),
        rec(Transcript(small, good, good), True),  # both right: not scored
    ]
    assert harness.label_accuracy(records) == {
        "within": 1.0,
        "beyond": None,
        "argued/within": 0.5,
        "argued/beyond": None,
        "subquestion/within": None,
        "subquestion/beyond": 0.0,
        "debate/within": 1.0,
        "debate/beyond": None,
    }


def test_two_sided_kinds():
    assert set(TWO_SIDED) == {Comparison, Transcript}
