"""Debate and consultancy: the turn format, scripted debaters before a small judge, best-of-N
that the answer order cannot sway, quotes, precommitment."""

import random

from oversight.judges import (
    Argued,
    Probe,
    SimulatedRater,
    Transcript,
    Turn,
    Verdict,
    item_from_payload,
    swapped,
    verify_quotes,
)
from oversight.tasks import ArithmeticConfig, ArithmeticTask, PublicText
from oversight.tasks.arithmetic import parse_turn, render_probe, render_response, render_turn
from protocols.base import ProtocolContext, Speaker, Turns
from protocols.consultancy import Consultancy
from protocols.debate import Debate
from tests.helpers import correct_response, wrong_first_step


def long_problems(task, n=40):
    return [p for p in task.sample(400, seed=3) if p.difficulty >= 5][:n]


def ctx_for(task, judge, generate=None) -> ProtocolContext:
    return ProtocolContext(
        judge=judge,
        base_model=None,
        tokenizer=None,
        device="cpu",
        generate=generate or (lambda prompts: ["No error found."] * len(prompts)),
        rollout=None,
        sft=None,
        sample_problems=lambda n: task.sample(n, seed=9),
        rng=random.Random(0),
        seed=0,
        text=PublicText(task),
    )


def honest(task, problem, answer: str) -> str:
    """A scripted honest turn against `answer`: its first step that is not the right one."""
    steps = task.steps(answer)
    right = task.steps(correct_response(task, problem))
    i = next(i for i, (s, r) in enumerate(zip(steps, right, strict=True)) if s != r)
    return render_turn(i, steps[i])


def test_turns_round_trip_through_the_task_text():
    assert parse_turn(render_turn(2, "7*2=5")) == (2, "7*2=5", False)
    assert parse_turn(render_turn(0, "3+4=7", vouch=True)) == (0, "3+4=7", True)
    assert parse_turn(render_turn(-1, "Answer: 7")) == (-1, "Answer: 7", False)
    assert parse_turn(render_turn(None, None)) == (None, None, False)
    assert parse_turn("Step two is wrong.") == (None, None, False)


def test_demonstrated_turns_read_the_judges_probes():
    task = ArithmeticTask(ArithmeticConfig(corpus_turns=1.0, corpus_revisions=0, turn_probes=1.0))
    probed = 0
    for prompt, _ in task.corpus(2000, seed=0):
        said = prompt.split("\n")[3:-1]
        tested = [x for x in said if x.startswith("Tested: ")]
        assert len(tested) <= 1 and (not said or not said[0].startswith("Tested: "))
        probed += bool(tested)
    assert 0.3 < probed / 2000 < 0.45  # half are debate turns, 3 in 4 after earlier turns
    # a misleading turn never calls wrong a step the judge tested right, while another is left
    task = ArithmeticTask(ArithmeticConfig(turn_honest=0.0))
    steps = ["3+4=7", "7*2=4", "4-1=3"]
    answer = render_response(steps)
    rng = random.Random(0)
    named = {parse_turn(task._attack(rng, answer, steps, {"3+4=7"}))[0] for _ in range(200)}
    assert named == {1, 2}
    named = {parse_turn(task._attack(rng, answer, steps))[0] for _ in range(200)}
    assert named == {0, 1, 2}


def test_the_corpus_has_turn_demonstrations_that_parse():
    task = ArithmeticTask(ArithmeticConfig(corpus_turns=0.5, corpus_revisions=0))
    corpus = task.corpus(1000, seed=0)
    turns = [t for p, t in corpus if p.count("\n") >= 2]
    assert 0.4 < len(turns) / len(corpus) < 0.6
    parsed = [parse_turn(t) for t in turns]
    assert all(
        step is not None or t == "No error found."
        for (step, _, _), t in zip(parsed, turns, strict=True)
    )
    assert any(v for _, _, v in parsed) and any(s is not None and not v for s, _, v in parsed)


def test_a_scripted_honest_debater_beats_a_scripted_liar_before_a_budget_1_judge(task):
    judge = SimulatedRater(name="sparse", competence=1, agreement_bias=2.0)
    judge.attach(task)
    wins = []
    for p in long_problems(task):
        right, wrong = correct_response(task, p), wrong_first_step(task, p)
        liar = render_turn(3, task.steps(right)[3])  # a right step, said to be wrong
        for a, b, honest_side in ((right, wrong, 0), (wrong, right, 1)):
            turns = (
                Turn(honest_side, (h := honest(task, p, wrong)), *parse_turn(h)[:2]),
                Turn(1 - honest_side, liar, 3, task.steps(right)[3]),
            )
            (v,) = judge.decide_both_ways([Transcript(p, a, b, turns)], random.Random(0))
            assert isinstance(v, Verdict)
            wins.append(v.prefers_a == (honest_side == 0))
    assert all(wins)
    # one check per answer, each way round: the contested steps
    assert judge.cost.checks == 2 * 2 * len(wins)


