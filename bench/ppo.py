"""Benchmarks of the shared PPO core (`make bench`).

    .venv/bin/python bench/ppo.py            # our PPO core vs TRL's GRPOTrainer, same work
    .venv/bin/python bench/ppo.py --no-trl   # our core only (no `.[bench]` extra needed)

Both sides train the same tiny model (the demo's Llama-shaped policy and character tokenizer,
freshly initialised from one seed) on the same 16 prompts, each sampled 4 times (64 samples a
step), with the same maximum new tokens and temperature, and score every response with the same
rule (no judge). One *step* is the same work on both sides:

- ours: sample 64 responses (KV cache), keeping the sampler's log-probabilities and values; one
  reference pass over them; then 4 epochs x 4 minibatches of 16 = 16 optimiser steps
  (`PPOConfig`'s defaults);
- TRL `GRPOTrainer` (num_generations=4): sample 64 completions; one old-log-prob pass and one
  reference pass (beta > 0); then num_iterations=4 x 4 minibatches of 16 = 16 optimiser steps.
  Gradient checkpointing off (TRL's default turns it on, which recomputes every forward).

The two sides alternate step by step in one process (ours runs from a TRL callback between two of
its generation batches, off TRL's clock), so each pair of steps sees the same machine load: on a
shared machine the speed drifts by tens of percent over seconds. After one warm-up step each, a
repetition is `--steps` such pairs; the ratio reported is the median over repetitions. Both sides
get the same torch thread count unless `--trl-threads` says otherwise.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from oversight.engine.ppo import PolicyWithValue, PPOConfig, PPOTrainer, cpu_threads
from oversight.models.policy import PolicyConfig, build_model
from oversight.models.tokenizer import char_tokenizer, decode, encode
from oversight.tasks import ArithmeticConfig, ArithmeticTask, Task

N_PROMPTS, N_GENERATIONS = 16, 4  # 64 samples per step, in GRPO's groups of 4
MINIBATCH, EPOCHS, LR, KL_COEF = 16, 4, 1e-4, 0.05


@dataclass
class Timing:
    samples: int
    tokens: int
    """response tokens, up to and including EOS"""
    seconds: float
    cpu_seconds: float
    """CPU time of this process: what the work cost, whatever else the machine was running"""

    def __add__(self, o: Timing) -> Timing:
        return Timing(
            self.samples + o.samples,
            self.tokens + o.tokens,
            self.seconds + o.seconds,
            self.cpu_seconds + o.cpu_seconds,
        )

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def samples_per_cpu_s(self) -> float:
        return self.samples / self.cpu_seconds


def make_reward(task: Task) -> Callable[[list[str]], list[float]]:
    """The rule both sides train on: 1 for a well-formed answer (a final number), else 0.

    The untrained policy never writes one, so the only signal is the KL penalty, which starts at
    zero, and both sides keep sampling from about the same distribution (equal response lengths),
    while every pass, backward and optimiser step still runs: a fair timing, not a learning
    curve. (Ours whitens advantages, so float-rounding noise in its KL penalty moves its policy
    a little: KL to the start ~0.04 nats after 12 steps; the printed tokens/sample show the
    lengths stay equal.)
    """

    def reward(texts: list[str]) -> list[float]:
        return [1.0 if task.final_answer(t) is not None else 0.0 for t in texts]

    return reward


def setup(seed: int) -> tuple[Task, Any, Any, list[str], PolicyConfig]:
    """The arithmetic task, the demo's tokenizer and (untrained) policy, and the prompts."""
    task = ArithmeticTask(ArithmeticConfig())
    tok, pc = char_tokenizer(), PolicyConfig()
    torch.manual_seed(seed)
    base = build_model(pc, tok)
    prompts = [p.prompt for p in task.sample(N_PROMPTS, seed=seed, split="bench")]
    return task, tok, base, prompts, pc


