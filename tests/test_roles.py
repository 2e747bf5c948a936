"""AI helper roles (oversight/roles/): the critic, simulated and learned, its text format, how it
is configured and built, what it costs, the truth wall around it, and the tokenizer that spells
what it writes."""

from __future__ import annotations

import random
from dataclasses import asdict

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from transformers import AutoTokenizer

from oversight.errors import ConfigError
from oversight.experiment.config import register
from oversight.models.base_model import base_key, base_model
from oversight.models.policy import PolicyConfig
from oversight.models.tokenizer import EOS, PAD, char_alphabet, char_tokenizer, decode, encode
from oversight.roles import (
    Critic,
    Critique,
    Failure,
    LearnedCritic,
    Role,
    SimulatedCritic,
    build_roles,
)
from oversight.tasks import (
    ArithmeticConfig,
    ArithmeticTask,
    GroundTruthAccessError,
    PublicProblem,
)
from oversight.tasks.arithmetic import ALPHABET, OPS, render_critique, render_response, solve
from oversight.tasks.base import truth_access
from tests import test_config
from tests.helpers import ROOT, composed, correct_response, sycophantic_response


def wrong_at(task: ArithmeticTask, problem, k: int, rng: random.Random) -> str:
    """The right work up to step k, a wrong result there, carried through to the end."""
    with truth_access():
        steps = list(task.truth.get(problem.id).steps)
    ops = [(s[1], int(s[2])) for s in steps]
    wrong = (int(steps[k][-1]) + rng.randint(1, 9)) % 10
    return render_response(steps[:k] + [steps[k][:-1] + str(wrong)] + solve(wrong, ops[k + 1 :]))


def with_critic(kind: str, *overrides: str) -> DictConfig:
    """The main config with `critic=KIND`, composed from conf/critic/ onto it."""
    cfg = composed()
    register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        node = compose(f"critic/{kind}", overrides=list(overrides)).critic
    with open_dict(cfg):
        cfg.critic = node
    return cfg


# ---- the tokenizer covers what roles write --------------------------------------------------
def test_the_default_vocabulary_and_base_model_key_are_what_they_were():
    assert char_tokenizer().get_vocab() == {
        t: i for i, t in enumerate([PAD, EOS, *dict.fromkeys(ALPHABET)])
    }
    assert char_alphabet() == char_alphabet("+-1") == ALPHABET  # the key's alphabet, as before
    policy, task_cfg = PolicyConfig(), asdict(ArithmeticConfig())
    assert base_key(policy, task_cfg) == base_key(policy, task_cfg, "+-1")
    assert base_key(policy, task_cfg, "Z") != base_key(policy, task_cfg)


def test_a_base_model_with_extra_characters_spells_them(tmp_path, task):
    tiny = dict(n_embd=16, n_layer=1, n_head=2, sft_steps=2, sft_examples=20)
    policy, task_cfg = PolicyConfig(cache_dir=str(tmp_path), **tiny), {"name": "arithmetic"}
    _, tok, meta = base_model(policy, task, task_cfg, extra_chars="Zq")
    assert meta["key"] == base_key(policy, task_cfg, "Zq") and len(tok) == len(char_tokenizer()) + 2
    ids, _ = encode(tok, ["Zq 2 is wrong."])
    assert decode(tok, ids, tok.eos_token_id) == ["Zq 2 is wrong."]


def test_extra_characters_follow_the_alphabet_in_a_fixed_order():
    default, extended = char_tokenizer().get_vocab(), char_tokenizer(ALPHABET + "zZz").get_vocab()
    assert {t: extended[t] for t in default} == default
    assert extended["Z"] == len(default) and extended["z"] == len(default) + 1
    assert char_tokenizer("Zz").get_vocab() == char_tokenizer("zZ").get_vocab() == extended
    tok = char_tokenizer(ALPHABET + "Zqz")
    ids, _ = encode(tok, ["Zq 2 is wrong."])
    assert decode(tok, ids, tok.eos_token_id) == ["Zq 2 is wrong."]


def test_text_outside_a_char_vocabulary_raises_naming_the_characters(tmp_path):
    tok = char_tokenizer()
    with pytest.raises(ValueError, match="'Zq'"):
        encode(tok, ["1+1=2.", "Zq 2 is wrong."])
    tok.save_pretrained(tmp_path)  # as a cached base model's tokenizer comes back
    with pytest.raises(ValueError, match="'Zq'"):
        encode(AutoTokenizer.from_pretrained(tmp_path), ["Zq 2 is wrong."])
    assert encode(tok, ["3+4=7, 7*2=4. Answer: 4.\n\n"])[0].ne(tok.pad_token_id).all()


