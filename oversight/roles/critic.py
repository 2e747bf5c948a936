"""The critic: reads a worked answer and names its first flaw (a wrong step, or a stated answer
that does not follow from the work), or finds none.

A protocol consults it to help a judge check more than the judge could alone (AI-assisted
evaluation, Saunders et al. 2022). Its critiques are text in the task's format ("Step 2 is
wrong.", "The answer does not follow from the work.", "No error found."), parsed by the task
into a `Critique`, so any writer of that text (a simulated critic, a learned one, an LLM) is
consulted alike. Two kinds today:

- `SimulatedCritic` checks the steps in order through its own metered verifier, at most
  `competence` of them, and misses and hallucinates flaws at configured rates;
- `LearnedCritic` is a small transformer of its own, trained by SFT on critiques the task
  writes: what it can check is set by what it was trained on, its size and its budget. Its
  critiques open with a check of each step ("7*2=5: 7*2=4 no"), which the format allows any
  critic: a verdict read off the whole answer at once stays at chance for a model this small
  even when it knows the arithmetic (as a reward model's last-token readout does, see
  oversight/models/reward_model.py), while a check sits next to the step it is about.
"""

from __future__ import annotations

import dataclasses
import random
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, cast

import torch

from oversight.checks import Count, Fraction, Natural, NonNeg, Positive, Rules, rule
from oversight.engine.sampling import generate
from oversight.errors import ConfigError
from oversight.models.cached import Built, cached_model, model_key
from oversight.models.policy import PolicyConfig, build_model
from oversight.models.sft import sft
from oversight.models.tokenizer import char_alphabet, char_tokenizer, decode, encode, unknown_chars
from oversight.roles.base import Failure, Role
from oversight.tasks import PublicProblem, Task

CACHE_FORMAT = 1  # bump when the critique format or the way learned critics are built changes


class CritiqueTask(Task, Protocol):
    """What a critic needs of a task besides `Task`: its critique format, and a corpus in it."""

    def answer_follows(self, response: str) -> bool: ...

    def critique_prompt(self, prompt: str, response: str) -> str: ...

    def critique_text(self, step: int | None, about_answer: bool = False) -> str: ...

    def parse_critique(self, text: str) -> tuple[int | None, bool] | None: ...

    def critique_corpus(
        self,
        n: int,
        seed: int,
        max_steps: int | None = None,
        mistakes: float | None = None,
        checks: bool = False,
    ) -> list[tuple[str, str, str]]: ...


NEEDS = ("answer_follows", "critique_prompt", "critique_text", "parse_critique", "critique_corpus")


@dataclass(frozen=True)
class Critique:
    """What a critic says of one answer: at most one of a wrong step and an answer that does not
    follow (the first flaw it found), or neither."""

    step: int | None
    """the 0-based step it says is wrong; None: it names no step"""
    about_answer: bool
    """it says the stated answer does not follow from the work"""
    text: str
    """the critique as written"""

    @property
    def found_error(self) -> bool:
        return self.step is not None or self.about_answer


Outcome = Critique | Failure
Focus = Literal["all", "answer", "steps"]
FOCI: tuple[Focus, ...] = ("all", "answer", "steps")


@dataclass
class Critic(Role):
    """A critic of worked answers; kinds implement `_critique` for a batch."""

    def attach(self, task: Task, device: torch.device | str = "cpu") -> None:
        missing = [m for m in NEEDS if not callable(getattr(task, m, None))]
        if missing:
            raise ConfigError(f"task {task.name!r} writes no critiques: it lacks {missing}")
        super().attach(task, device)

    def critique(
        self,
        problems: list[PublicProblem],
        responses: list[str],
        rng: random.Random,
        focus: Focus = "all",
    ) -> list[Outcome]:
        """One critique (or typed failure) per response, in order. `focus` is what the critique
        is asked to look at (a constitution's principle asks for one): "answer", whether the
        stated answer follows from the work; "steps", which step is wrong; "all", both."""
        if len(problems) != len(responses):
            raise ValueError(f"{len(problems)} problems but {len(responses)} responses")
        if focus not in FOCI:
            raise ValueError(f"focus={focus!r}: must be one of {', '.join(FOCI)}")
        verifier = self._attached()
        t0, checks = time.perf_counter(), verifier.checks
        out = self._critique(problems, responses, rng, focus)
        self.cost.calls += len(out)
        self.cost.checks += verifier.checks - checks
        self.cost.seconds += time.perf_counter() - t0
        return out

    @abstractmethod
    def _critique(
        self, problems: list[PublicProblem], responses: list[str], rng: random.Random, focus: Focus
    ) -> list[Outcome]: ...

    def _format(self) -> CritiqueTask:
        """The task, which `attach` checked writes critiques."""
        return cast(CritiqueTask, self.task)

    def _written(self, step: int | None, about_answer: bool = False) -> Critique:
        return Critique(step, about_answer, self._format().critique_text(step, about_answer))


