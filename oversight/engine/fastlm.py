"""A lean forward pass for Llama-shaped causal LMs over packed tokens, and KV-cache sampling on it.

Why: the PPO core's time goes into the policy's and the reference's forward and backward passes.
Through Hugging Face's padded forward, a third to a half of every matrix product of a rollout
batch runs on padding (left-padded prompts, right-padded responses), every layer of a PPO pass
computes outputs nobody reads, and every decoding step builds 4-D masks and cache objects.
Here:

- the linear layers see only real tokens, packed into one [N, d] matrix;
- attention reads the packed tokens in place on a CPU (`oversight.engine.kernels`); elsewhere
  it runs SDPA on rows sorted by length into groups, each row moved to the left of its group's
  [B_g, L_g] block, under the kernel's mask-free causal path;
- the last layer computes queries, attention and MLP only for the tokens whose output is read
  (in PPO, those that predict a response token), its keys and values for all;
- decoding writes one column of a preallocated cache per step, and drops finished rows on a CPU.

The arithmetic per token is the model's own (same weights, same operations, same precision), so
results agree with `model(...)` to floating-point rounding; `tests/test_ppo_determinism.py`
checks that against Hugging Face and checks that sampling draws the very same tokens.
The file is one job over 400 lines: the packing plan, the functional model and the sampler
share the packed layout, and they change together.

Only `LlamaForCausalLM` with default RoPE, SiLU and no biases takes this path (the demo's policy
and most Llama checkpoints); any other model runs through its own `forward`, unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx.experimental._config as fx_config
import torch.nn.functional as F
from torch import nn

from oversight.engine import kernels

_enabled = True


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the plain Hugging Face path instead (tests compare the two)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def supports(model: nn.Module) -> bool:
    """Whether `model` is a Llama this module reproduces exactly."""
    if not _enabled or type(model).__name__ != "LlamaForCausalLM":
        return False
    c = model.config
    rope = getattr(c, "rope_parameters", None) or {}
    return (
        c.hidden_act == "silu"
        and not c.attention_bias
        and not getattr(c, "mlp_bias", False)
        and getattr(c, "pretraining_tp", 1) == 1
        and rope.get("rope_type", "default") == "default"
        and not (c.attention_dropout and model.training)
        and model.lm_head.bias is None
        and getattr(model, "hf_quantizer", None) is None
    )


# ---- packing -----------------------------------------------------------------------------------
# Packing plans are index arithmetic on a [B, S] mask: done on the host in numpy (a few
# microseconds an operation instead of a dispatched kernel each), then copied to the device once.


@dataclass
class Packed:
    """Where the real (mask = 1) tokens of a padded [B, S] batch go.

    Token k (row-major over real tokens) is at `pos[k]` in its row, which is also its position id
    (padding skipped). For attention, rows are sorted by length into groups; group g is a
    left-aligned [B_g, L_g] block of one flat buffer, and token k sits at `dest[k]` in it.
    Tensors are on the batch's device; `host` keeps the numpy plan for `queries`.
    """

    flat: torch.Tensor
    """[N] indices of the real tokens in the flattened [B * S] batch"""
    pos: torch.Tensor
    dest: torch.Tensor
    blocks: list[tuple[int, int, int]]
    """(offset in the buffer, B_g, L_g) of each group"""
    starts: torch.Tensor
    """[B + 1] row r's tokens are packed tokens starts[r] .. starts[r+1] - 1"""
    host: dict[str, np.ndarray]
    B: int

    @property
    def size(self) -> int:
        off, b, length = self.blocks[-1]
        return off + b * length


def _dev(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device, non_blocking=True)


def _blocks(sizes: list[int], widths: list[int]) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    blocks, off = [], 0
    for b, w in zip(sizes, widths, strict=True):
        blocks.append((off, b, w))
        off += b * w
    return blocks, np.array([o for o, _, _ in blocks], dtype=np.int64)