class Ours:
    """Our PPO core on the benchmark's work, one timed step (rollout, scoring, update) a call."""

    def __init__(
        self,
        base: Any,
        tok: Any,
        prompts: list[str],
        task: Task,
        pc: PolicyConfig,
        seed: int,
        compile: bool = False,
    ) -> None:
        device = torch.device("cpu")
        cfg = PPOConfig(
            batch_size=len(prompts) * N_GENERATIONS,
            minibatch_size=MINIBATCH,
            epochs=EPOCHS,
            lr=LR,
            kl_coef=KL_COEF,
            missing_eos_penalty=None,  # the rule is the only reward, as on TRL's side
            compile=compile,
        )
        self.trainer = PPOTrainer(
            PolicyWithValue(copy.deepcopy(base)),
            copy.deepcopy(base),
            cfg,
            tok.eos_token_id,
            tok.pad_token_id,
            pc.temperature,
            pc.max_new_tokens,
            device,
        )
        self.tok, self.reward = tok, make_reward(task)
        self.ids, self.mask = encode(
            tok, [p for p in prompts for _ in range(N_GENERATIONS)], device
        )
        self.gen = torch.Generator().manual_seed(seed)

    def step(self) -> Timing:
        t0, c0 = time.perf_counter(), time.process_time()
        ro = self.trainer.rollout(self.ids, self.mask, self.gen)
        texts = decode(self.tok, ro.responses, self.tok.eos_token_id)
        self.trainer.step(ro, torch.tensor(self.reward(texts)), self.gen)
        return Timing(
            ro.responses.shape[0],
            int(ro.mask.sum()),
            time.perf_counter() - t0,
            time.process_time() - c0,
        )


