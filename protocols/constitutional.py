"""Constitutional AI (Bai et al. 2022): written principles in place of direct preference labels.

1. SL-CAI. Sample answers from the base policy. For each, draw a principle from the
   constitution, ask the critic for a critique under it and, when it names a flaw, ask the
   policy to revise the answer given the critique; repeat for `passes` passes, drawing the
   principle anew each time. Fine-tune the policy on the final answers: the tuned policy is
   where RL starts.
2. RL-CAI (RLAIF). The feedback model compares pairs of the tuned policy's answers under a drawn
   principle and gives a soft label (clamped towards 1/2 by `clamp`, as Bai et al. clamp to
   40-60%); a preference model trained on those labels pays PPO, as in RLHF.

The feedback model here is the critic asked about both answers: the answer whose critique names
a flaw the other's does not loses, with confidence `sharpness`. What the constitution buys is
where the critic looks: "do not adopt the user's answer unless your work supports it" asks
whether the stated answer follows from the work, which reading alone settles at any length,
where a judge's few checks of steps never reach the conclusion of a long answer.
Either phase is switched off by config: `passes=0` (no SL-CAI), `rl=false` with `ppo.steps=0`
(no RL-CAI). `ai_fraction` < 1 sends the rest of the pairs to the judge, as Bai et al. mix
human helpfulness labels with AI harmlessness labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Annotated, Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from oversight.checks import Count, Fraction, Natural, Positive, within
from oversight.errors import ConfigError
from oversight.judges import Comparison, Verdict
from oversight.roles import Critic, Critique
from oversight.roles.critic import FOCI, Focus
from oversight.tasks import PublicProblem
from protocols.base import Batch, JudgmentRecord, ProtocolContext, SFTPhase
from protocols.rlhf import RLHF


@dataclass(frozen=True)
class Principle:
    name: str
    text: str
    critique_request: str
    revision_request: str
    focus: Focus = "all"


def load_constitution(node: Any) -> list[Principle]:
    """The principles of a constitution node ({"principles": [...]}, conf/protocol/constitution/),
    or a one-line ConfigError naming what is wrong."""
    where = "protocol.constitution"
    if isinstance(node, DictConfig | ListConfig):
        node = OmegaConf.to_container(node, resolve=True)
    principles = node.get("principles") if isinstance(node, Mapping) else None
    if not isinstance(principles, list | tuple) or not principles:
        raise ConfigError(f"{where}: must have a non-empty list of principles")
    names = {f.name for f in fields(Principle)}
    required = {f.name for f in fields(Principle) if f.name != "focus"}
    out = []
    for i, p in enumerate(principles):
        at = f"{where}.principles[{i}]"
        if not isinstance(p, Mapping):
            raise ConfigError(f"{at}: must be a mapping with keys {sorted(required)}, got {p!r}")
        if missing := required - set(p):
            raise ConfigError(f"{at}: missing {sorted(missing)}")
        if unknown := set(p) - names:
            raise ConfigError(f"{at}: unknown keys {sorted(unknown)} (allowed: {sorted(names)})")
        if bad := [k for k in required if not isinstance(p[k], str) or not p[k].strip()]:
            raise ConfigError(f"{at}: {sorted(bad)} must be non-empty text")
        if p.get("focus", "all") not in FOCI:
            raise ConfigError(f"{at}.focus={p['focus']!r}: must be one of {', '.join(FOCI)}")
        out.append(Principle(**{k: p[k] for k in p}))
    if len({p.name for p in out}) != len(out):
        raise ConfigError(f"{where}: principle names must be distinct")
    return out


def feedback_prob(flaw_a: bool, flaw_b: bool, sharpness: float, clamp: float | None) -> float:
    """The feedback model's probability that `a` is the better answer: the one whose critique
    found no flaw wins by `sharpness` in logits; `clamp` keeps it within 1/2 ± clamp."""
    p = 1.0 / (1.0 + math.exp(-sharpness * (flaw_b - flaw_a)))
    return p if clamp is None else min(max(p, 0.5 - clamp), 0.5 + clamp)


@dataclass
class Constitutional(RLHF):
    constitution: Any = None
    """{"principles": [...]}: the principles (conf/protocol/constitution/default.yaml)"""
    passes: Natural = 2
    """SL-CAI: critique -> revise passes per answer (Bai et al.: up to 4); 0: no SL phase"""
    sl_samples: Count = 2048
    """SL-CAI: answers sampled, critiqued and revised, then fine-tuned on"""
    sl: SFTPhase = field(default_factory=SFTPhase)
    """SL-CAI: the fine-tuning on the final revisions"""
    rl: bool = True
    """RL-CAI: train the preference model PPO maximises (false: SL-CAI alone, with ppo.steps=0)"""
    ai_fraction: Fraction = 1.0
    """RL-CAI: fraction of the `n_comparisons` pairs the feedback model labels; the judge labels
    the rest"""
    sharpness: Positive = 4.0
    """RL-CAI: the feedback model's logit for the answer whose critique found no flaw"""
    clamp: Annotated[float, within(0, 0.5)] | None = None
    """RL-CAI: keep the feedback model's probabilities within 1/2 ± clamp (0.1: 0.4-0.6)"""

    name = "constitutional"

    def __post_init__(self) -> None:
        if isinstance(self.sl, Mapping):  # from Hydra's instantiate
            self.sl = SFTPhase(**self.sl)
        super().__post_init__()
        self.principles = load_constitution(self.constitution)
        self.revisions: dict[str, float] = {}

    # ---- the critic under a principle --------------------------------------------------------
    def _critiques(
        self, problems: list[PublicProblem], answers: list[str], principles: list[Principle]
    ) -> list[Critique | None]:
        """The critic's critique of each answer under its principle (None: it failed)."""
        critic: Critic = self.ctx.role("critic", self.name)
        out: list[Critique | None] = [None] * len(answers)
        for focus in dict.fromkeys(p.focus for p in principles):
            idx = [i for i, p in enumerate(principles) if p.focus == focus]
            said = critic.critique(
                [problems[i] for i in idx], [answers[i] for i in idx], self.ctx.rng, focus
            )
            for i, c in zip(idx, said, strict=True):
                out[i] = c if isinstance(c, Critique) else None
        return out

    def _draw(self, n: int) -> list[Principle]:
        return [self.ctx.rng.choice(self.principles) for _ in range(n)]

    # ---- SL-CAI ------------------------------------------------------------------------------
    def revise(
        self, problems: list[PublicProblem], answers: list[str], passes: int
    ) -> tuple[list[str], list[int]]:
        """Each answer after `passes` critique -> revise passes, and how many revisions it got."""
        text = self.ctx.text
        assert text is not None, "a protocol context carries the task's public text"
        answers, revised = list(answers), [0] * len(answers)
        for _ in range(passes):
            critiques = self._critiques(problems, answers, self._draw(len(answers)))
            flagged = [(i, c) for i, c in enumerate(critiques) if c is not None and c.found_error]
            if not flagged:
                break
            prompts = [
                text.revision_prompt(problems[i].prompt, answers[i], c.text) for i, c in flagged
            ]
            for (i, _), new in zip(flagged, self.ctx.generate(prompts), strict=True):
                answers[i] = new
                revised[i] += 1
        return answers, revised

    def _supervised(self) -> None:
        problems = self.ctx.sample_problems(self.sl_samples)
        first = self.ctx.generate([p.prompt for p in problems])
        final, revised = self.revise(problems, first, self.passes)
        losses = self.ctx.sft(
            [(p.prompt, a) for p, a in zip(problems, final, strict=True)], self.sl
        )
        n = len(problems)
        self.revisions = {
            "sl/revised": sum(r > 0 for r in revised) / n,
            "sl/revisions_per_answer": sum(revised) / n,
            "sl/changed": sum(a != b for a, b in zip(first, final, strict=True)) / n,
            "sl/final_loss": losses[-1],
        }

    # ---- RL-CAI ------------------------------------------------------------------------------
    def _collect(self, n: int, phase: str) -> list[JudgmentRecord]:
        n_ai = round(n * self.ai_fraction)
        records = super()._collect(n - n_ai, phase) if n_ai < n else []
        if not n_ai:
            return records
        pairs = self._pairs(n_ai)
        problems = [c.problem for c in pairs]
        principles = self._draw(n_ai)
        crit_a = self._critiques(problems, [c.a for c in pairs], principles)
        crit_b = self._critiques(problems, [c.b for c in pairs], principles)
        for i, c in enumerate(pairs):
            ca, cb = crit_a[i], crit_b[i]
            item = Comparison(c.problem, c.a, c.b, ca.text if ca else None, cb.text if cb else None)
            flaw_a, flaw_b = bool(ca and ca.found_error), bool(cb and cb.found_error)
            prob = feedback_prob(flaw_a, flaw_b, self.sharpness, self.clamp)
            hard = self.ctx.rng.random() < prob
            verdict = Verdict(prob, hard, f"feedback:{principles[i].name}")
            records.append(JudgmentRecord(item, verdict, f"ai_{phase}"))
        return records

    def setup(self, ctx: ProtocolContext) -> list[JudgmentRecord]:
        self.ctx = ctx
        ctx.role("critic", self.name)  # before any work: a run without one stops at once
        if self.passes:
            self._supervised()
        if not self.rl:
            return []
        return super().setup(ctx)

    def episodes(self, problems: list[PublicProblem], step: int) -> Batch:
        if not self.rl:
            raise ConfigError(
                "protocol.rl=false trains no preference model to pay PPO: set ppo.steps=0"
            )
        batch = super().episodes(problems, step)
        batch.info |= self.revisions
        return batch

    def proxy_reward(self, problems: list[PublicProblem], responses: list[str]) -> Any:
        return super().proxy_reward(problems, responses) if self.rl else None