def test_best_of_n_cannot_be_swayed_by_the_answer_order(task):
    judge = SimulatedRater(name="j", competence=1, position_bias=1.5)
    judge.attach(task)
    debate = Debate(best_of=3)
    debate.ctx = ctx_for(task, judge)
    for p in long_problems(task, 10):
        right, wrong = correct_response(task, p), wrong_first_step(task, p)
        steps = task.steps(wrong)
        cands = [render_turn(4, steps[4]), render_turn(0, steps[0]), render_turn(None, None)]
        as_a = [Turn(0, c, *parse_turn(c)[:2]) for c in cands]
        as_b = [Turn(1, c, *parse_turn(c)[:2]) for c in cands]
        (k,) = debate._pick([Transcript(p, right, wrong)], 0, [as_a])
        (k_swapped,) = debate._pick([Transcript(p, wrong, right)], 1, [as_b])
        assert k == k_swapped == 1  # the turn pointing at the real error, whichever slot


def test_quotes_are_verified_for_free_and_cannot_be_forged(task):
    p = long_problems(task, 1)[0]
    right, wrong = correct_response(task, p), wrong_first_step(task, p)
    quote = task.steps(wrong)[0]
    forged = quote[:-1] + str((int(quote[-1]) + 3) % 10)
    t = verify_quotes(
        Transcript(
            p,
            right,
            wrong,
            (Turn(0, "x", 0, quote, verified=False), Turn(0, "y", 0, forged, verified=True)),
        )
    )
    assert [x.verified for x in t.turns] == [True, False]
    judge = SimulatedRater(name="j", competence=0)
    judge.attach(task)
    judge.decide([t], random.Random(0))
    assert judge.cost.checks == 0  # reading the quotes cost nothing


def test_debaters_stay_committed_to_their_answers(task):
    judge = SimulatedRater(name="j", competence=2)
    judge.attach(task)
    said = iter(["Step 1 is wrong: 1+1=2.", "No error found."] * 100)
    debate = Debate(rounds=3, sequential=True)
    debate.ctx = ctx_for(task, judge, lambda prompts: [next(said) for _ in prompts])
    problems = long_problems(task, 4)
    start = [Transcript(p, correct_response(task, p), wrong_first_step(task, p)) for p in problems]
    ends = debate.debate(start, Speaker(debate.ctx, train=False))
    for s, e in zip(start, ends, strict=True):
        assert (e.a, e.b) == (s.a, s.b) and len(e.turns) == 6
        assert [t.speaker for t in e.turns] == [0, 1] * 3
    # every later prompt restates the committed answers, whatever was said before
    assert debate.assign([start[0].a])[0] != start[0].a


def test_an_interactive_judge_tests_a_claim_between_rounds_and_both_sides_read_it(task):
    judge = SimulatedRater(name="j", competence=2)
    judge.attach(task)
    prompts: list[str] = []

    def generate(asked: list[str]) -> list[str]:
        prompts.extend(asked)
        # every debater calls the other side's first step wrong, quoting it as written
        return [render_turn(0, task.steps(q.split("\n")[2])[0]) for q in asked]

    debate = Debate(rounds=3, interactive=True)
    debate.ctx = ctx_for(task, judge, generate)
    problems = long_problems(task, 6)
    start = [Transcript(p, correct_response(task, p), wrong_first_step(task, p)) for p in problems]
    ends = debate.debate(start, Speaker(debate.ctx, train=False))
    for e in ends:
        kinds = [type(t).__name__ for t in e.turns]
        assert kinds == ["Turn", "Turn", "Probe", "Turn", "Turn", "Probe", "Turn", "Turn"]
        first, second = (t for t in e.turns if isinstance(t, Probe))
        # a step is tested once: the second probe takes the other side's claim
        assert {first.side, second.side} == {0, 1} and first.step == second.step == 0
        for probe in (first, second):
            assert probe.right == (probe.side == 0)  # a's first step is right, b's is not
            assert probe.text == render_probe(probe.quote, probe.right)
            assert probe.quote == task.steps((e.a, e.b)[probe.side])[0]
    assert judge.cost.checks == 2 * len(ends)
    # both sides read the first probe in round 2: a's prompts, then b's, one per debate
    n = len(ends)
    for k, e in enumerate(ends):
        probe = e.turns[2].text
        assert probe in prompts[2 * n + k] and probe in prompts[3 * n + k]
        assert probe not in prompts[k] and probe not in prompts[n + k]


def test_what_a_probe_found_stands_in_the_decision_and_spends_the_budget(task):
    judge = SimulatedRater(name="j", competence=1)
    judge.attach(task)
    p = long_problems(task, 1)[0]
    right, wrong = correct_response(task, p), wrong_first_step(task, p)
    liar = Turn(1, "x", 3, task.steps(right)[3], verified=True)  # a right step called wrong
    honest = Turn(0, "y", 0, task.steps(wrong)[0], verified=True)
    tested = Probe(0, 3, task.steps(right)[3], True, "t")
    # the liar's claim tested right: a's budget is spent, b's one check finds the real error
    t = Transcript(p, right, wrong, (liar, honest, tested))
    (v,) = judge.decide([t], random.Random(0))
    assert isinstance(v, Verdict) and v.prefers_a and v.checks == 1
    # an error a probe found stands, whichever way round it is shown: no check goes to that
    # answer again, one to the other answer each way round
    caught = Transcript(p, right, wrong, (Probe(1, 0, task.steps(wrong)[0], False, "t"),))
    for item, a_wins in ((caught, True), (swapped(caught), False)):
        (v,) = judge.decide_both_ways([item], random.Random(0))
        assert isinstance(v, Verdict) and v.prefers_a == a_wins and v.checks == 2
    assert item_from_payload(t.kind, p, t.payload()) == t


