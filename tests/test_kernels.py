"""The packed attention kernel computes what SDPA computes, forward and backward.

Rows of different lengths packed back to back, queries for all tokens or for a subset per row
(as PPO's last layer asks), grouped-query heads, every supported head width.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from oversight.engine import kernels


def test_the_kernel_builds_on_this_machine():
    # CI runs here: a silent fall-back to SDPA would hide a broken build behind passing tests
    assert kernels.available()


def reference(q, k, v, lens, q_rows, q_pos, scale):
    """Per query: SDPA over its row's keys up to its position (the definition)."""
    starts = np.concatenate(([0], np.cumsum(lens)))
    group = q.shape[1] // k.shape[1]
    out = []
    for i, (r, p) in enumerate(zip(q_rows, q_pos, strict=True)):
        keys = slice(starts[r], starts[r] + p + 1)
        kr, vr = (x[keys].repeat_interleave(group, 1).transpose(0, 1) for x in (k, v))
        out.append(F.scaled_dot_product_attention(q[i][:, None], kr, vr, scale=scale)[:, 0])
    return torch.stack(out)


@pytest.mark.parametrize(
    ("heads", "kv_heads", "hd", "subset"),
    [(8, 8, 8, False), (8, 8, 8, True), (4, 2, 16, False), (2, 1, 32, True), (2, 2, 64, False)],
)
def test_packed_attention_matches_sdpa(heads, kv_heads, hd, subset):
    rng = np.random.default_rng(hd + heads)
    lens = rng.integers(1, 40, size=5)
    lens[2] = 9  # not a multiple of the kernel's vector width, nor its padded length
    N = int(lens.sum())
    rows = np.repeat(np.arange(len(lens)), lens)
    pos = np.concatenate([np.arange(n) for n in lens])
    if subset:  # each row's last few tokens, one row with none
        keep = (pos >= lens[rows] - 3) & (rows != 1)
        q_rows, q_pos = rows[keep], pos[keep]
    else:
        q_rows, q_pos = rows, pos
    torch.manual_seed(0)
    # strided views of one projection, as the packed forward passes them (a subset's queries
    # come from a projection of their own)
    qkv = torch.randn(N, heads + 2 * kv_heads, hd, requires_grad=True)
    q_leaf = torch.randn(len(q_rows), heads, hd, requires_grad=True) if subset else None
    q = q_leaf if subset else qkv[:, :heads]
    k, v = qkv[:, heads:].split(kv_heads, dim=1)
    assert not k.is_contiguous() and not v.is_contiguous()
    starts = torch.tensor(np.concatenate(([0], np.cumsum(lens))))
    q_start = torch.tensor(np.concatenate(([0], np.cumsum(np.bincount(q_rows, minlength=5)))))
    if not subset:
        q_start = None  # the same tokens: the packed forward's call
    scale = hd**-0.5
    out = kernels.packed_attention(q, k, v, starts, q_start, torch.tensor(q_pos), scale)[0]
    want = reference(q, k, v, lens, q_rows, q_pos, scale)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    leaves = (qkv, q_leaf) if subset else (qkv,)
    got = torch.autograd.grad(out, leaves, grad)
    expected = torch.autograd.grad(want, leaves, grad)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def test_other_inputs_are_left_to_sdpa():
    assert not kernels.usable(torch.zeros(4, 2, 12))  # a head width without a kernel
    assert not kernels.usable(torch.zeros(4, 2, 8, dtype=torch.bfloat16))
    with pytest.raises(RuntimeError, match="not supported"):
        x = torch.zeros(3, 1, 12)
        starts = torch.tensor([0, 3])
        kernels.packed_attention(x, x, x, starts, starts, torch.arange(3), 1.0)
