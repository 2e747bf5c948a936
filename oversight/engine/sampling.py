"""Sampling a causal LM on left-padded prompts, and the masks that go with it.

Llama models take the packed fast path of `oversight.engine.fastlm` (the same draws); any other
causal LM samples through its own `forward` with a KV cache.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from oversight.engine import fastlm


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, so a padded prompt is seen exactly like an unpadded one."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


# ---- sampling ----------------------------------------------------------------------------------
@torch.no_grad()
def generate(
    model: PreTrainedModel,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample responses with a KV cache. Returns [B, T] ids; after a row's EOS, PAD follows.

    T is the step at which every row has finished (at most `max_new_tokens`). Llama models take
    the packed fast path of `oversight.engine.fastlm` (the same draws); others their own `forward`.
    """
    if fastlm.supports(model):
        return fastlm.generate(
            model, prompt_ids, prompt_mask, max_new_tokens, temperature, eos_id, pad_id, generator
        ).tokens
    B = prompt_ids.shape[0]
    mask = prompt_mask
    pos = position_ids(mask)
    out = model(input_ids=prompt_ids, attention_mask=mask, position_ids=pos, use_cache=True)
    cache, logits = out.cache, out.logits[:, -1]
    next_pos = pos[:, -1:] + 1
    done = torch.zeros(B, dtype=torch.bool, device=prompt_ids.device)
    tokens = []
    for _ in range(max_new_tokens):
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        tok = fastlm.sample(probs, generator)  # = torch.multinomial(probs, 1), without its sync
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        tokens.append(tok)
        mask = torch.cat([mask, (~done).long()[:, None]], dim=1)  # PAD after EOS is not attended
        done = done | (tok == eos_id)
        if bool(done.all()):
            break
        out = model(
            input_ids=tok[:, None],
            attention_mask=mask,
            position_ids=next_pos,
            cache=cache,
            use_cache=True,
        )
        cache, logits = out.cache, out.logits[:, -1]
        next_pos = next_pos + 1
    return torch.stack(tokens, dim=1)


def response_mask(responses: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 for every response token up to and including the first EOS."""
    is_eos = (responses == eos_id).long()
    after_eos = (is_eos.cumsum(-1) - is_eos) > 0
    return (~after_eos).long()