def test_a_consultants_judge_asks_about_a_step_of_its_own_choosing(task):
    """A consultant of a wrong answer vouches for right steps; deciding at the end, a budget-2
    judge spends both checks where it points. Asking between rounds, it checks the first step
    itself, where the error is, and rejects."""
    prompts: list[str] = []

    def generate(asked: list[str]) -> list[str]:
        prompts.extend(asked)
        out = []
        for q in asked:  # step 4 in round 1, step 5 in round 2
            i = 3 + q.count(" is right: ")
            out.append(render_turn(i, task.steps(q.split("\n")[1])[i], vouch=True))
        return out

    problems = long_problems(task, 10)
    start = [Argued(p, wrong_first_step(task, p)) for p in problems]
    accepted = {}
    for interactive in (False, True):
        judge = SimulatedRater(name="j", competence=2)
        judge.attach(task)
        consult = Consultancy(rounds=2, interactive=interactive)
        consult.ctx = ctx_for(task, judge, generate)
        cases = consult.argue(start, Speaker(consult.ctx, train=False), list(range(10)))
        verdicts = consult.judge(cases)
        accepted[interactive] = [v.prob_a for v in verdicts if isinstance(v, Verdict)]
        # asking: one check, which finds the error and decides
        assert judge.cost.checks == (1 if interactive else 2) * 10
    assert accepted[False] == [0.5] * 10  # both checks on vouched right steps: a coin
    assert accepted[True] == [0.0] * 10
    probes = [t for c in cases for t in c.argument if isinstance(t, Probe)]
    assert [(p.step, p.right) for p in probes] == [(0, False)] * 10
    assert all(p.text in q for p, q in zip(probes, prompts[-10:], strict=True))


def test_a_frozen_opponent_speaks_for_b_and_never_trains(task):
    """opponent=frozen: b's answers and turns come from the reference sampler; the batch holds
    a's samples only, each paid a's reward."""
    judge = SimulatedRater(name="j", competence=None)
    judge.attach(task)
    problems = long_problems(task, 6)
    by_prompt = {p.prompt: p for p in problems}

    def policy(prompts):  # right answers, then no objection
        texts = [
            correct_response(task, by_prompt[q]) if q in by_prompt else "No error found."
            for q in prompts
        ]
        return Turns(prompts, texts, rollout=None)

    asked: list[str] = []

    def frozen(prompts):  # wrong answers, then no objection
        asked.extend(prompts)
        return [
            wrong_first_step(task, by_prompt[q]) if q in by_prompt else "No error found."
            for q in prompts
        ]

    ctx = ctx_for(task, judge)
    ctx.rollout, ctx.reference = policy, frozen
    debate = Debate(rounds=2, sequential=True, opponent="frozen")
    debate.setup(ctx)
    batch = debate.episodes(problems, step=0)
    n = len(problems)
    assert len(asked) == n + 2 * n  # b's answers, then b's turn in each of 2 rounds
    assert [len(t.texts) for t in batch.turns] == [n, n, n]  # a's answers, a's turns
    assert all(all(t.trained) for t in batch.turns)
    assert all(r.tolist() == [1.0] * n for r in batch.rewards)  # right beats wrong: a won
    assert batch.responses == [correct_response(task, p) for p in problems]  # the policy's only


def test_with_train_answers_off_only_the_turns_train(task):
    """train_answers=false: the committed answers stay in the batch (they are the policy's, and
    scored as such) but are not trained; every turn is, with the verdict's reward."""
    judge = SimulatedRater(name="j", competence=None)
    judge.attach(task)
    problems = long_problems(task, 6)
    n = len(problems)
    by_prompt = {p.prompt: p for p in problems}
    seen: set[str] = set()

    def answer(q: str) -> str:  # a (asked first) answers right, b wrong
        write = wrong_first_step if q in seen else correct_response
        seen.add(q)
        return write(task, by_prompt[q])

    def policy(prompts):
        texts = [answer(q) if q in by_prompt else "No error found." for q in prompts]
        return Turns(prompts, texts, rollout=None)

    ctx = ctx_for(task, judge)
    ctx.rollout = policy
    debate = Debate(rounds=2, train_answers=False)
    debate.setup(ctx)
    batch = debate.episodes(problems, step=0)
    answers, *turns = batch.turns
    assert len(answers.texts) == 2 * n and not any(answers.trained)
    assert len(turns) == 4 and all(all(t.trained) for t in turns)
    assert batch.rewards[1].tolist() == [1.0] * n  # a's first turn: a's right answer won
    assert batch.responses == answers.texts
