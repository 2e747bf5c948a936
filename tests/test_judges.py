"""Judges: the oracle is always right; a rater that can check everything is right up to its
noise; biases act only when checks do not decide; the pool routes by weight; order is shuffled."""

import random

import pytest

from oversight.judges import Comparison, Oracle, RaterPool, SimulatedRater, Verdict
from tests.helpers import correct_response, padded_response, sycophantic_response, wrong_first_step


def pairs(task, make_a, make_b, n=200, seed=0, min_steps=1):
    problems = [p for p in task.sample(n * 3, seed=seed) if p.difficulty >= min_steps][:n]
    return [Comparison(p, make_a(task, p), make_b(task, p)) for p in problems]


def attached(judge, task):
    judge.attach(task)
    return judge


def test_oracle_always_prefers_the_correct_answer(task, rng):
    oracle = attached(Oracle(), task)
    items = pairs(task, correct_response, sycophantic_response) + pairs(
        task, wrong_first_step, correct_response, seed=1
    )
    out = oracle.compare(items, rng)
    assert all(isinstance(o, Verdict) for o in out)
    first = len(items) // 2
    assert all(o.prefers_a and o.prob_a == 1.0 for o in out[:first])
    assert all(not o.prefers_a and o.prob_a == 0.0 for o in out[first:])
    assert oracle.cost.labels == len(items) and oracle.cost.checks > 0


def test_competent_rater_is_right_up_to_noise(task, rng):
    # competence 6 >= every problem's steps: only the flip noise makes it wrong.
    rater = attached(SimulatedRater(name="r", competence=6, agreement_bias=5.0, noise=0.1), task)
    out = rater.compare(pairs(task, correct_response, sycophantic_response, n=2000), rng)
    wrong = sum(not o.prefers_a for o in out) / len(out)
    assert 0.07 < wrong < 0.13
    assert all(abs(o.prob_a - 0.9) < 1e-9 for o in out)


def test_biases_act_only_when_checks_do_not_decide(task, rng):
    rater = attached(SimulatedRater(name="r", competence=2, agreement_bias=20.0), task)
    # Within competence: the sycophantic last step is checked and caught, bias or not.
    items = pairs(task, sycophantic_response, correct_response, n=300)
    easy = [
        o
        for o, c in zip(rater.compare(items, rng), items, strict=True)
        if c.problem.difficulty <= 2
    ]
    assert easy and all(not o.prefers_a for o in easy)
    # Beyond competence: the last step, which carries the answer, is never reached: agreement decides.
    beyond = rater.compare(
        pairs(task, sycophantic_response, correct_response, n=300, min_steps=3), rng
    )
    assert all(o.prefers_a for o in beyond)
    # An error in the first step is always caught, so the bias never acts there.
    early = rater.compare(pairs(task, wrong_first_step, correct_response, n=300, min_steps=3), rng)
    assert all(not o.prefers_a for o in early)


def test_length_bias_and_ties(task, rng):
    rater = attached(SimulatedRater(name="r", competence=1, length_bias=20.0), task)
    items = pairs(task, correct_response, padded_response, min_steps=3)
    assert all(not o.prefers_a for o in rater.compare(items, rng))
    unbiased = attached(SimulatedRater(name="u", competence=1), task)
    ties = unbiased.compare(pairs(task, correct_response, correct_response), rng)
    assert all(o.prob_a == 0.5 for o in ties)


def test_order_is_shuffled_against_position_bias(task):
    # A rater who always picks whatever is shown first, on indistinguishable answers.
    rater = attached(SimulatedRater(name="p", competence=1, position_bias=50.0), task)
    out = rater.compare(pairs(task, correct_response, correct_response, n=1000), random.Random(1))
    share_a = sum(o.prefers_a for o in out) / len(out)
    assert 0.45 < share_a < 0.55


def test_pool_routes_by_weight_and_names_the_member(task, rng):
    pool = RaterPool(
        "pool",
        [
            {
                "weight": 3.0,
                "rater": SimulatedRater(name="agreeable", competence=2, agreement_bias=20.0),
            },
            {"weight": 1.0, "rater": Oracle(name="careful")},
        ],
    )
    pool.attach(task)
    items = pairs(task, sycophantic_response, correct_response, n=2000, min_steps=3)
    out = pool.compare(items, rng)
    by = {"agreeable": [], "careful": []}
    for o in out:
        by[o.judge].append(o.prefers_a)
    assert 0.7 < len(by["agreeable"]) / len(out) < 0.8
    assert all(by["agreeable"]) and not any(by["careful"])
    assert pool.cost.labels == len(items)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError):
        SimulatedRater(name="x", noise=0.7)
    with pytest.raises(ValueError):
        SimulatedRater(name="x", check_order="sideways")
    with pytest.raises(ValueError):
        RaterPool("p", [])
