"""The shared PPO core (docs/design.md, "The PPO core"). Every protocol's signal ends up here.

Checklist followed (Ziegler et al. 2019; Huang et al. 2024, "The N+ implementation details of
RLHF with PPO"): the protocol's score is paid at the final response token, plus a per-token KL
penalty to the frozen reference (base) model; EOS is distinct from PAD; prompts are left-padded;
the same temperature at rollout and in the loss; the value head starts at zero; advantages are
whitened over response tokens only; clipped policy and value losses; dropout off; a fixed or
adaptive KL controller; and the ratio is 1 on the first minibatch (tests check it).

The math is small pure functions in `oversight.engine.ppo_math`; `PPOTrainer` here only wires
them together. Its passes run on the packed fast path of `oversight.engine.fastlm` for Llama
models (the same results to float rounding; `tests/test_ppo_determinism.py`), else through the model's own forward; there, in
fp32, the sampler's own final hidden states give the old log-probabilities and values, so no pass
recomputes them; on CUDA in bf16 autocast with no host sync per token or minibatch statistic;
under a multi-process launcher, gradients are averaged over ranks (`oversight.engine.distributed`).
Speed: docs/performance.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from oversight.checks import Count, Fraction, Natural, NonNeg, Positive, Rules, rule
from oversight.engine import distributed, fastlm
from oversight.engine.ppo_math import (
    KLController,
    entropy_from_logits,
    explained_variance,
    gae,
    kl_penalized_rewards,
    logprobs_from_logits,
    masked_mean,
    masked_whiten,
    policy_loss,
    value_loss,
)
from oversight.engine.sampling import generate, position_ids, response_mask
from oversight.models.sft import sft_loss as supervised_loss


@dataclass
class PPOConfig:
    steps: Natural = 60
    """PPO iterations (one rollout batch each); 0: none, the run ends after the protocol's
    setup (its labels, its SFT phase) and the evaluation"""
    batch_size: Count = 64
    """responses sampled per iteration"""
    minibatch_size: Count = 16
    """responses per optimiser step"""
    epochs: Count = 4
    """optimisation passes over each rollout batch"""
    lr: Positive = 2e-5
    """small models with tied embeddings drift fast: 1e-4 lost accuracy even on the true reward"""
    clip_range: Positive = 0.2
    """policy ratio clipping"""
    clip_range_value: Positive = 0.2
    """value-prediction clipping around the rollout's values"""
    vf_coef: NonNeg = 0.1
    """weight of the value loss"""
    gamma: Fraction = 1.0
    """discount over response tokens"""
    lam: Fraction = 1.0
    """GAE's lambda. 1: every token's advantage is the whole return minus its value. The score
    comes only at EOS and the value head, starting at zero, explains ~2% of the return's variance
    in a demo run; with 0.95 the first token of a 40-token answer, where it chooses to open by
    agreeing, kept 0.95**40 = 13% of the score's credit, and PPO barely moved (README, "What the
    demo shows")"""
    kl_coef: NonNeg = 0.05
    """initial coefficient of the per-token KL penalty to the reference model"""
    adaptive_kl: bool = False
    """Ziegler et al.'s proportional controller towards `target_kl`"""
    target_kl: Positive = 6.0
    """KL (nats per response) the adaptive controller steers to"""
    kl_horizon: Count = 10000
    """the adaptive controller's horizon in samples"""
    whiten_rewards: bool = False
    """whiten the per-token rewards over the batch before GAE"""
    missing_eos_penalty: float | None = -1.0
    """score added to responses that hit max_new_tokens without EOS; None disables it"""
    max_grad_norm: Positive = 1.0
    """gradient clipping norm"""
    sft_coef: NonNeg = 1.0
    """weight of the supervised term next to the PPO loss, for steps whose protocol adds
    (prompt, target) pairs (distillation); other steps have none"""
    compile: bool = False
    """torch.compile the packed forward (fast path only): on 2 CPU cores ~20% off a training
    minibatch after a one-off compile of ~40 s (~7 s from inductor's on-disk cache); untested on
    a GPU, where fusing the small element-wise ops should matter more"""

    rules: ClassVar[Rules] = (
        # a ragged last minibatch would weigh its few responses as much as a full one
        rule(
            "minibatch_size",
            "must divide {batch_size}",
            lambda c: c.batch_size % c.minibatch_size == 0,
        ),
    )