def pack(
    mask: torch.Tensor | np.ndarray, groups: int = 1, device: torch.device | None = None
) -> Packed:
    """Packing of a [B, S] attention mask into `groups` attention blocks of similar lengths.

    Why groups: attention costs B * L^2 for a block as long as its longest row; with rows sorted
    into groups, short rows stop paying for long ones. A device mask is copied to the host once (a
    sync on a GPU); a host (numpy) mask plus `device` costs no sync.
    """
    if isinstance(mask, torch.Tensor):
        device = mask.device if device is None else device
        mask = mask.detach().cpu().numpy()
    m = mask.astype(bool)
    B, S = m.shape
    lens = m.sum(1)
    flat = np.flatnonzero(m)
    row = flat // S
    pos = (np.cumsum(m, 1) - 1).ravel()[flat]
    groups = max(1, min(groups, B))
    # one group keeps batch order (a decoding cache is indexed by batch row)
    order = np.argsort(lens, kind="stable") if groups > 1 else np.arange(B)
    sizes = [B // groups + (g < B % groups) for g in range(groups)]
    firsts = np.cumsum([0, *sizes[:-1]])
    rank = np.empty(B, dtype=np.int64)
    rank[order] = np.arange(B)
    group = np.searchsorted(np.cumsum(sizes), rank, side="right")
    slot = rank - firsts[group]
    widths = [int(lens[order[f : f + n]].max()) for f, n in zip(firsts, sizes, strict=True)]
    blocks, start = _blocks(sizes, widths)
    dest = (start[group] + slot * np.array(widths)[group])[row] + pos
    starts = np.concatenate(([0], np.cumsum(lens)))
    host = {"pos": pos, "row": row, "group": group, "slot": slot}
    dev = device or torch.device("cpu")
    return Packed(
        _dev(flat, dev), _dev(pos, dev), _dev(dest, dev), blocks, _dev(starts, dev), host, B
    )


# ---- the model, functionally -------------------------------------------------------------------
def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    if x.dtype == weight.dtype == torch.float32:  # one fused kernel, the same arithmetic
        return F.rms_norm(x, (x.shape[-1],), weight, eps)
    # As LlamaRMSNorm: normalise in fp32, cast back, then scale.
    return weight * F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def _rope(model: nn.Module, pos: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Per-token (cos, sin) [N, hd] for `_rotate`; sin is negated on its first half."""
    rot = model.model.rotary_emb
    freqs = pos[:, None].float() * rot.inv_freq.float()[None]
    scale = rot.attention_scaling
    cos, sin = freqs.cos() * scale, freqs.sin() * scale
    return torch.cat((cos, cos), dim=-1).to(dtype), torch.cat((-sin, sin), dim=-1).to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on [N, heads, hd] with per-token cos and half-negated sin [N, hd] from `_rope`.

    rotate_half(x) * sin = cat(-x2, x1) * sin = cat(x2, x1) * cat(-sin, sin), bit for bit (a
    negation is exact): one kernel fewer per call, forward and backward.
    """
    x1, x2 = x.chunk(2, dim=-1)  # a split, not slices: its backward is a cat, not zero-fills
    return x * cos[:, None] + torch.cat((x2, x1), dim=-1) * sin[:, None]


def _mlp(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    mlp = layer.mlp
    g, u = F.linear(h, torch.cat((mlp.gate_proj.weight, mlp.up_proj.weight))).chunk(2, -1)
    return F.linear(F.silu(g) * u, mlp.down_proj.weight)


def _dims(model: nn.Module) -> tuple[int, int, int, float]:
    c = model.config
    hd = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return c.num_attention_heads, c.num_key_value_heads, hd, c.rms_norm_eps


@dataclass
class Queries:
    """The packed tokens whose final hidden state is wanted, in per-group [B_g, Tq_g] blocks.

    The last layer computes queries, attention output and MLP for these tokens only (its keys
    and values still cover every token): nothing else of it reaches a logit or a value.
    """

    idx: torch.Tensor
    """[M] packed indices of the wanted tokens"""
    slot: torch.Tensor
    """[M] their places in the flat buffer of query blocks"""
    blocks: list[tuple[int, int, int]]
    """(offset, B_g, Tq_g) of each group's query block"""
    attend: list[torch.Tensor]
    """per group, [B_g, 1, Tq_g, L_g]: the keys each query sees (an empty slot sees key 0)"""
    starts: torch.Tensor
    """[B + 1] row r's queries are starts[r] .. starts[r+1] - 1"""
    pos: torch.Tensor
    """[M] each query's position in its row: it sees the keys up to there"""

    @property
    def size(self) -> int:
        off, b, t = self.blocks[-1]
        return off + b * t


def queries(pk: Packed, idx: np.ndarray, j: np.ndarray) -> Queries:
    """Queries for packed tokens `idx` (host indices, in row order), the `j`-th wanted one of its
    row each."""
    h = pk.host
    idx, j = np.asarray(idx, dtype=np.int64), np.asarray(j, dtype=np.int64)
    row = h["row"][idx]
    if np.any(np.diff(row) < 0):
        raise ValueError("queries must be given in row order")
    g = h["group"][row]
    tq = np.ones(len(pk.blocks), dtype=np.int64)
    np.maximum.at(tq, g, j + 1)
    blocks, start = _blocks([b for _, b, _ in pk.blocks], tq.tolist())
    slot = start[g] + h["slot"][row] * tq[g] + j
    upto = np.zeros(blocks[-1][0] + blocks[-1][1] * blocks[-1][2], dtype=np.int64)
    upto[slot] = h["pos"][idx]
    dev = pk.flat.device
    attend = [
        _dev(np.arange(length) <= upto[o : o + b * t].reshape(b, t, 1), dev)[:, None]
        for (o, b, t), (_, _, length) in zip(blocks, pk.blocks, strict=True)
    ]
    starts = np.concatenate(([0], np.cumsum(np.bincount(row, minlength=pk.B))))
    return Queries(
        _dev(idx, dev), _dev(slot, dev), blocks, attend, _dev(starts, dev), _dev(h["pos"][idx], dev)
    )


def _views(buf: torch.Tensor, blocks: list[tuple[int, int, int]]) -> list[torch.Tensor]:
    """[B_g, heads, L_g, hd] views of a flat [size, heads, hd] buffer, one per block."""
    parts = buf.split([b * t for _, b, t in blocks])  # split's backward is one cat
    return [
        p.view(b, t, *buf.shape[1:]).transpose(1, 2)
        for p, (_, b, t) in zip(parts, blocks, strict=True)
    ]


def _merge(outs: list[torch.Tensor], index: torch.Tensor) -> torch.Tensor:
    """Attention outputs [B_g, H, T_g, hd] back to one row per token at flat places `index`."""
    flat = [o.transpose(1, 2).reshape(-1, o.shape[1] * o.shape[3]) for o in outs]
    return (flat[0] if len(flat) == 1 else torch.cat(flat)).index_select(0, index)


def _scatter(x: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Packed rows [N, heads, hd] into a zeroed flat buffer [size, heads, hd] at `index`."""
    return x.new_zeros(size, *x.shape[1:]).index_copy(0, index, x)


def _attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pk: Packed,
    want: Queries | None,
    scale: float,
) -> torch.Tensor:
    """Causal attention of packed queries (every token, or those of `want`) on the packed keys
    and values of their rows: [M, H * hd], in query order."""
    H, Hkv, hd = q.shape[1], k.shape[1], q.shape[2]
    if kernels.usable(q):
        q_start, q_pos = (None, pk.pos) if want is None else (want.starts, want.pos)
        o = kernels.packed_attention(q, k, v, pk.starts, q_start, q_pos, scale)[0]
        return o.view(-1, H * hd)
    # SDPA on padded blocks. Left-aligned rows: every real query sees only real keys under a
    # causal mask, so the kernel's mask-free causal path applies; the tails are never gathered.
    kvs = _views(_scatter(torch.cat((k, v), dim=1), pk.dest, pk.size), pk.blocks)
    if want is None:
        qs, index, masks = _views(_scatter(q, pk.dest, pk.size), pk.blocks), pk.dest, None
    else:
        qs, index = _views(_scatter(q, want.slot, want.size), want.blocks), want.slot
        masks = want.attend
    outs = [
        F.scaled_dot_product_attention(
            qg,
            *kvg.split(Hkv, dim=1),
            attn_mask=None if masks is None else masks[g],
            is_causal=masks is None,
            scale=scale,
            enable_gqa=H != Hkv,
        )
        for g, (qg, kvg) in enumerate(zip(qs, kvs, strict=True))
    ]
    return _merge(outs, index)


def hidden(
    model: nn.Module,
    ids: torch.Tensor,
    pk: Packed,
    want: Queries | None = None,
    return_kv: bool = False,
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Final (normed) hidden states of the packed tokens `ids` ([N]): all [N, d], or [M, d] for
    the tokens of `want`.

    With `return_kv` (one group only), also each layer's rotated keys and values in the
    left-aligned [B, kv_heads, L, hd] block: a decoding cache's prefix.
    """
    H, Hkv, hd, eps = _dims(model)
    N = ids.shape[0]
    x = model.model.embed_tokens(ids)
    cos, sin = _rope(model, pk.pos, x.dtype)
    kvs = []
    n_layers = len(model.model.layers)
    for li, layer in enumerate(model.model.layers):
        a = layer.self_attn
        h = _rms_norm(x, layer.input_layernorm.weight, eps)
        last = want is not None and li == n_layers - 1
        if last:
            kv = F.linear(h, torch.cat((a.k_proj.weight, a.v_proj.weight))).view(N, 2 * Hkv, hd)
            k, v = kv.split(Hkv, dim=1)
            k = _rotate(k, cos, sin)
            q = F.linear(h.index_select(0, want.idx), a.q_proj.weight).view(-1, H, hd)
            q = _rotate(q, cos.index_select(0, want.idx), sin.index_select(0, want.idx))
        else:
            # One product instead of three: small models are bound by per-op overhead.
            w = torch.cat((a.q_proj.weight, a.k_proj.weight, a.v_proj.weight))
            qkv = F.linear(h, w).view(N, H + 2 * Hkv, hd)
            qk, v = qkv.split((H + Hkv, Hkv), dim=1)
            q, k = _rotate(qk, cos, sin).split((H, Hkv), dim=1)
        q, k, v = q.to(x.dtype), k.to(x.dtype), v.to(x.dtype)
        if return_kv:
            kvs.append(_views(_scatter(torch.cat((k, v), 1), pk.dest, pk.size), pk.blocks)[0])
        o = _attention(q, k, v, pk, want if last else None, a.scaling)
        if last:
            x = x.index_select(0, want.idx)
        x = x + F.linear(o, a.o_proj.weight)
        x = x + _mlp(layer, _rms_norm(x, layer.post_attention_layernorm.weight, eps))
    return _rms_norm(x, model.model.norm.weight, eps), [kv.split(Hkv, dim=1) for kv in kvs]


def compiled_hidden() -> Callable[..., tuple[torch.Tensor, list]]:
    """`hidden` under `torch.compile` with dynamic shapes, compiled once per grad mode.

    Attention blocks change size from batch to batch. By default dynamo gives sizes that happen
    to be equal one symbol ("duck sizing") and guards on that equality, so a later batch where
    they differ recompiles: about a minute on a CPU, in the middle of a run. Duck sizing is off
    while the compiled function runs (its config is read when dynamo traces).
    """
    compiled = torch.compile(hidden, dynamic=True)

    def run(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, list]:
        with fx_config.patch(use_duck_shape=False):
            return compiled(*args, **kwargs)

    return run


def logits(model: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return F.linear(h, model.lm_head.weight)


# ---- sampling ----------------------------------------------------------------------------------
def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row, exactly as `torch.multinomial(probs, 1, generator)` draws it.

    multinomial's one-sample path is argmax(probs / q) with q ~ Exp(1) drawn for the whole
    [B, V] block; doing it here skips multinomial's validity check, a host sync on a GPU.
    """
    q = torch.empty_like(probs).exponential_(1, generator=generator)
    return (probs / q).argmax(-1)


@dataclass
class Sampled:
    tokens: torch.Tensor
    """[B, T] sampled ids, PAD after each row's EOS"""
    hidden: torch.Tensor
    """[B, T, d] the final hidden state that predicted each token (0 once a row has left the
    cache): PPO's old log-probabilities and values, without a second pass over the batch"""


@torch.no_grad()
def generate(
    model: nn.Module,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator | None = None,
) -> Sampled:
    """`oversight.engine.sampling.generate` on the packed forward: the same draws, the same [B, T].

    The cache keeps prompts right-aligned (as the left-padded batch), so every decoding step
    writes one column for all rows; a finished row drops out of the cache on a CPU.
    """
    B, dev = prompt_ids.shape[0], prompt_ids.device
    H, Hkv, hd, eps = _dims(model)
    pk = pack(prompt_mask)
    L = pk.blocks[0][2]
    plen = prompt_mask.long().sum(-1)
    last = np.cumsum(prompt_mask.sum(-1).cpu().numpy()) - 1  # each row's last prompt token
    want = queries(pk, last, np.zeros_like(last))
    h, kvs = hidden(model, prompt_ids.flatten()[pk.flat], pk, want, return_kv=True)
    cap = L + max_new_tokens
    # prefill's left-aligned block -> right-aligned cache columns
    shift = (torch.arange(L, device=dev)[None] - (L - plen)[:, None]).clamp(min=0)
    cache = []
    for k, v in kvs:
        kv = torch.stack((k, v)).transpose(2, 3)  # [2, B, L, Hkv, hd]
        c = kv.new_zeros(2, B, cap, Hkv, hd)
        c[:, :, :L] = kv.gather(2, shift[None, :, :, None, None].expand_as(kv))
        cache.append(c)
    valid = torch.ones(B, cap, dtype=torch.bool, device=dev)
    valid[:, :L] = torch.arange(L, device=dev)[None] >= (L - plen)[:, None]
    weights = [_decode_weights(layer) for layer in model.model.layers]
    cos_t, sin_t = _rope(model, torch.arange(cap, device=dev), h.dtype)
    on_cpu = dev.type == "cpu"
    rows = torch.arange(B, device=dev)  # the batch rows still in the cache
    pos = plen.clone()  # each cached row's next position id
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    lg = logits(model, h)
    full = torch.zeros(B, lg.shape[-1], device=dev)
    full_h = h.new_zeros(B, h.shape[-1])
    tokens, states = [], []
    for t in range(max_new_tokens):
        probs = torch.softmax(lg.float() / temperature, dim=-1)
        if probs.shape[0] != B:  # rows dropped from the cache draw nothing that is kept
            probs = full.index_copy(0, rows, probs)
            h = full_h.index_copy(0, rows, h)
        tok = torch.where(done, pad_id, sample(probs, generator))
        tokens.append(tok)
        states.append(h)
        done = done | (tok == eos_id)
        if t + 1 == max_new_tokens:
            break
        if on_cpu:  # a host check costs nothing on a CPU; on a GPU it would stall every step
            n_live = int((~done).sum())
            if n_live == 0:
                break
            if n_live <= 3 * len(rows) // 4:  # drop finished rows: a CPU pays per row
                keep = (~done[rows]).nonzero().squeeze(-1)
                rows, pos, valid = rows[keep], pos[keep], valid[keep]
                cache = [c[:, keep] for c in cache]
        elif t % 16 == 15 and not bool((~done).any()):
            break
        h = _decode(
            model, weights, tok[rows], cos_t[pos], sin_t[pos], cache, valid, L + t, H, Hkv, hd, eps
        )
        lg = logits(model, h)
        pos = pos + 1
    out, hs = torch.stack(tokens, dim=1), torch.stack(states, dim=1)
    if not on_cpu:
        # A GPU may run a few steps past the last EOS; cut where the CPU loop would have stopped.
        n = out.shape[1]
        first_eos = torch.where(out == eos_id, torch.arange(n, device=dev), n - 1).amin(-1)
        out = out[:, : int(first_eos.max()) + 1]
        hs = hs[:, : out.shape[1]]
    return Sampled(out, hs)


def _decode_weights(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's fused q|k|v and gate|up matrices, built once per generation, not per token."""
    a, mlp = layer.self_attn, layer.mlp
    return (
        torch.cat((a.q_proj.weight, a.k_proj.weight, a.v_proj.weight)),
        torch.cat((mlp.gate_proj.weight, mlp.up_proj.weight)),
    )


def _decode(
    model: nn.Module,
    weights: list[tuple[torch.Tensor, torch.Tensor]],
    tok: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    cache: list[torch.Tensor],
    valid: torch.Tensor,
    col: int,
    H: int,
    Hkv: int,
    hd: int,
    eps: float,
) -> torch.Tensor:
    """Final hidden state of one new token per cached row; its keys go into cache column `col`."""
    A = tok.shape[0]
    x = model.model.embed_tokens(tok)
    attend = valid[:, None, None, : col + 1]
    for layer, (w_qkv, w_gu), c in zip(model.model.layers, weights, cache, strict=True):
        a = layer.self_attn
        h = _rms_norm(x, layer.input_layernorm.weight, eps)
        qk, v = F.linear(h, w_qkv).view(A, H + 2 * Hkv, hd).split((H + Hkv, Hkv), dim=1)
        qk = _rotate(qk, cos, sin).to(c.dtype)
        c[0, :, col] = qk[:, H:]
        c[1, :, col] = v
        o = F.scaled_dot_product_attention(
            qk[:, None, :H].transpose(1, 2),
            c[0, :, : col + 1].transpose(1, 2),
            c[1, :, : col + 1].transpose(1, 2),
            attn_mask=attend,
            scale=a.scaling,
            enable_gqa=H != Hkv,
        )
        x = x + F.linear(o.reshape(A, H * hd), a.o_proj.weight)
        g, u = F.linear(_rms_norm(x, layer.post_attention_layernorm.weight, eps), w_gu).chunk(2, -1)
        x = x + F.linear(F.silu(g) * u, layer.mlp.down_proj.weight)
    return _rms_norm(x, model.model.norm.weight, eps)