@dataclass
class SimulatedCritic(Critic):
    """Checks an answer's steps from the top, through its verifier, until one fails or its
    budget runs out, and writes its verdict alone. A failing last step whose stated answer is not
    what that step computes is reported as the answer not following from the work."""

    competence: Natural | None = None
    """steps of each answer it can check; None = all"""
    miss_rate: Fraction = 0.0
    """probability that it reports no error where its checks found one"""
    false_alarm_rate: Fraction = 0.0
    """probability that it reports a wrong step (one it checked, at random) where its checks
    found none"""

    def _critique(
        self, problems: list[PublicProblem], responses: list[str], rng: random.Random, focus: Focus
    ) -> list[Outcome]:
        return [self._one(p, r, rng, focus) for p, r in zip(problems, responses, strict=True)]

    def _one(
        self, problem: PublicProblem, response: str, rng: random.Random, focus: Focus = "all"
    ) -> Critique:
        task = self._format()
        if focus == "answer":  # the answer against the work as written: read, not checked
            if task.answer_follows(response) or rng.random() < self.miss_rate:
                return self._written(None)
            return self._written(None, about_answer=True)
        n = problem.difficulty
        budget = n if self.competence is None else min(self.competence, n)
        for i in range(budget):
            if self.verifier.check_step(problem, response, i):
                continue
            if rng.random() < self.miss_rate:
                return self._written(None)
            if focus == "all" and i == n - 1 and not task.answer_follows(response):
                return self._written(None, about_answer=True)
            return self._written(i)
        if budget and rng.random() < self.false_alarm_rate:
            return self._written(rng.randrange(budget))
        return self._written(None)