def cpu_threads(hidden_size: int, path: str | None = None) -> int:
    """Intra-op threads for a run on a CPU when the config leaves them at 0 (auto).

    The demo's policy multiplies 64-wide matrices: too small for several threads to share, and
    when any other job has the cores, torch's default (one thread per core) stalls in the thread
    pool's barriers. Measured on a 2-core machine shared with other jobs: one thread ran the PPO
    step 5x faster than two. Larger or pretrained models keep torch's default.
    """
    return 1 if path is None and hidden_size < 512 else torch.get_num_threads()


# ---- model with a value head -------------------------------------------------------------------
class PolicyWithValue(nn.Module):
    """A causal LM and a scalar value head on its last hidden state: one forward gives both."""

    def __init__(self, lm: PreTrainedModel) -> None:
        super().__init__()
        self.lm = lm
        self.value_head = nn.Linear(lm.config.get_text_config().hidden_size, 1)
        nn.init.zeros_(self.value_head.weight)  # value starts at 0 (PPO checklist)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.lm(
            input_ids=ids,
            attention_mask=mask,
            position_ids=position_ids(mask),
            output_hidden_states=True,
        )
        return out.logits, self.value_head(out.hidden_states[-1]).squeeze(-1)


def response_logprobs(
    logits: torch.Tensor, ids: torch.Tensor, prompt_len: int, temperature: float
) -> torch.Tensor:
    """log pi(response token) at `temperature`, aligned with the response columns."""
    logits = logits[:, prompt_len - 1 : -1] / temperature
    return logprobs_from_logits(logits, ids[:, prompt_len:])


# ---- the trainer -------------------------------------------------------------------------------
@dataclass
class Rollout:
    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    responses: torch.Tensor
    mask: torch.Tensor
    """1 on response tokens up to and including EOS"""
    logprobs: torch.Tensor | None = None
    """[B, T] log pi(response token) and values of the sampling policy, from the sampler's own
    hidden states (0 after EOS); None: `step` computes them with a pass over the batch"""
    values: torch.Tensor | None = None

    @property
    def ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.responses], dim=1)

    def rows(self, keep: torch.Tensor) -> Rollout:
        """The rollout of the rows `keep` (indices or a bool mask)."""
        pick = lambda x: None if x is None else x[keep]  # noqa: E731
        return Rollout(
            self.prompt_ids[keep],
            self.prompt_mask[keep],
            self.responses[keep],
            self.mask[keep],
            pick(self.logprobs),
            pick(self.values),
        )

    @staticmethod
    def cat(parts: list[Rollout], pad_id: int) -> Rollout:
        """One rollout of several (turns of different prompt and response lengths): prompts
        left-padded to the longest, responses right-padded. The packed passes skip padding, so
        a mixed batch costs what its real tokens cost."""
        if len(parts) == 1:
            return parts[0]
        P = max(r.prompt_ids.shape[1] for r in parts)
        T = max(r.responses.shape[1] for r in parts)

        def pad(x: torch.Tensor, width: int, left: bool, value: float) -> torch.Tensor:
            n = width - x.shape[1]
            return torch.nn.functional.pad(x, (n, 0) if left else (0, n), value=value)

        def stack(xs: list[torch.Tensor], width: int, left: bool, value: float) -> torch.Tensor:
            return torch.cat([pad(x, width, left, value) for x in xs])

        lp, v = [r.logprobs for r in parts], [r.values for r in parts]
        known = all(x is not None for x in lp + v)  # else `step` recomputes them for all rows
        return Rollout(
            stack([r.prompt_ids for r in parts], P, True, pad_id),
            stack([r.prompt_mask for r in parts], P, True, 0),
            stack([r.responses for r in parts], T, False, pad_id),
            stack([r.mask for r in parts], T, False, 0),
            stack(lp, T, False, 0.0) if known else None,  # type: ignore[arg-type]
            stack(v, T, False, 0.0) if known else None,  # type: ignore[arg-type]
        )

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.mask], dim=1)


