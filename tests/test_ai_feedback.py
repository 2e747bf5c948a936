"""Constitutional AI and AI-assisted evaluation: the constitution, critiques under a principle,
revision demonstrations, the feedback model's labels, and judges helped (or misled) by critics."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from oversight.errors import ConfigError
from oversight.judges import Comparison, SimulatedRater
from oversight.roles import Critique, SimulatedCritic
from oversight.tasks import ArithmeticConfig, ArithmeticTask
from oversight.tasks.arithmetic import render_response, solve
from oversight.tasks.base import truth_access
from protocols.assisted import Assisted
from protocols.constitutional import Constitutional, feedback_prob, load_constitution
from protocols.rlhf import RLHF
from tests.helpers import composed, correct_response, sycophantic_response


def wrong_at(task, p, k: int) -> str:
    """The right work up to step k (from 0), a wrong result there, carried through."""
    with truth_access():
        steps = list(task.truth.get(p.id).steps)
    ops = [(s[1], int(s[2])) for s in steps]
    wrong = (int(steps[k][-1]) + 1) % 10
    return render_response(steps[:k] + [steps[k][:-1] + str(wrong)] + solve(wrong, ops[k + 1 :]))


def long_problems(task, n: int = 40, steps: int = 6):
    return [p for p in task.sample(40 * n, seed=3) if p.difficulty == steps][:n]


# ---- the constitution -----------------------------------------------------------------------
def test_the_default_constitution_loads_with_its_two_principles():
    node = composed("protocol=constitutional").protocol.constitution
    principles = load_constitution(node)
    assert [p.focus for p in principles] == ["answer", "steps"]
    assert "user's answer" in principles[0].text and "checkable" in principles[1].text


@pytest.mark.parametrize(
    "node, message",
    [
        (None, "non-empty list of principles"),
        ({"principles": []}, "non-empty list of principles"),
        ({"principles": ["be good"]}, r"principles\[0\]: must be a mapping"),
        ({"principles": [{"name": "a", "text": "t"}]}, "missing"),
        (
            {"principles": [dict(name="a", text="t", critique_request="c", revision_request="")]},
            "non-empty text",
        ),
        (
            {
                "principles": [
                    dict(name="a", text="t", critique_request="c", revision_request="r", focus="x")
                ]
            },
            r"focus='x': must be one of all, answer, steps",
        ),
        (
            {
                "principles": [
                    dict(name="a", text="t", critique_request="c", revision_request="r", tone=1)
                ]
            },
            r"unknown keys \['tone'\]",
        ),
    ],
)
def test_a_malformed_constitution_is_one_clear_error(node, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_constitution(node)
    assert "\n" not in str(e.value) and str(e.value).startswith("protocol.constitution")


def test_a_malformed_constitution_stops_the_protocol_at_build():
    with pytest.raises(ConfigError, match="protocol.constitution"):
        Constitutional(constitution={"principles": [{"name": "a"}]})


# ---- critiques and revisions in the task's text ---------------------------------------------
def test_the_corpus_mixes_in_revision_demonstrations_at_its_rate():
    task = ArithmeticTask(ArithmeticConfig(corpus_revisions=0.3, corpus_turns=0))
    corpus = task.corpus(2000, seed=0)
    demos = [(p, t) for p, t in corpus if p.count("\n") == 3]
    assert 0.25 < len(demos) / len(corpus) < 0.35
    for prompt, target in demos:
        problem, answer, critique, _ = prompt.split("\n")
        parsed = task.parse_critique(critique)
        assert parsed is not None, critique
        assert task.steps(target) and task.answer_follows(target)
        assert not target.startswith("You are right")  # the revision never just agrees
        if parsed == (None, False):  # no error found: the answer stands
            assert target == answer
    assert not [
        p
        for p, _ in ArithmeticTask(ArithmeticConfig(corpus_revisions=0, corpus_turns=0)).corpus(
            500, 0
        )
        if p.count("\n") > 1
    ]


def test_a_critic_asked_about_the_answer_reads_it_without_checking(task):
    critic = SimulatedCritic(name="critic", competence=2)
    critic.attach(task)
    problems = long_problems(task)
    syc = [sycophantic_response(task, p) for p in problems]
    steps_only = critic.critique(problems, syc, random.Random(0), focus="steps")
    assert not any(c.found_error for c in steps_only)  # its two checks never reach the end
    checks = critic.cost.checks
    out = critic.critique(problems, syc, random.Random(0), focus="answer")
    assert all(isinstance(c, Critique) and c.about_answer for c in out)
    assert critic.cost.checks == checks  # reading the answer against the work is free
    right = critic.critique(
        problems, [correct_response(task, p) for p in problems], random.Random(0), "answer"
    )
    assert not any(c.found_error for c in right)
    with pytest.raises(ValueError, match="focus"):
        critic.critique(problems, syc, random.Random(0), focus="tone")  # type: ignore[arg-type]


def test_a_critic_points_at_the_real_error_on_hand_made_cases(task):
    critic = SimulatedCritic(name="critic")  # every step
    critic.attach(task)
    p = long_problems(task, 1)[0]
    for k in range(6):
        (c,) = critic.critique([p], [wrong_at(task, p, k)], random.Random(0))
        assert c.step == k and c.text == f"Step {k + 1} is wrong."
        assert task.parse_critique(c.text) == (k, False)


# ---- AI-assisted judging --------------------------------------------------------------------
def judge(task, **kw) -> SimulatedRater:
    r = SimulatedRater(name="r", competence=2, **kw)
    r.attach(task)
    return r


def test_a_judge_verifies_the_pointed_step_first(task):
    p = long_problems(task, 1)[0]
    bad, right = wrong_at(task, p, 4), correct_response(task, p)
    r = judge(task)
    (alone,) = r.decide([Comparison(p, bad, right)], random.Random(0))
    assert alone.prob_a == 0.5  # its two checks from the top find nothing
    pointed = Comparison(p, bad, right, "Step 5 is wrong.", "No error found.")
    (helped,) = r.decide([pointed], random.Random(0))
    assert helped.prob_a == 0.0 and helped.checks == 1 + 2


def test_a_false_alarm_misleads_a_judge_that_trusts_its_critic(task):
    p = long_problems(task, 1)[0]
    right, syc = correct_response(task, p), sycophantic_response(task, p)
    # The critic accuses the right answer falsely and misses the sycophantic one.
    lie = Comparison(p, right, syc, "Step 2 is wrong.", "No error found.")
    (careful,) = judge(task).decide([lie], random.Random(0))
    assert careful.prob_a == 0.5  # it checks step 2, finds it right: the lie costs a check only
    (trusting,) = judge(task, trust_critiques=1.0).decide([lie], random.Random(0))
    assert trusting.prob_a == 0.0 and trusting.checks == 2  # the right answer loses, unchecked


def test_assisted_labels_beyond_the_judge_better_than_its_judge_alone(task):
    """Label accuracy on 6-step pairs of one right and one wrong answer: a judge of two checks
    alone, and with an all-seeing critic (and a hallucinating one)."""
    problems = long_problems(task, 60)
    rng = random.Random(0)
    pairs = []
    for p in problems:
        bad = sycophantic_response(task, p) if rng.random() < 0.5 else wrong_at(task, p, 5)
        pairs.append(Comparison(p, right := correct_response(task, p), bad))
        pairs.append(Comparison(p, bad, right))

    def accuracy(protocol, critic=None) -> float:
        rater = SimulatedRater(name="j", competence=2, agreement_bias=4.0)
        rater.attach(task)
        roles = {"critic": critic} if critic else {}
        protocol.ctx = SimpleNamespace(
            judge=rater, rng=random.Random(0), roles=roles, role=lambda name, _: roles[name]
        )
        records = protocol.judge_pairs(pairs, "labels")
        return sum(r.outcome.prefers_a == (i % 2 == 0) for i, r in enumerate(records)) / len(pairs)

    critic = SimulatedCritic(name="critic")
    critic.attach(task)
    alarmist = SimulatedCritic(name="critic", false_alarm_rate=1.0)
    alarmist.attach(task)
    plain, helped = accuracy(RLHF()), accuracy(Assisted(), critic)
    assert helped == 1.0 and plain < 0.7
    # Its false alarms cost a careful judge a check of a right step; the real flaws it still
    # points at decide.
    assert accuracy(Assisted(), alarmist) == 1.0


# ---- the feedback model ---------------------------------------------------------------------
def test_feedback_prob_prefers_the_unflawed_answer_and_clamps():
    assert feedback_prob(False, True, 4.0, None) == pytest.approx(1 / (1 + 2.718281828**-4))
    assert feedback_prob(True, False, 4.0, None) == pytest.approx(
        1 - feedback_prob(False, True, 4.0, None)
    )
    assert feedback_prob(True, True, 4.0, None) == feedback_prob(False, False, 4.0, None) == 0.5
    assert feedback_prob(False, True, 4.0, 0.1) == pytest.approx(0.6)
    assert feedback_prob(True, False, 4.0, 0.1) == pytest.approx(0.4)