def time_trl(
    model_dir: str,
    tok: Any,
    prompts: list[str],
    task: Task,
    pc: PolicyConfig,
    steps: int,
    seed: int,
    out_dir: str,
    between: Callable[[], None] = lambda: None,
) -> list[Timing]:
    """Each of `steps` generation batches of TRL's GRPOTrainer after one warm-up batch.

    `between()` runs after every batch, the warm-up included, off TRL's clock.
    """
    import warnings

    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from transformers.utils import logging as hf_logging
    from trl import GRPOConfig, GRPOTrainer

    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)  # TRL's deprecation notices

    reward = make_reward(task)
    count = {"samples": 0, "tokens": 0}

    def reward_fn(completions: list[str], completion_ids: list[list[int]], **_: Any) -> list[float]:
        count["samples"] += len(completions)
        count["tokens"] += sum(len(c) for c in completion_ids)  # up to and including EOS
        return reward(completions)

    per_batch = N_PROMPTS * N_GENERATIONS // MINIBATCH * EPOCHS  # optimiser steps per batch
    timings: list[Timing] = []
    start: list[float] = []

    def mark() -> list[float]:
        return [time.perf_counter(), time.process_time(), count["samples"], count["tokens"]]

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step % per_batch:
                return
            if start:  # the warm-up batch has no start mark
                (t0, c0, s0, k0), (t1, c1, s1, k1) = start, mark()
                timings.append(Timing(int(s1 - s0), int(k1 - k0), t1 - t0, c1 - c0))
            between()
            start[:] = mark()

    args = GRPOConfig(
        output_dir=out_dir,  # nothing is saved there
        num_generations=N_GENERATIONS,
        generation_batch_size=N_PROMPTS * N_GENERATIONS,
        per_device_train_batch_size=MINIBATCH,
        gradient_accumulation_steps=1,
        num_iterations=EPOCHS,
        beta=KL_COEF,
        max_completion_length=pc.max_new_tokens,
        temperature=pc.temperature,
        learning_rate=LR,
        lr_scheduler_type="constant",
        max_steps=(steps + 1) * per_batch,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        logging_strategy="no",
        save_strategy="no",
        disable_tqdm=True,
        seed=seed,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model_dir,
        reward_funcs=[reward_fn],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tok,
        callbacks=[Clock()],
    )
    trainer.remove_callback(PrinterCallback)  # it prints the final log dict
    trainer.train()
    return timings


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "-"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="bench/ppo.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--steps", type=int, default=4, help="timed steps per side and repetition")
    ap.add_argument("--reps", type=int, default=5, help="repetitions (the ratio is their median)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads, both sides (0: ours)")
    ap.add_argument(
        "--trl-threads", type=int, default=0, help="torch threads for TRL only (0: as --threads)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-trl", action="store_true", help="time our core only")
    ap.add_argument("--compile", action="store_true", help="ours with PPOConfig(compile=True)")
    a = ap.parse_args(argv)
    if not a.no_trl:
        try:
            import trl  # noqa: F401
        except ImportError:
            raise SystemExit(
                "TRL is not installed: pip install -e '.[bench]' (or use --no-trl)"
            ) from None
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # no tokenizer threads on either side
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    task, tok, base, prompts, pc = setup(a.seed)
    threads = a.threads or cpu_threads(pc.n_embd, pc.path)
    torch.set_num_threads(threads)
    scratch = tempfile.TemporaryDirectory(prefix="oversight-bench-")  # removed at exit
    model_dir = str(Path(scratch.name) / "model")
    base.save_pretrained(model_dir)  # TRL loads the policy and its reference from a path
    tok.save_pretrained(model_dir)

    n = N_PROMPTS * N_GENERATIONS
    print(f"PPO core benchmark: {a.steps} timed steps per side after 1 warm-up, {a.reps} reps")
    print(
        f"  model: the demo's Llama ({pc.n_layer} layers, {pc.n_embd} wide, vocab {len(tok)}),"
        f" untrained, seed {a.seed}; {N_PROMPTS} prompts x {N_GENERATIONS} samples = {n}"
        f" samples/step; max {pc.max_new_tokens} new tokens; temperature {pc.temperature}"
    )
    print(
        f"  per step, both: sample {n} and one reference pass over them (ours keeps the"
        " sampler's log-probs and values, TRL makes an old-policy pass);"
        f" {EPOCHS} passes x {n // MINIBATCH} minibatches of {MINIBATCH}"
        f" = {EPOCHS * n // MINIBATCH} optimiser steps (ours: PPO, clipped policy+value loss;"
        f" TRL: GRPO loss, beta {KL_COEF}, no gradient checkpointing)"
    )
    print(
        "  reward, both: 1 for a well-formed answer, else 0 (no judge); the untrained policy"
        " never writes one, so both policies stay near their start (tokens/sample below)"
    )
    print(
        f"  machine: {_cpu()}, {os.cpu_count()} CPUs, torch threads {threads}"
        + (f" (TRL: {a.trl_threads})" if a.trl_threads else " (both sides)")
        + ";"
        f" torch {torch.__version__}, transformers {_version('transformers')},"
        f" trl {_version('trl')}" + ("; ours with torch.compile" if a.compile else "")
    )
    trl = not a.no_trl
    ours, n = Ours(base, tok, prompts, task, pc, a.seed, a.compile), a.reps * a.steps
    print(f"  running: {n + 1} steps per side, {'alternating' if trl else 'ours only'} ...")
    timed: list[Timing] = []

    def ours_step() -> None:
        torch.set_num_threads(threads)
        try:
            timed.append(ours.step())
        finally:
            torch.set_num_threads(a.trl_threads or threads)

    if trl:
        torch.set_num_threads(a.trl_threads or threads)
        out = str(Path(scratch.name) / "trl")
        trl_steps = time_trl(model_dir, tok, prompts, task, pc, n, a.seed, out, ours_step)
        torch.set_num_threads(threads)
        # ours' first step ran after TRL's warm-up batch: it is ours' warm-up
        pairs = {"ours": timed[1 : n + 1], "trl": trl_steps}
    else:
        for _ in range(n + 1):
            ours_step()
        pairs = {"ours": timed[1:]}
    zero, k = Timing(0, 0, 0.0, 0.0), a.steps
    results = {
        name: [sum(ts[r * k : (r + 1) * k], zero) for r in range(a.reps)]
        for name, ts in pairs.items()
    }
    head = f"\n{'rep':>4} {'ours samples/s':>15} {'tokens/s':>9} {'/cpu-s':>7}"
    if trl:
        head += f" {'TRL samples/s':>14} {'tokens/s':>9} {'/cpu-s':>7} {'ratio':>6} {'cpu':>6}"
    print(head)

    def cols(ts: list[Timing]) -> str:
        """samples/s, tokens/s and samples per CPU-second; the median when several runs."""
        return "".join(
            f" {statistics.median(f(t) for t in ts):>{w}.{d}f}"
            for f, w, d in (
                (lambda t: t.samples_per_s, 14, 1),
                (lambda t: t.tokens_per_s, 9, 0),
                (lambda t: t.samples_per_cpu_s, 7, 1),
            )
        )

    def ratios(i: slice) -> str:
        pairs = list(zip(results["ours"][i], results["trl"][i], strict=True))
        wall = statistics.median(o.samples_per_s / t.samples_per_s for o, t in pairs)
        cpu = statistics.median(o.samples_per_cpu_s / t.samples_per_cpu_s for o, t in pairs)
        return f" {wall:>5.2f}x {cpu:>5.2f}x"

    for rep in range(a.reps):
        last = slice(rep, rep + 1)
        line = f"{rep + 1:>4} " + cols(results["ours"][last])
        if trl:
            line += cols(results["trl"][last]) + ratios(last)
        print(line, flush=True)
    every = slice(None)
    line = f"{'med':>4} " + cols(results["ours"])
    if trl:
        line += cols(results["trl"]) + ratios(every)
    print(line)
    for name, ts in results.items():
        print(
            f"  {name}: {sum(t.tokens for t in ts) / sum(t.samples for t in ts):.1f} tokens/sample"
        )
    if trl:
        wall, cpu = ratios(every).split()
        print(
            f"median ratio over {a.reps} reps, ours / TRL GRPO: {wall} samples/s (wall clock),"
            f" {cpu} samples per CPU-second"
        )


if __name__ == "__main__":
    main()