# ---- the task's critique text ---------------------------------------------------------------
def test_critique_text_round_trips_and_anything_else_does_not_parse(task):
    for step, about in [(0, False), (5, False), (None, True), (None, False)]:
        assert task.parse_critique(task.critique_text(step, about)) == (step, about)
    checked = "3+4=7: 3+4=7 ok, 7*2=5: 7*2=4 no. Step 2 is wrong."
    assert render_critique(1, checks=["3+4=7", "7*2=5"]) == checked
    assert task.parse_critique(checked) == (1, False)
    for text in [
        "3+4=7: 3+4=7 fine. No error found.",
        "3+4=7 ok. No error found.",
        "Step 0 is wrong.",
        "Step 2 is wrong",
        "No error.",
        "",
        "step 2 is wrong.",
        "3+4=7. No error found.",
    ]:
        assert task.parse_critique(text) is None


def first_flaw(task: ArithmeticTask, response: str) -> tuple[int | None, bool]:
    """What is wrong with a response, read off its text alone: every step restates its operands."""
    steps = task.steps(response)
    for i, s in enumerate(steps):
        if OPS[s[1]](int(s[0]), int(s[2])) != int(s[-1]):
            return i, False
    return None, not task.answer_follows(response)


def test_the_critique_corpus_names_the_first_flaw(task):
    corpus = task.critique_corpus(3000, seed=0, max_steps=3, mistakes=0.5)
    kinds = {"step": 0, "answer": 0, "none": 0}
    for prompt, response, critique in corpus:
        assert task.parse_critique(critique) == first_flaw(task, response)
        assert prompt.count("=?") == 1 and 1 <= len(task.steps(response)) <= 3
        step, about = first_flaw(task, response)
        kinds["step" if step is not None else "answer" if about else "none"] += 1
    assert 0.45 < kinds["step"] / len(corpus) < 0.55 and kinds["answer"] and kinds["none"]
    with_checks = task.critique_corpus(300, seed=0, max_steps=3, mistakes=0.5, checks=True)
    for (_, response, critique), (_, _, bare) in zip(with_checks, corpus[:300], strict=True):
        step, _ = first_flaw(task, response)
        steps = task.steps(response)
        notes = []
        for s in steps if step is None else steps[: step + 1]:
            redone = f"{s[:3]}={OPS[s[1]](int(s[0]), int(s[2]))}"
            notes.append(f"{s}: {redone} {'ok' if redone == s else 'no'}")
        assert critique == ", ".join(notes) + ". " + bare
    read = task.critique_prompt(corpus[0][0], corpus[0][1])
    assert read.startswith(corpus[0][0]) and read.endswith("\n")
    with pytest.raises(ValueError):
        task.critique_corpus(10, seed=0, max_steps=0)


# ---- the simulated critic -------------------------------------------------------------------
def test_a_simulated_critic_flags_the_first_wrong_step_within_its_competence(task):
    critic = SimulatedCritic(name="critic", competence=3)
    critic.attach(task)
    rng = random.Random(0)
    problems = task.sample(300, seed=1)
    ks = [rng.randrange(p.difficulty) for p in problems]
    out = critic.critique(
        problems, [wrong_at(task, p, k, rng) for p, k in zip(problems, ks, strict=True)], rng
    )
    for o, k in zip(out, ks, strict=True):
        assert isinstance(o, Critique) and task.parse_critique(o.text) == (o.step, o.about_answer)
        assert o.step == (k if k < 3 else None)  # beyond its competence it finds nothing
    assert {k for k in ks if k < 3} == {0, 1, 2} and any(k >= 3 for k in ks)

    out = critic.critique(problems, [correct_response(task, p) for p in problems], rng)
    assert all(o.text == "No error found." for o in out)
    out = critic.critique(problems, [sycophantic_response(task, p) for p in problems], rng)
    for o, p in zip(out, problems, strict=True):
        assert (o.about_answer, o.step) == (p.difficulty <= 3, None)