@dataclass
class LearnedCritic(Critic):
    """A small Llama-shaped transformer of its own (`oversight.models.policy.build_model`),
    trained from scratch on the task's critique corpus and cached under a key of everything that
    determines it. It writes a critique after the response and the task parses it."""

    n_layer: Count = 2
    """transformer blocks"""
    n_head: Count = 8
    """attention heads per block (8-wide heads at the default width)"""
    n_embd: Count = 64
    """hidden width"""
    n_positions: Count = 256
    """maximum length of what it reads and writes, in tokens (at most 244 for 6 steps)"""
    seed: int = 0
    """its initial weights, its corpus and the order of its SFT"""
    train_max_steps: Count | None = None
    """the hardest problems in its corpus; None: the task's hardest"""
    mistakes: Fraction | None = 0.5
    """fraction of its corpus's answers with one wrong step; None: the task corpus's own"""
    checks: bool = True
    """open each critique with a check of each step up to the first wrong one"""
    learn_answers: bool = True
    """also learn to write the answers it reads: their steps teach it the arithmetic its checks
    redo (at the defaults it then names every wrong step of held-out answers, 0.69 of them
    without)"""
    examples: Count = 20000
    """(answer, critique) pairs drawn from the task's critique corpus"""
    sft_steps: Count = 4000
    """optimiser steps of its SFT (at the default size its checks are at chance after 1000 on
    2-step problems, and right on all of them after 4000)"""
    batch_size: Count = 32
    """pairs per SFT step"""
    lr: Positive = 2e-3
    """peak learning rate of the SFT's one-cycle schedule"""
    temperature: NonNeg = 0.0
    """sampling temperature of its critiques; 0: greedy"""
    max_new_tokens: Count = 160
    """longest critique it writes (with 6 checks: 144 tokens, its EOS included)"""
    cache_dir: str | None = None
    """where learned roles are cached, keyed by their config; None: $OVERSIGHT_CACHE, else
    ~/.cache/oversight"""

    rules: ClassVar[Rules] = (
        rule("n_embd", "must be a multiple of {n_head}", lambda c: c.n_embd % c.n_head == 0),
    )
    UNKEYED: ClassVar[tuple[str, ...]] = ("name", "temperature", "max_new_tokens", "cache_dir")
    """settings that change how it is consulted, not the model"""

    def attach(self, task: Task, device: torch.device | str = "cpu") -> None:
        super().attach(task, device)
        task_cfg = getattr(task, "cfg", None)
        if not dataclasses.is_dataclass(task_cfg) or isinstance(task_cfg, type):
            raise ConfigError(f"task {task.name!r} has no config dataclass to key its critic by")
        spec = {
            "format": CACHE_FORMAT,
            "alphabet": char_alphabet(),
            "critic": {
                f.name: getattr(self, f.name)
                for f in dataclasses.fields(self)
                if f.init and f.name not in self.UNKEYED
            },
            "task": dataclasses.asdict(task_cfg),
        }
        self.model, self.tok, self.meta = cached_model(
            "critic", model_key(spec), lambda: self._train(device), self.cache_dir, device
        )
        self.device = torch.device(device)

    def _train(self, device: torch.device | str) -> Built:
        task = self._format()
        try:
            corpus = task.critique_corpus(
                self.examples, self.seed, self.train_max_steps, self.mistakes, self.checks
            )
        except ValueError as e:  # a corpus the task cannot draw is a setting that cannot work
            raise ConfigError(f"critic {self.name!r}: {e}") from None
        pairs = []
        for prompt, response, critique in corpus:
            read = task.critique_prompt(prompt, response)
            if self.learn_answers:  # the SFT's loss covers what follows the prompt
                pairs.append((prompt, read.removeprefix(prompt) + critique))
            else:
                pairs.append((read, critique))
        tok = char_tokenizer("".join(p + c for p, c in pairs))
        torch.manual_seed(self.seed)
        shape = PolicyConfig(
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            n_positions=self.n_positions,
        )
        model = build_model(shape, tok).to(device)
        t0 = time.perf_counter()
        losses = sft(
            model,
            tok,
            pairs,
            self.sft_steps,
            self.batch_size,
            self.lr,
            self.seed,
            device,
            desc="critic SFT",
        )
        tail = losses[-50:]
        return (
            model,
            tok,
            {"final_sft_loss": sum(tail) / len(tail), "sft_seconds": time.perf_counter() - t0},
        )

    def _critique(
        self, problems: list[PublicProblem], responses: list[str], rng: random.Random, focus: Focus
    ) -> list[Outcome]:
        # It was trained to critique everything at once: it reads the whole answer whatever the
        # focus, as a model asked about one flaw may still name another.
        task = self._format()
        prompts = [
            task.critique_prompt(p.prompt, r) for p, r in zip(problems, responses, strict=True)
        ]
        out: list[Outcome] = [Failure("unreadable", self.name)] * len(prompts)
        readable = [i for i, text in enumerate(prompts) if not unknown_chars(self.tok, [text])]
        written = self._write([prompts[i] for i in readable], rng)
        for i, text in zip(readable, written, strict=True):
            parsed = task.parse_critique(text)
            out[i] = Failure("unparsable", self.name) if parsed is None else Critique(*parsed, text)
        return out

    @torch.no_grad()
    def _write(self, prompts: list[str], rng: random.Random, batch_size: int = 256) -> list[str]:
        texts: list[str] = []
        tok, eos, pad = self.tok, self.tok.eos_token_id, self.tok.pad_token_id
        generator = torch.Generator(self.device).manual_seed(rng.getrandbits(63))
        for start in range(0, len(prompts), batch_size):
            ids, mask = encode(tok, prompts[start : start + batch_size], self.device)
            if self.temperature == 0:
                full = self.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    eos_token_id=eos,
                    pad_token_id=pad,
                )
                new = full[:, ids.shape[1] :]
            else:
                new = generate(
                    self.model,
                    ids,
                    mask,
                    self.max_new_tokens,
                    self.temperature,
                    eos,
                    pad,
                    generator,
                )
            texts += decode(tok, new, eos)
        return texts
