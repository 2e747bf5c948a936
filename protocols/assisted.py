"""AI-assisted evaluation (Saunders et al. 2022; McAleese et al. 2024): RLHF whose judge reads a
critic's critique of each answer.

For every pair the judge compares, the critic writes a critique of each answer ("Step 2 is
wrong.", "The answer does not follow from the work.", "No error found."). The judge spends its
checks first on the steps the critiques point at, then falls back on its own reading order and
biases (`oversight/judges/simulated.py`); a human judge sees the critiques beside the answers.
Labels -> reward model -> PPO, exactly as RLHF.

A critic more competent than the judge lets a judge of two checks catch a flaw at step 6; a
critic that hallucinates flaws (`false_alarm_rate`) sends those checks to steps that are right,
and misleads a judge that takes its word (`judge.trust_critiques`).
"""

from __future__ import annotations

from dataclasses import dataclass

from oversight.judges import Comparison
from oversight.roles import Critic, Critique
from protocols.base import JudgmentRecord
from protocols.rlhf import RLHF


@dataclass
class Assisted(RLHF):
    name = "assisted"

    def judge_pairs(self, comparisons: list[Comparison], phase: str) -> list[JudgmentRecord]:
        critic: Critic = self.ctx.role("critic", self.name)
        problems = [c.problem for c in comparisons]
        said_a = critic.critique(problems, [c.a for c in comparisons], self.ctx.rng)
        said_b = critic.critique(problems, [c.b for c in comparisons], self.ctx.rng)
        shown = [
            Comparison(c.problem, c.a, c.b, _text(x), _text(y))
            for c, x, y in zip(comparisons, said_a, said_b, strict=True)
        ]
        return super().judge_pairs(shown, phase)


def _text(outcome: object) -> str | None:
    """What the judge is shown of a critique; nothing where the critic failed."""
    return outcome.text if isinstance(outcome, Critique) else None