def test_a_simulated_critic_counts_its_calls_and_checks(task):
    critic = SimulatedCritic(name="critic", competence=2)
    critic.attach(task)
    problems = task.sample(50, seed=2)
    critic.critique(problems, [correct_response(task, p) for p in problems], random.Random(0))
    spent = sum(min(2, p.difficulty) for p in problems)  # a right answer: its whole budget
    assert (critic.cost.calls, critic.cost.checks, critic.verifier.checks) == (50, spent, spent)
    assert critic.cost.as_dict()["checks_per_call"] == spent / 50
    with pytest.raises(ValueError, match="1 problems but 2"):
        critic.critique(problems[:1], ["a", "b"], random.Random(0))
    with pytest.raises(RuntimeError, match="attach"):
        SimulatedCritic(name="c").critique(problems[:1], ["a"], random.Random(0))


def test_a_simulated_critic_misses_and_false_alarms_at_its_rates(task):
    critic = SimulatedCritic(name="critic", miss_rate=0.3, false_alarm_rate=0.2, competence=4)
    critic.attach(task)
    rng = random.Random(3)
    problems = task.sample(2000, seed=3)
    wrong = [wrong_at(task, p, rng.randrange(min(4, p.difficulty)), rng) for p in problems]
    missed = sum(not o.found_error for o in critic.critique(problems, wrong, rng)) / len(problems)
    assert 0.25 < missed < 0.35  # 0.3 ± 5 standard errors

    out = critic.critique(problems, [correct_response(task, p) for p in problems], rng)
    alarms = [(o.step, p.difficulty) for o, p in zip(out, problems, strict=True) if o.found_error]
    assert 0.16 < len(alarms) / len(problems) < 0.24
    assert all(s is not None and s < min(4, d) for s, d in alarms)  # a step it checked
    assert {s for s, _ in alarms} == {0, 1, 2, 3}


def test_critic_settings_are_checked_where_they_are_declared():
    with pytest.raises(ConfigError, match="miss_rate=1.5: must be in"):
        SimulatedCritic(name="critic", miss_rate=1.5)
    with pytest.raises(ConfigError, match="n_embd=30: must be a multiple of"):
        LearnedCritic(name="critic", n_embd=30, n_head=4)


@pytest.mark.parametrize("cls", [Role, SimulatedCritic, LearnedCritic], ids=lambda c: c.__name__)
def test_every_role_field_has_a_docstring(cls):
    test_config.test_every_config_field_has_a_docstring(cls)


# ---- configured and built -------------------------------------------------------------------
def test_build_roles_builds_the_configured_critic(task):
    roles = build_roles(with_critic("simulated", "critic.competence=3"), task)
    assert isinstance(roles["critic"], SimulatedCritic) and roles["critic"].competence == 3
    assert roles["critic"].verifier.checks == 0 and roles["critic"].task is task
    assert build_roles(composed(), task) == {}  # no critic group: no role
    cfg = with_critic("simulated")
    cfg.critic = None
    assert build_roles(cfg, task) == {}
    learned = with_critic("learned", "critic.n_embd=16")
    assert learned.critic.cache_dir == learned.policy.cache_dir


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: setattr(c.critic, "miss_rate", 2.0), "cannot build critic: miss_rate=2.0"),
        (lambda c: setattr(c, "critic", {"competence": 2}), "critic: must name a kind"),
        (lambda c: setattr(c, "critic", "simulated"), "critic: must name a kind"),
        (
            lambda c: setattr(c, "critic", {"_target_": "oversight.judges.Oracle"}),
            "critic: oversight.judges.Oracle is not a Critic",
        ),
    ],
    ids=["out of range", "no kind", "a string", "not a critic"],
)
def test_a_bad_critic_config_is_one_clear_line(task, change, message):
    cfg = with_critic("simulated")
    with open_dict(cfg):
        change(cfg)
    with pytest.raises(ConfigError, match=message) as e:
        build_roles(cfg, task)
    assert "\n" not in str(e.value)


def test_a_task_without_critique_text_cannot_have_a_critic():
    class Mute:
        name = "mute"

    with pytest.raises(ConfigError, match="writes no critiques"):
        SimulatedCritic(name="critic").attach(Mute())  # type: ignore[arg-type]


# ---- the truth wall -------------------------------------------------------------------------
class PeekingCritic(Critic):
    """A critic that reads the answers instead of checking steps through its verifier."""

    def _critique(self, problems, responses, rng, focus):
        return [
            Critique(None, self.task.final_answer(r) != self.task.truth.get(p.id).answer, "")
            for p, r in zip(problems, responses, strict=True)
        ]