@dataclass
class _Tokens:
    """A batch's real tokens, packed, and its response tokens among them (the fast path)."""

    ids: torch.Tensor
    pk: fastlm.Packed
    want: fastlm.Queries
    """the tokens that predict response tokens (the last prompt token, then all but the last)"""
    target: torch.Tensor
    """[M] the response tokens"""
    out: torch.Tensor
    """[M] their place in the [B, T] response block"""
    B: int
    T: int

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """[M] per-response-token values -> [B, T], zero after each row's EOS."""
        return x.new_zeros(self.B * self.T).index_copy(0, self.out, x).view(self.B, self.T)


class PPOTrainer:
    rows_per_group = 4
    """rows per SDPA block on a CPU where the packed attention kernel does not apply (fewer: less
    padding, more kernel calls; measured)"""

    def __init__(
        self,
        policy: PolicyWithValue,
        ref: PreTrainedModel,
        cfg: PPOConfig,
        eos_id: int,
        pad_id: int,
        temperature: float,
        max_new_tokens: int,
        device: torch.device,
    ) -> None:
        self.policy, self.ref, self.cfg = policy, ref, cfg
        self.eos_id, self.pad_id = eos_id, pad_id
        self.temperature, self.max_new_tokens = temperature, max_new_tokens
        self.device = device
        self.hidden = fastlm.compiled_hidden() if cfg.compile else fastlm.hidden
        self.kl_ctl = KLController(
            cfg.kl_coef, cfg.target_kl if cfg.adaptive_kl else None, cfg.kl_horizon
        )
        # fused: one kernel per parameter for the whole update (CPU and CUDA), where foreach runs
        # ~12 element-wise ops per parameter on a CPU; it rounds differently from both, so runs
        # differ from a foreach run as a change of seed would
        self.opt = torch.optim.AdamW(
            policy.parameters(), lr=cfg.lr, eps=1e-5, weight_decay=0.0, fused=True
        )
        # bf16 autocast on CUDA; the same context at rollout and in the loss keeps ratio == 1.
        self.bf16 = device.type == "cuda"
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16)
        for p in ref.parameters():
            p.requires_grad_(False)
        ref.eval()

    @torch.no_grad()
    def rollout(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> Rollout:
        self.policy.eval()
        args = (
            prompt_ids,
            prompt_mask,
            self.max_new_tokens,
            self.temperature,
            self.eos_id,
            self.pad_id,
            generator,
        )
        lm = self.policy.lm
        # In fp32 the sampler's hidden states give PPO's old log-probabilities and values to
        # float rounding (ratio 1 +- 1e-6 on the first minibatch): no second pass. Under bf16
        # autocast the sampler's rounding differs more, so `step` recomputes them.
        if not fastlm.supports(lm) or self.bf16:
            with self.autocast:
                responses = generate(lm, *args)
            return Rollout(
                prompt_ids, prompt_mask, responses, response_mask(responses, self.eos_id)
            )
        s = fastlm.generate(lm, *args)
        mask = response_mask(s.tokens, self.eos_id)
        logprobs, values, _ = self._read_out(lm, s.hidden, s.tokens, self.policy.value_head)
        return Rollout(prompt_ids, prompt_mask, s.tokens, mask, logprobs * mask, values * mask)

    def _tokens(self, ids: torch.Tensor, m: np.ndarray, P: int) -> _Tokens:
        """Packed real tokens of prompt+response rows, and where each response token is.

        `m` is the rows' attention mask on the host: the plan is index arithmetic, done in numpy,
        so a minibatch costs no device-to-host sync.
        """
        # Attention groups of similar lengths pay off on a CPU; a GPU wants one big block.
        groups = 1 if self.device.type == "cuda" else max(1, ids.shape[0] // self.rows_per_group)
        dev = ids.device
        pk = fastlm.pack(m, groups, dev)
        B, S = m.shape
        T = S - P
        lens = m.sum(1)
        start = np.cumsum(lens) - lens  # each row's first token among the packed ones
        i, j = np.nonzero(m[:, P:])
        return _Tokens(
            ids=ids.flatten()[pk.flat],
            pk=pk,
            # the token before response token j predicts it: the last prompt token, then each
            # response token but the last
            want=fastlm.queries(pk, start[i] + m[:, :P].sum(1)[i] - 1 + j, j),
            target=ids.flatten()[torch.from_numpy(i * S + P + j).to(dev)],
            out=torch.from_numpy(i * T + j).to(dev),
            B=B,
            T=T,
        )

    def _fast_pass(
        self, model: PreTrainedModel, tk: _Tokens, value_head: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(log pi [B, T], values [B, T] or None, logits/temperature [M, V]) on response tokens.

        Positions after EOS hold 0 (the padded path leaves finite garbage there); every use masks
        them, so the results are the same.
        """
        h = self.hidden(model, tk.ids, tk.pk, tk.want)[0]
        lp, values, lg = self._read_out(model, h, tk.target, value_head)
        return tk.unpack(lp), None if values is None else tk.unpack(values), lg

    def _read_out(
        self,
        model: PreTrainedModel,
        h: torch.Tensor,
        target: torch.Tensor,
        value_head: nn.Module | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(log pi(target), values or None, logits/temperature) from final hidden states `h`.

        The one read-out of the sampler's states and of every pass: the first minibatch's ratio
        is 1 only while both compute it the same way.
        """
        lg = fastlm.logits(model, h) / self.temperature
        values = None if value_head is None else value_head(h).squeeze(-1).float()
        return logprobs_from_logits(lg, target), values, lg

    def step(
        self,
        rollout: Rollout,
        scores: torch.Tensor,
        generator: torch.Generator | None = None,
        sft: list[Any] | None = None,
    ) -> dict[str, float]:
        """One PPO iteration on a scored rollout. Returns the logged statistics.

        `sft`: supervised batches (`oversight.models.sft.sft_batch`) for a distillation term;
        each minibatch adds `sft_coef` times the loss of the next one, in turn.
        """
        cfg, P = self.cfg, rollout.prompt_ids.shape[1]
        ids, attn, mask = rollout.ids, rollout.attention_mask, rollout.mask.float()
        scores = scores.to(self.device).float()
        finished = (rollout.responses == self.eos_id).any(-1)
        if cfg.missing_eos_penalty is not None:
            scores = torch.where(finished, scores, scores + cfg.missing_eos_penalty)
        fast = fastlm.supports(self.policy.lm) and fastlm.supports(self.ref)

        with torch.no_grad(), self.autocast:
            if fast:
                m = attn.detach().cpu().numpy().astype(bool)  # the step's one host copy
                tk = self._tokens(ids, m, P)
                if rollout.logprobs is None or rollout.values is None:
                    old_logprobs, old_values, _ = self._fast_pass(
                        self.policy.lm, tk, self.policy.value_head
                    )
                else:
                    old_logprobs, old_values = rollout.logprobs, rollout.values
                ref_logprobs = self._fast_pass(self.ref, tk)[0]
            else:
                logits, values = self.policy(ids, attn)
                old_logprobs = response_logprobs(logits, ids, P, self.temperature)
                old_values = values[:, P - 1 : -1].float()
                ref_logits = self.ref(
                    input_ids=ids, attention_mask=attn, position_ids=position_ids(attn)
                ).logits
                ref_logprobs = response_logprobs(ref_logits, ids, P, self.temperature)
            if cfg.whiten_rewards:
                scores = (scores - scores.mean()) / (scores.std() + 1e-8)
            rewards, kl = kl_penalized_rewards(
                scores, old_logprobs, ref_logprobs, mask, self.kl_ctl.value
            )
            advantages, returns = gae(rewards, old_values, mask, cfg.gamma, cfg.lam)
            advantages = masked_whiten(advantages, mask)

        self.policy.train()
        B, n_mb = ids.shape[0], 0
        # Statistics stay on the device until the end: an .item() per minibatch would stall a GPU.
        acc = {
            k: torch.zeros((), dtype=torch.float64, device=self.device)
            for k in ("policy_loss", "value_loss", "clipfrac", "approx_kl", "entropy")
            + (("sft_loss",) if sft else ())
        }
        first_ratio = torch.full((), float("nan"))
        for _ in range(cfg.epochs):
            perm = torch.randperm(B, generator=generator)  # on the host, as the plan
            for start in range(0, B, cfg.minibatch_size):
                rows = perm[start : start + cfg.minibatch_size]
                mb = rows.to(self.device)
                with self.autocast:
                    if fast:
                        tk = self._tokens(ids[mb], m[rows.numpy()], P)
                        logprobs, values, logits = self._fast_pass(
                            self.policy.lm, tk, self.policy.value_head
                        )
                    else:
                        logits, values = self.policy(ids[mb], attn[mb])
                        logits = logits[:, P - 1 : -1] / self.temperature
                        logprobs = logprobs_from_logits(logits, ids[mb, P:])
                        values = values[:, P - 1 : -1].float()
                pg_loss, pg = policy_loss(
                    logprobs, old_logprobs[mb], advantages[mb], mask[mb], cfg.clip_range
                )
                vf_loss = value_loss(
                    values, old_values[mb], returns[mb], mask[mb], cfg.clip_range_value
                )
                loss = pg_loss + cfg.vf_coef * vf_loss
                if sft:
                    sft_loss = supervised_loss(self.policy.lm, sft[n_mb % len(sft)])
                    loss = loss + cfg.sft_coef * sft_loss
                    acc["sft_loss"] += sft_loss.detach().double()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if distributed.active():  # DDP's semantics: the mean gradient over ranks
                    distributed.average_gradients(self.policy.parameters())
                nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm, foreach=True)
                self.opt.step()
                with torch.no_grad():
                    if n_mb == 0:
                        first_ratio = pg["ratio"].detach()
                    ent = entropy_from_logits(logits)
                    if (
                        fast
                    ):  # logits of response tokens only: the mean over them is the masked mean
                        ent = ent.mean()
                    else:
                        ent = masked_mean(ent, mask[mb])
                    n_mb += 1
                    for k, v in (
                        ("policy_loss", pg_loss),
                        ("value_loss", vf_loss),
                        ("clipfrac", pg["clipfrac"]),
                        ("approx_kl", pg["approx_kl"]),
                        ("entropy", ent),
                    ):
                        acc[k] += v.detach().double()
        self.policy.eval()

        mean_kl = kl.sum(-1).mean()
        if distributed.active():  # every rank's KL controller must see the same KL
            mean_kl = distributed.mean(mean_kl)
        mean_kl = mean_kl.item()
        kl_coef = self.kl_ctl.value
        self.kl_ctl.update(mean_kl, B)
        stats = {k: v.item() / n_mb for k, v in acc.items()}
        stats |= {
            "kl": mean_kl,
            "kl_coef": kl_coef,
            "score": scores.mean().item(),
            "ratio_first_minibatch": first_ratio.item(),
            "explained_variance": explained_variance(old_values, returns, mask),
            "response_length": mask.sum(-1).mean().item(),
            "eos_rate": finished.float().mean().item(),
        }
        return stats
