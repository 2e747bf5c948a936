"""Iterated amplification: the task's decomposition and composition, the overseer that answers
within its competence and delegates beyond it, abstention, mistakes, the curriculum."""

import random

import pytest

from oversight.judges import Failure, JudgmentRecord, Oracle, SimulatedRater, SubAnswer, Verdict
from oversight.tasks import ArithmeticConfig, ArithmeticTask, PublicProblem, PublicText
from oversight.tasks.arithmetic import chained, chunk_sizes, parse_prompt
from protocols.amplification import Amplification, agreement, next_level
from protocols.base import ProtocolContext, Turns
from tests.helpers import correct_response, wrong_first_step


def wrong_last_step(task, p) -> str:
    """Right work but for the last step's result, which the stated answer follows: wrong, yet
    well formed and chained."""
    steps = PublicText(task).steps(correct_response(task, p))
    steps[-1] = steps[-1][:-1] + str((int(steps[-1][-1]) + 1) % 10)
    return task.render(steps)


@pytest.fixture
def long_task() -> ArithmeticTask:
    return ArithmeticTask(
        ArithmeticConfig(min_steps=1, max_steps=8, belief_rate=1.0, belief_right_rate=0.0)
    )


def rater(task, competence=2, **kw):
    r = SimulatedRater(name="rater", competence=competence, **kw)
    r.attach(task)
    return r


def problem(prompt: str) -> PublicProblem:
    """A hand-written problem (its decomposition needs only its prompt)."""
    return PublicProblem("hand", prompt, len(parse_prompt(prompt)[1]), None)


def test_prompts_and_chunks_by_hand():
    assert parse_prompt("3+4*2-5=? I think it is 7.\n") == (3, [("+", 4), ("*", 2), ("-", 5)])
    assert parse_prompt("7=?\n") == (7, [])
    assert chunk_sizes(8, 2) == [4, 4]
    assert chunk_sizes(5, 2) == [3, 2]
    assert chunk_sizes(7, 3) == [3, 2, 2]
    assert chunk_sizes(1, 2) == [1]
    assert chained(3, [("+", 4), ("*", 2)], ["3+4=7", "7*2=4"])
    assert chained(3, [("+", 4), ("*", 2)], ["3+4=8", "8*2=6"])  # wrong sums still chain
    assert not chained(3, [("+", 4), ("*", 2)], ["3+4=7", "8*2=6"])  # restarts elsewhere
    assert not chained(3, [("+", 4), ("*", 2)], ["3+4=7", "7-2=5"])  # another operation
    assert not chained(3, [("+", 4), ("*", 2)], ["3+4=7"])


def test_decomposition_by_hand(long_task):
    text = PublicText(long_task)
    p = problem("3+4*2-5=? I think it is 7.\n")
    first = text.subproblem(p, 2, 0)
    assert first.prompt == "3+4*2=?\n" and first.belief is None and first.difficulty == 2
    second = text.subproblem(p, 2, 1, start=4)
    assert second.prompt == "4-5=?\n" and second.difficulty == 1
    composed = text.compose([first, second], ["3+4=7, 7*2=4. Answer: 4.", "4-5=9. Answer: 9."])
    assert composed == "3+4=7, 7*2=4, 4-5=9. Answer: 9."
    # wrong work that still reads as this chain composes, wrong as it is
    assert (
        text.compose(
            [first, text.subproblem(p, 2, 1, 5)], ["3+4=7, 7*2=5. Answer: 5.", "5-5=0. Answer: 0."]
        )
        == "3+4=7, 7*2=5, 5-5=0. Answer: 0."
    )
    # malformed, an answer that does not follow, another chain, a broken link: nothing
    assert text.compose([first, second], ["3+4=7, 7*2=4. Answer: 4.", "no idea"]) is None
    assert text.compose([first, second], ["3+4=7, 7*2=4. Answer: 5.", "4-5=9. Answer: 9."]) is None
    assert text.compose([first, second], ["3+4=7. Answer: 7.", "4-5=9. Answer: 9."]) is None
    assert text.compose([first, second], ["3+4=7, 7*2=4. Answer: 4.", "5-5=0. Answer: 0."]) is None
    with pytest.raises(ValueError):
        text.subproblem(p, 2, 1)  # the second needs the first's answer
    with pytest.raises(ValueError):
        text.subproblem(p, 2, 2, start=1)


