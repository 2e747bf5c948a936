"""Plain RLHF, the baseline (Christiano et al. 2017; Stiennon et al. 2020; Ouyang et al. 2022).

1. Sample two answers per prompt from the base policy and ask the judge which is better.
2. Fit a Bradley-Terry reward model on those preferences.
3. PPO maximises the (frozen) reward model's score. Optionally, every `refresh_every` PPO steps,
   label pairs of current-policy answers and keep training the reward model on them.

The reward model only ever learns what the judge preferred. Where the judge cannot check an
answer and falls back on agreeing with the user, so does the reward model, and so the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from oversight.checks import Count, Natural, ensure
from oversight.judges import Comparison, Verdict
from oversight.models.reward_model import RewardModel, RewardModelConfig, train_reward_model
from oversight.tasks import PublicProblem
from protocols.base import JudgmentRecord, Protocol, ProtocolContext, Signal


@dataclass
class RLHF(Protocol):
    n_comparisons: Count = 2048
    """labelled pairs of base-policy answers, before RL"""
    refresh_every: Natural = 0
    """>0: every this many PPO steps, label pairs of current-policy answers and refit"""
    refresh_comparisons: Count = 256
    """pairs labelled at each refresh"""
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    """the Bradley-Terry reward model trained on the judge's preferences"""

    name = "rlhf"

    def __post_init__(self) -> None:
        if isinstance(self.reward_model, dict):  # from Hydra's instantiate
            self.reward_model = RewardModelConfig(**self.reward_model)
        ensure(self)
        self.rm_cfg = self.reward_model
        self.stats: dict[str, float] = {}

    def _pairs(self, n: int) -> list[Comparison]:
        """Two current-policy answers to each of n fresh problems."""
        problems = self.ctx.sample_problems(n)
        prompts = [p.prompt for p in problems]
        a, b = self.ctx.generate(prompts), self.ctx.generate(prompts)
        return [Comparison(p, x, y) for p, x, y in zip(problems, a, b, strict=True)]

    def _collect(self, n: int, phase: str) -> list[JudgmentRecord]:
        return self.judge_pairs(self._pairs(n), phase)

    def _fit(self, records: list[JudgmentRecord]) -> None:
        decided = [(r.item, r.outcome) for r in records if isinstance(r.outcome, Verdict)]
        c = [x for x, _ in decided]
        p_a = [v.prob_a if self.rm_cfg.soft_labels else float(v.prefers_a) for _, v in decided]
        prompts, a, b = [x.problem.prompt for x in c], [x.a for x in c], [x.b for x in c]
        self.stats = train_reward_model(self.rm, prompts, a, b, p_a, self.rm_cfg, self.ctx.seed)
        # Normalise to the labelled answers, so the score's scale is comparable to the KL
        # penalty whatever the judge (Ziegler et al. 2019 normalise the same way).
        scores = self.rm.score(prompts + prompts, a + b)
        self.shift, self.scale = scores.mean().item(), scores.std().item() + 1e-6

    def setup(self, ctx: ProtocolContext) -> list[JudgmentRecord]:
        super().setup(ctx)
        self.rm = RewardModel(ctx.base_model, ctx.tokenizer, self.rm_cfg.readout).to(ctx.device)
        self.records = self._collect(self.n_comparisons, "labels")
        self._fit(self.records)
        return self.records

    def proxy_reward(self, problems: list[PublicProblem], responses: list[str]) -> torch.Tensor:
        return (self.rm.score([p.prompt for p in problems], responses) - self.shift) / self.scale

    def signal(self, problems: list[PublicProblem], responses: list[str], step: int) -> Signal:
        new: list[JudgmentRecord] = []
        if self.refresh_every and step > 0 and step % self.refresh_every == 0:
            new = self._collect(self.refresh_comparisons, "refresh")
            self.records += new
            self._fit(self.records)
        return Signal(self.proxy_reward(problems, responses), new, info=dict(self.stats))
