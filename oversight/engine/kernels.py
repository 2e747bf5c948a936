"""Causal attention over packed rows on a CPU: a small C++ kernel (`csrc/attention.cpp`).

Why: on a CPU, the packed forward spent a third of a PPO step in ATen's flash-attention kernel,
which is tuned for wide heads and spends most of its time on bookkeeping at the demo's 8-wide
heads; it also needs rows scattered into padded blocks and gathered back. This kernel reads the
packed tokens in place and computes the same softmax(q k^T / sqrt(d)) v, with its own backward,
to float rounding (`tests/test_kernels.py` checks both against SDPA).

It is built on first use with the machine's C++ compiler (about a minute, then cached under
`~/.cache/oversight/kernels`, or `$OVERSIGHT_CACHE/kernels`), for this machine's CPU. Where it
cannot be built, `available()` is False and the packed forward uses SDPA.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import platform
from pathlib import Path
from typing import Any

import torch

from oversight.cache import cache_root

log = logging.getLogger(__name__)
SOURCE = Path(__file__).parent / "csrc" / "attention.cpp"
# -ffast-math at compile time only: it vectorises exp (glibc's libmvec) and the key-sum
# reductions; linking with it would set flush-to-zero for the whole process.
CFLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp"]
LDFLAGS = ["-lmvec", "-fopenmp"]


def _cpu_id() -> str:
    try:
        flags = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if "flags" in ln]
        return flags[0] if flags else platform.processor()
    except OSError:
        return platform.processor()


@functools.cache
def _ext() -> bool:
    """Build (or reuse) and load the kernel's ops; False where they cannot be built."""
    from torch.utils.cpp_extension import load

    # -march=native: a build is only valid on this kind of CPU, so the CPU is part of its key
    key = hashlib.sha256(
        "\0".join([SOURCE.read_text(), *CFLAGS, _cpu_id(), torch.__version__]).encode()
    ).hexdigest()[:16]
    build = cache_root() / "kernels" / key
    build.mkdir(parents=True, exist_ok=True)
    try:
        load(
            name="oversight_attention",
            sources=[str(SOURCE)],
            extra_cflags=CFLAGS,
            extra_ldflags=LDFLAGS,
            build_directory=str(build),
            is_python_module=False,  # registers torch.ops.oversight.*
        )
    except Exception as e:  # no compiler, no ninja, an unknown flag
        log.warning("packed attention kernel not built (%s); using SDPA", e)
        return False
    # shapes for torch.compile's tracing
    torch.library.register_fake("oversight::packed_attention")(
        lambda q, k, v, kv_start, q_start, q_pos, scale: (
            q.new_empty(q.shape),
            q.new_empty(q.shape[:2]),
        )
    )
    torch.library.register_fake("oversight::packed_attention_backward")(
        lambda grad, q, k, v, *_: (q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape))
    )
    return True


HEAD_DIMS = (8, 16, 32, 64)
_enabled = True
"""False: the packed forward attends through SDPA (tests compare the two)"""


@torch.compiler.assume_constant_result  # a compiled forward decides once, without tracing a build
def available() -> bool:
    return _enabled and _ext()


def usable(q: torch.Tensor) -> bool:
    """Whether `packed_attention` takes queries like `q` ([M, H, hd])."""
    return (
        q.device.type == "cpu"
        and q.dtype == torch.float32
        and q.shape[-1] in HEAD_DIMS
        and available()
    )


class _PackedAttention(torch.autograd.Function):
    # An autograd.Function over dispatcher ops rather than torch.library.custom_op: the latter's
    # Python wrapping cost 3 % of a PPO step on the benchmark (in-process A/B, same rounding).
    @staticmethod
    def forward(ctx: Any, q, k, v, kv_start, q_start, q_pos, scale):  # noqa: ANN001, ANN205
        o, lse = torch.ops.oversight.packed_attention(q, k, v, kv_start, q_start, q_pos, scale)
        ctx.save_for_backward(q, k, v, o, lse, kv_start, q_start, q_pos)
        ctx.scale = scale
        ctx.mark_non_differentiable(lse)
        return o, lse

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _grad_lse: torch.Tensor) -> tuple:
        q, k, v, o, lse, kv_start, q_start, q_pos = ctx.saved_tensors
        dq, dk, dv = torch.ops.oversight.packed_attention_backward(
            grad.contiguous(), q, k, v, o, lse, kv_start, q_start, q_pos, ctx.scale
        )
        return dq, dk, dv, None, None, None, None


def packed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kv_start: torch.Tensor,
    q_start: torch.Tensor | None,
    q_pos: torch.Tensor,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal attention of queries q [M, H, hd] on keys and values [N, Hkv, hd] (fp32, CPU):
    (output [M, H, hd], log-sum-exp of the scores [M, H]). Needs `available()`.

    Row r's keys are packed tokens kv_start[r] .. kv_start[r+1] - 1 in position order, its
    queries q_start[r] .. q_start[r+1] - 1 (None: the same tokens, q_start = kv_start), and query
    i sees keys 0 .. q_pos[i] of its row. H must be a multiple of Hkv (grouped-query attention),
    hd one of `HEAD_DIMS`.
    """
    return _PackedAttention.apply(q, k, v, kv_start, q_start, q_pos, scale)