@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_composing_right_sub_answers_gives_the_direct_answer_at_every_difficulty(long_task, parts):
    text = PublicText(long_task)
    problems = long_task.sample(400, seed=1)
    assert {p.difficulty for p in problems} == set(range(1, 9))
    for p in problems:
        subs, answers = [], []
        for k in range(text.parts(p, parts)):
            start = text.final_answer(answers[-1]) if k else None
            subs.append(text.subproblem(p, parts, k, start))
            assert subs[-1].belief is None and "think" not in subs[-1].prompt
            answers.append(correct_response(long_task, subs[-1]))
        assert sum(s.difficulty for s in subs) == p.difficulty
        assert text.compose(subs, answers) == correct_response(long_task, p)


def test_the_overseer_answers_within_its_competence_and_not_beyond(long_task):
    problems = long_task.sample(200, seed=2)
    r = rater(long_task, competence=2)
    out = r.answer(problems, random.Random(0))
    for p, o in zip(problems, out, strict=True):
        if p.difficulty <= 2:
            assert isinstance(o, JudgmentRecord) and o.item.answer == correct_response(long_task, p)
            assert o.outcome.checks == p.difficulty
        else:
            assert isinstance(o, Failure)
    within = [p for p in problems if p.difficulty <= 2]
    assert r.cost.labels == len(within) and r.cost.checks == sum(p.difficulty for p in within)
    oracle = Oracle()
    oracle.attach(long_task)
    assert all(isinstance(o, JudgmentRecord) for o in oracle.answer(problems, random.Random(0)))
    assert oracle.reach() is None and r.reach() == 2


def test_agreement_and_the_curriculum_step():
    assert agreement([1, 2, 3], [1, 0, None]) == 0.5
    assert agreement([1], [None]) is None
    assert next_level(2, 0.9, 0.8, top=8) == 3
    assert next_level(2, 0.7, 0.8, top=8) == 2
    assert next_level(8, 1.0, 0.8, top=8) == 8
    assert next_level(2, None, 0.8, top=8) == 2
    assert next_level(None, 1.0, 0.8, top=8) is None


class Policy:
    """A scripted policy: its answers to sub-questions (right, or `wrong` for those), counted."""

    def __init__(self, task, sub=lambda task, p: correct_response(task, p)):
        self.task, self.sub, self.asked = task, sub, []
        self.by_prompt: dict[str, PublicProblem] = {}

    def generate(self, prompts):
        self.asked += prompts
        return [self.sub(self.task, self.by_prompt[q]) for q in prompts]


def amplifier(task, judge, policy=None, **kw):
    proto = Amplification(**kw)
    text = PublicText(task)
    policy = policy or Policy(task)
    real = text.subproblem

    def subproblem(*a, **k):  # the script learns which problem a prompt is (tests only)
        sub = real(*a, **k)
        policy.by_prompt[sub.prompt] = sub
        return sub

    class Text:
        def __getattr__(self, name):
            return subproblem if name == "subproblem" else getattr(text, name)

    def rollout(prompts):
        return Turns(list(prompts), ["0+0=0. Answer: 0."] * len(prompts), rollout=None)

    proto.setup(
        ProtocolContext(
            judge=judge,
            base_model=None,
            tokenizer=None,
            device="cpu",
            generate=policy.generate,
            rollout=rollout,
            sft=None,
            sample_problems=lambda n: task.sample(n, seed=7),
            rng=random.Random(0),
            seed=0,
            text=Text(),
        )
    )
    return proto, policy


def test_amplified_targets_from_right_sub_answers_are_right(long_task):
    problems = long_task.sample(64, seed=3)
    proto, policy = amplifier(long_task, rater(long_task, competence=2))
    targets, records, cost = proto.amplify(problems)
    assert targets == [correct_response(long_task, p) for p in problems]
    beyond = [p for p in problems if p.difficulty > 2]
    assert len(records) == len(problems) - len(beyond)  # the overseer's own answers
    assert cost["subquestions"] == len(policy.asked) == 2 * len(beyond)
    assert cost["overseer_calls"] == len(problems)  # an answer or a composition each
    assert all("think" not in q for q in policy.asked)


def test_a_malformed_sub_answer_makes_the_overseer_abstain(long_task):
    problems = [p for p in long_task.sample(64, seed=4) if p.difficulty > 2]
    policy = Policy(long_task, sub=lambda task, p: "I do not know.")
    proto, _ = amplifier(long_task, rater(long_task), policy)
    targets, _, cost = proto.amplify(problems)
    assert targets == [None] * len(problems)
    assert cost["subquestions"] == len(problems)  # the second half is never asked
    # a step that does not start from the one before: malformed too
    policy = Policy(long_task, sub=wrong_first_step)
    proto, _ = amplifier(long_task, rater(long_task), policy)
    assert proto.amplify([p for p in problems if p.difficulty > 3])[0] == [None] * sum(
        p.difficulty > 3 for p in problems
    )
    # a sub-answer whose work is wrong but well formed is composed, wrong as it is
    policy = Policy(long_task, sub=wrong_last_step)
    proto, _ = amplifier(long_task, rater(long_task), policy)
    targets, _, _ = proto.amplify(problems)
    assert all(
        t is not None and t != correct_response(long_task, p)
        for p, t in zip(problems, targets, strict=True)
    )