def test_a_role_reading_the_truth_outside_its_verifier_fails_at_run_time(task):
    critic = PeekingCritic(name="peeker")
    critic.attach(task)
    problems = task.sample(3, seed=0)
    with pytest.raises(GroundTruthAccessError):
        critic.critique(problems, [correct_response(task, p) for p in problems], random.Random(0))


# ---- the learned critic ---------------------------------------------------------------------
# Tiny and on a tiny corpus, so that a few seconds of SFT fit it: it shows the critic learns what
# it is trained on, not what it can check. A from-scratch critic of the default size takes
# thousands of steps to learn the arithmetic (LearnedCritic.sft_steps). 500 steps left it at the
# edge (final loss 0.022): on an AVX2-only CPU it named 0.69 of the wrong steps, where other
# machines gave 0.98; at 1000 steps it reaches a loss of 0.0004 and names every one.
TINY = dict(
    n_embd=32,
    n_head=4,
    n_layer=2,
    train_max_steps=2,
    examples=100,
    sft_steps=1000,
    lr=1e-2,
    checks=False,
    learn_answers=False,
)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    task = ArithmeticTask(ArithmeticConfig(min_steps=2, max_steps=6))
    cache = str(tmp_path_factory.mktemp("critic-cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a sweep job: a tiny model trains fastest on one thread
    try:
        critic = LearnedCritic(name="critic", cache_dir=cache, **TINY)
        critic.attach(task)
    finally:
        torch.set_num_threads(threads)
    return task, critic, cache


def test_a_learned_critic_spots_the_wrong_steps_of_what_it_was_trained_on(learned):
    task, critic, _ = learned
    assert critic.meta["cached"] is False
    seen = task.critique_corpus(
        critic.examples, critic.seed, critic.train_max_steps, critic.mistakes, critic.checks
    )
    flawed = [(p, r, task.parse_critique(c)[0]) for p, r, c in seen if c.startswith("Step")]
    problems = [PublicProblem(f"seen-{i}", p, 2, None) for i, (p, _, _) in enumerate(flawed)]
    out = critic.critique(problems, [r for _, r, _ in flawed], random.Random(0))
    named = [
        isinstance(o, Critique) and o.step == k for o, (_, _, k) in zip(out, flawed, strict=True)
    ]
    accuracy = sum(named) / len(named)
    print(f"learned critic: {accuracy:.3f} of {len(named)} wrong steps named ({critic.meta})")
    # one that could not tell the two steps apart would name the right one half the time
    assert accuracy > 0.75
    assert critic.cost.calls == len(problems) and critic.cost.checks == 0


def test_a_learned_critic_is_cached_under_its_config(learned):
    task, first, cache = learned
    again = LearnedCritic(name="critic", cache_dir=cache, **TINY)
    again.attach(task)
    assert again.meta["cached"] is True and again.meta["key"] == first.meta["key"]
    problems = task.sample(40, seed=6)
    responses = [correct_response(task, p) for p in problems]
    assert again.critique(problems, responses, random.Random(0)) == first.critique(
        problems, responses, random.Random(0)
    )
    other = LearnedCritic(name="critic", cache_dir=cache, **(TINY | {"sft_steps": 1}))
    other.attach(task)
    assert other.meta["cached"] is False and other.meta["key"] != first.meta["key"]


def test_a_learned_critic_fails_typed_on_what_it_cannot_read_or_parse(learned, monkeypatch):
    task, critic, _ = learned
    problems = task.sample(2, seed=7)
    out = critic.critique(problems, ["3+4=7. Answer: 7.", "3+4=7. Antwört: 7."], random.Random(0))
    assert out[0] != Failure("unreadable", "critic") and out[1] == Failure("unreadable", "critic")
    monkeypatch.setattr(critic, "_write", lambda prompts, rng: ["Step two is wrong."] * 2)
    out = critic.critique(problems, ["3+4=7. Answer: 7."] * 2, random.Random(0))
    assert out == [Failure("unparsable", "critic")] * 2


def test_a_learned_critics_vocabulary_covers_its_corpus(learned):
    task, critic, _ = learned
    vocab = set(critic.tok.get_vocab())
    corpus = task.critique_corpus(
        critic.examples, critic.seed, critic.train_max_steps, critic.mistakes, critic.checks
    )
    for prompt, response, critique in corpus:
        assert set(task.critique_prompt(prompt, response) + critique) <= vocab
    assert set(ALPHABET) <= vocab  # critiques are the task's text: its alphabet covers them
