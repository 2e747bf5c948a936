"""Benchmark of supervised fine-tuning: the padded Hugging Face forward vs the packed one.

    .venv/bin/python bench/sft.py               # 300 steps a side at the base model's settings
    .venv/bin/python bench/sft.py --steps 1500  # the base model's whole SFT, both ways

Both sides run `oversight.models.sft.sft_steps`, the loop of `sft`, on the same work: two
copies of the base model built as `base_model` builds it (the character tokenizer, the policy
config's seed, `build_model`), the default arithmetic task's corpus, the same batches (one seed)
and the same optimiser and schedule. The padded side runs under `fastlm.disabled()`, so its
loss is the model's own padded forward; the packed side runs on `oversight.engine.fastlm`. The
math is the same, so the two loss curves agree to float rounding (printed).

The sides alternate in chunks of `--chunk` steps in one process, so both see the same machine
load (on a shared machine the speed drifts by tens of percent over seconds); the ratio is the
median over chunks. Tokens are real ones (prompt + response + EOS), the same on both sides; the
padded side also computes on its padding. Threads: torch's default, as the base model's SFT.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator

import torch

from oversight.engine import fastlm
from oversight.models.policy import PolicyConfig, build_model
from oversight.models.sft import SFTBatch, sft_steps
from oversight.models.tokenizer import char_tokenizer
from oversight.tasks import ArithmeticConfig, ArithmeticTask


class Side:
    """One side's SFT loop, timed a chunk of steps at a time."""

    def __init__(self, run: Iterator[tuple[torch.Tensor, SFTBatch]], padded: bool) -> None:
        self.run, self.padded = run, padded
        self.losses: list[torch.Tensor] = []
        self.chunks: list[tuple[int, int, float, float]] = []
        """(steps, tokens, seconds, CPU seconds) of each timed chunk"""

    def advance(self, k: int, device: torch.device, timed: bool) -> None:
        t0, c0, tokens = time.perf_counter(), time.process_time(), 0
        for _ in range(k):
            if self.padded:
                with fastlm.disabled():
                    loss, batch = next(self.run)
            else:
                loss, batch = next(self.run)
            self.losses.append(loss)
            tokens += batch.tokens
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if timed:
            self.chunks.append((k, tokens, time.perf_counter() - t0, time.process_time() - c0))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="bench/sft.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--steps", type=int, default=300, help="SFT steps per side")
    ap.add_argument("--chunk", type=int, default=10, help="steps a side runs before the other")
    ap.add_argument("--warmup", type=int, default=10, help="first steps a side runs untimed")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    pc, tok = PolicyConfig(), char_tokenizer()
    pairs = ArithmeticTask(ArithmeticConfig()).corpus(pc.sft_examples, seed=pc.base_seed)
    sides = {}
    for name in ("padded", "packed"):
        torch.manual_seed(pc.base_seed)
        model = build_model(pc, tok).to(device)
        run = sft_steps(
            model, tok, pairs, a.steps, pc.sft_batch_size, pc.sft_lr, pc.base_seed, device
        )
        sides[name] = Side(run, padded=name == "padded")
    print(
        f"SFT benchmark: {a.steps} steps a side, alternating in chunks of {a.chunk}, the first"
        f" {a.warmup} untimed; batch {pc.sft_batch_size}, lr {pc.sft_lr}, seed {pc.base_seed}"
    )
    print(
        f"  model: the base model's Llama ({pc.n_layer} layers, {pc.n_embd} wide, vocab"
        f" {len(tok)}); corpus: {len(pairs)} default arithmetic pairs; device {device},"
        f" torch threads {torch.get_num_threads()} of {os.cpu_count()} CPUs, torch"
        f" {torch.__version__}"
    )
    done = 0
    while done < a.steps:
        k = min(a.warmup - done if done < a.warmup else a.chunk, a.steps - done)
        for s in sides.values():
            s.advance(k, device, timed=done >= a.warmup)
        done += k
    pad, pk = sides["padded"], sides["packed"]
    if not pk.chunks:
        raise SystemExit("no timed steps: raise --steps above --warmup")
    wall = statistics.median(
        (b[0] / b[2]) / (p[0] / p[2]) for p, b in zip(pad.chunks, pk.chunks, strict=True)
    )
    cpu = statistics.median(
        (b[0] / b[3]) / (p[0] / p[3]) for p, b in zip(pad.chunks, pk.chunks, strict=True)
    )
    print(f"\n{'side':>7} {'steps/s':>8} {'tokens/s':>9} {'final loss':>11} {'last 50':>8}")
    for name, s in sides.items():
        curve = torch.stack(s.losses).tolist()
        steps_s = sum(c[0] for c in s.chunks) / sum(c[2] for c in s.chunks)
        tokens_s = sum(c[1] for c in s.chunks) / sum(c[2] for c in s.chunks)
        last = curve[-50:]
        print(
            f"{name:>7} {steps_s:>8.2f} {tokens_s:>9.0f} {curve[-1]:>11.5f}"
            f" {sum(last) / len(last):>8.5f}"
        )
    gap = (torch.stack(pad.losses) - torch.stack(pk.losses)).abs()
    print(
        f"  loss difference, padded vs packed: {gap[0].item():.1e} at the first step (same"
        f" weights, same batch: rounding only), at most {gap.max().item():.1e} over the run"
        " (rounding differences grow as the weights drift apart)"
    )
    print(
        f"median ratio over {len(pk.chunks)} chunks, packed / padded: {wall:.2f}x steps/s"
        f" (wall clock), {cpu:.2f}x steps per CPU-second"
    )


if __name__ == "__main__":
    main()