def test_vetting_rejects_wrong_sub_answers(long_task):
    problems = [p for p in long_task.sample(64, seed=4) if 3 <= p.difficulty <= 4]
    policy = Policy(long_task, sub=wrong_last_step)
    proto, _ = amplifier(long_task, rater(long_task), policy, vet=True)
    targets, records, _ = proto.amplify(problems)
    assert targets == [None] * len(problems)  # its two checks find the first step wrong
    assert [r.phase for r in records] == ["vet"] * len(problems)
    proto, _ = amplifier(long_task, rater(long_task), vet=True)
    targets, _, _ = proto.amplify(problems)
    assert targets == [correct_response(long_task, p) for p in problems]


def test_injected_mistakes_change_the_stated_answer(long_task):
    problems = long_task.sample(32, seed=5)
    proto, _ = amplifier(long_task, rater(long_task), mistakes=1.0)
    targets, _, _ = proto.amplify(problems)
    text = PublicText(long_task)
    for p, t in zip(problems, targets, strict=True):
        right = correct_response(long_task, p)
        assert text.steps(t) == text.steps(right) and text.final_answer(t) != text.final_answer(
            right
        )


def test_episodes_distil_the_targets_and_the_curriculum_starts_at_the_overseer(long_task):
    proto, _ = amplifier(long_task, rater(long_task), threshold=0.5)
    problems = long_task.sample(32, seed=6)
    batch = proto.episodes(problems, step=1)
    assert all(p.difficulty <= 2 for p in batch.problems)  # where the overseer is right
    assert len(batch.problems) == len(problems)
    assert batch.sft == [(p.prompt, correct_response(long_task, p)) for p in batch.problems]
    # the scripted policy always says 0: +1 where the target does, -1 elsewhere
    wants = [PublicText(long_task).final_answer(t) for _, t in batch.sft]
    assert batch.rewards[0].tolist() == [1.0 if w == 0 else -1.0 for w in wants]
    assert batch.info["amplification/level"] == 2 and proto.level == 2  # it disagreed
    assert batch.scored["amplified"][1] == [t for _, t in batch.sft]
    # the policy agreeing with every target raises the level by one
    proto.level = next_level(proto.level, 1.0, proto.threshold, proto.top)
    assert proto.level == 3
    assert all(p.difficulty <= 3 for p in proto._problems(problems))


def test_an_abstained_sample_is_not_trained(long_task):
    policy = Policy(long_task, sub=lambda task, p: "?")
    proto, _ = amplifier(long_task, rater(long_task), policy)
    proto.level, proto.started = 4, True
    batch = proto.episodes(long_task.sample(32, seed=8), step=1)
    trained = batch.turns[0].trained
    assert trained == [p.difficulty <= 2 for p in batch.problems]
    assert len(batch.sft) == sum(trained)
    assert batch.judgments and all(isinstance(r.outcome, Verdict) for r in batch.judgments)
    assert all(isinstance(r.item, SubAnswer) for r in batch.judgments)


class Person(SimulatedRater):
    """Stands in for a person in the judging UI: works nothing out itself (as `HumanJudge`),
    but decides each sub-answer it is shown, checking every step."""

    def reach(self):
        return 0

    def _answer(self, problems, rng):
        return [Failure("does not answer problems", self.name) for _ in problems]


def test_a_person_as_the_overseer_vets_every_sub_answer(long_task):
    person = Person(name="person", competence=None)
    person.attach(long_task)
    problems = long_task.sample(16, seed=9)
    proto, policy = amplifier(long_task, person, vet=True)
    targets, records, _ = proto.amplify(problems)
    assert targets == [correct_response(long_task, p) for p in problems]
    assert len(records) == len(policy.asked)  # every sub-answer went before the person
    assert all(r.item.kind == "subquestion" and r.item.problem.belief is None for r in records)
    proto, _ = amplifier(long_task, person, Policy(long_task, sub=wrong_last_step), vet=True)
    assert proto.amplify(problems)[0] == [None] * len(problems)
    batch = proto.episodes(problems, step=1)  # it works nothing out: the curriculum starts at 1
    assert batch.info["amplification/level"] == 1 and {p.difficulty for p in batch.problems} == {1}
