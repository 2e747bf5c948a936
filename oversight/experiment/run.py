"""One experiment, end to end (docs/design.md, "One PPO step"):

    task.sample -> protocol.episodes (policy rollouts, judge) -> ppo.step -> harness (logged) -> store

`run` is what `python -m oversight.train` calls; tests call it too.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from oversight.engine import distributed
from oversight.engine.ppo import PolicyWithValue, PPOConfig, PPOTrainer, cpu_threads
from oversight.engine.sampling import generate
from oversight.errors import built
from oversight.experiment import checkpoint
from oversight.experiment.config import EvalConfig, validate
from oversight.experiment.episodes import ppo_step, rollout_fn, sft_fn
from oversight.experiment.harness import Harness, kind_prefix
from oversight.judges import Judge
from oversight.models.base_model import base_model
from oversight.models.policy import PolicyConfig
from oversight.models.tokenizer import decode, encode
from oversight.roles import Role, build_roles
from oversight.store import Store
from oversight.tasks import PublicProblem, PublicText, Task, build_task
from protocols import Protocol, ProtocolContext

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build(node: Any, kind: str) -> Any:
    """Instantiate a config node (a judge, a protocol), or a one-line ConfigError."""
    return built(node, kind)


def build_judge(cfg: DictConfig, task: Task) -> Judge:
    judge: Judge = build(cfg.judge, "judge")
    judge.attach(task)
    return judge


class ProblemStream:
    """A protocol's problems: batch after batch of its own split, in order. How many it has
    drawn is what a checkpoint keeps of it."""

    def __init__(self, task: Task, split: str) -> None:
        self.task, self.split, self.drawn = task, split, 0

    def __call__(self, n: int) -> list[PublicProblem]:
        self.drawn += 1
        return self.task.sample(n, seed=self.drawn - 1, split=self.split)


def protocol_context(
    cfg: DictConfig,
    task: Task,
    judge: Judge,
    base: PreTrainedModel,
    tok: Any,
    device: torch.device,
    generate: Any,
    rollout: Any = None,
    sft: Any = None,
    roles: dict[str, Role] | None = None,
    reference: Any = None,
) -> ProtocolContext:
    """What a protocol gets: its problems come from their own split, drawn in order. Without
    `rollout` and `sft` (a set-up outside a run, as the benchmarks do) those calls raise."""

    def unavailable(*_: Any) -> Any:
        raise RuntimeError("this context samples text only: no PPO core to roll out or tune")

    return ProtocolContext(
        judge=judge,
        base_model=base,
        tokenizer=tok,
        device=device,
        generate=generate,
        rollout=rollout or unavailable,
        sft=sft or unavailable,
        sample_problems=ProblemStream(task, f"protocol-{cfg.seed}"),
        rng=random.Random(cfg.seed),
        seed=cfg.seed,
        roles=roles or {},
        text=PublicText(task),
        reference=reference,
    )


def flat(prefix: str, d: dict[str, Any]) -> dict[str, Any]:
    """{"gold_accuracy": {"beyond": .5}} -> {"prefix/gold_accuracy/beyond": .5} (numbers only)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= flat(f"{prefix}/{k}", v)
        elif isinstance(v, int | float) or v is None:
            out[f"{prefix}/{k}"] = v
    return out


class Sampler:
    """Samples a model on prompt texts, in batches, from one seeded generator."""

    def __init__(
        self,
        model: torch.nn.Module,
        tok: Any,
        policy: PolicyConfig,
        device: torch.device,
        seed: int,
        batch_size: int = 512,
    ) -> None:
        self.model, self.tok, self.policy, self.device = model, tok, policy, device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.batch_size = batch_size

    def __call__(self, prompts: list[str]) -> list[str]:
        out: list[str] = []
        for i in range(0, len(prompts), self.batch_size):
            ids, mask = encode(self.tok, prompts[i : i + self.batch_size], self.device)
            resp = generate(
                self.model,
                ids,
                mask,
                self.policy.max_new_tokens,
                self.policy.temperature,
                self.tok.eos_token_id,
                self.tok.pad_token_id,
                self.generator,
            )
            out += decode(self.tok, resp, self.tok.eos_token_id)
        return out


def run(cfg: DictConfig, output_dir: Path, sweep: bool = False) -> dict[str, Any]:
    """Run experiment `cfg` into `output_dir`; returns its summary.

    When a run of the same experiment died after a checkpoint, this continues it instead, in its
    own output dir and store (`oversight.experiment.checkpoint`). `sweep`: this is a job of a
    sweep, skipped (its summary returned) when its store has the experiment finished already.
    """
    t_start = time.perf_counter()
    validate(cfg)  # a bad value stops here: nothing built, nothing written, no store opened
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    key = checkpoint.run_key(cfg)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = distributed.setup(pick_device(cfg.device))  # under a launcher: this rank's GPU
    if device.type == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)
    if not distributed.is_main():  # only rank 0 writes outputs and the store
        output_dir = Path(tempfile.mkdtemp(prefix=f"oversight-rank{distributed.rank()}-"))

    # ---- parts, all from config ----
    task_cfg = OmegaConf.to_container(cfg.task, resolve=True)
    assert isinstance(task_cfg, dict)
    task = build_task(task_cfg)
    policy_cfg = PolicyConfig(**cfg.policy)
    ppo_cfg = PPOConfig(**cfg.ppo)
    eval_cfg = EvalConfig(**cfg.eval)
    judge = build_judge(cfg, task)
    protocol: Protocol = build(cfg.protocol, "protocol")
    store_url = cfg.store.url if distributed.is_main() else "sqlite://"
    # not under a multi-process launcher: the other ranks, whose store is in memory, would wait
    if sweep and distributed.world_size() == 1:
        if (done := Store(store_url).finished_run(key)) is not None:
            log.info("skipping: finished as run %d in %s", done.id, done.output_dir)
            return done.summary

    with _claim(key) as claim:
        resume = checkpoint.resumable(claim, device) if claim else None
        # a resume writes into the store it wrote to: none is made in this invocation's dir
        store = resume.store if resume else Store(store_url)
        if resume is not None:
            output_dir, run_id = resume.output_dir, resume.entry.run_id
            resolved["store"]["url"] = resume.entry.store_url
            store.resume_run(run_id, resume.step)
            checkpoint.truncate_metrics(output_dir, resume.step)
            log.info("resuming %s from step %d", output_dir, resume.step)
        base, tok, base_meta = base_model(policy_cfg, task, task_cfg, device, protocol.alphabet)
        if device.type == "cpu" and not cfg.threads:
            # Auto: the base model's SFT (batched, once) gains from every core; PPO on a small
            # policy runs faster on one thread (see cpu_threads).
            torch.set_num_threads(cpu_threads(cfg.policy.n_embd, cfg.policy.path))

        if resume is None:
            run_id = store.start_run(
                output_dir.name, protocol.name, judge.name, cfg.seed, resolved, str(output_dir), key
            )
            if claim is not None:
                claim.register(checkpoint.Entry(str(output_dir), store.url, run_id))
        saving = claim is not None and cfg.checkpoint_every > 0
        built = _Run(
            cfg,
            resolved,
            task,
            base,
            tok,
            base_meta,
            judge,
            protocol,
            store,
            run_id,
            saving,
            resume,
        )
        try:
            summary = _train(built, policy_cfg, ppo_cfg, eval_cfg, device, output_dir, t_start)
        except BaseException:  # Ctrl-C too; the same command carries on from the checkpoint
            store.finish_run(run_id, "failed")
            raise
        store.finish_run(run_id, "finished", summary)
        if claim is not None:
            claim.finish(output_dir)
    return summary


@contextlib.contextmanager
def _claim(key: str) -> Iterator[checkpoint.Claim | None]:
    """This process's hold on experiment `key` while it runs; None: it keeps no checkpoints."""
    if distributed.world_size() > 1:  # each rank has streams of its own, not in one checkpoint
        yield None
        return
    claim = checkpoint.claim(key)
    if claim is None:
        log.warning(
            "an identical run (key %s) is running right now: this one starts afresh and keeps "
            "no checkpoints",
            key,
        )
    try:
        yield claim
    finally:
        if claim is not None:
            claim.release()


@dataclass
class _Run:
    """The parts `run` built from the config, for `_train`."""

    cfg: DictConfig
    resolved: Any
    task: Task
    base: PreTrainedModel
    tok: Any
    base_meta: dict[str, Any]
    judge: Judge
    protocol: Protocol
    store: Store
    run_id: int
    saving: bool = False
    """whether `_train` writes checkpoints"""
    resume: checkpoint.Resume | None = None
    """the checkpoint `_train` continues from, or None to start afresh"""


def _train(
    r: _Run,
    policy_cfg: PolicyConfig,
    ppo_cfg: PPOConfig,
    eval_cfg: EvalConfig,
    device: torch.device,
    output_dir: Path,
    t_start: float,
) -> dict[str, Any]:
    cfg, task, base, tok = r.cfg, r.task, r.base, r.tok
    judge, protocol, store, run_id = r.judge, r.protocol, r.store, r.run_id
    policy = PolicyWithValue(copy.deepcopy(base)).to(device)
    trainer = PPOTrainer(
        policy,
        base,
        ppo_cfg,
        tok.eos_token_id,
        tok.pad_token_id,
        policy_cfg.temperature,
        policy_cfg.max_new_tokens,
        device,
    )
    sample = Sampler(policy.lm, tok, policy_cfg, device, cfg.seed)
    harness = Harness(task, cfg.competence, eval_cfg.n_problems, eval_cfg.seed)
    eval_sampler = lambda: Sampler(policy.lm, tok, policy_cfg, device, eval_cfg.seed)  # noqa: E731  same draws at every evaluation
    pretrained: dict[str, Any] = {}

    def before_sft() -> None:  # the policy before a protocol's SFT phase, for the summary
        if not pretrained:
            pretrained.update(harness.evaluate(eval_sampler(), None))

    frozen = Sampler(trainer.ref, tok, policy_cfg, device, cfg.seed)
    frozen.generator = sample.generator  # one stream of draws, the one a checkpoint keeps

    def reference(prompts: list[str]) -> list[str]:
        frozen.model = trainer.ref  # an SFT phase or a resume replaces the reference
        return frozen(prompts)

    ctx = protocol_context(
        cfg,
        task,
        judge,
        base,
        tok,
        device,
        sample,
        rollout_fn(trainer, tok, device, sample.generator),
        sft_fn(policy, trainer, tok, device, cfg.seed, before_sft),
        build_roles(cfg, task, device),
        reference,
    )

    rank = distributed.rank()
    gen = torch.Generator().manual_seed(cfg.seed + rank)
    parts = checkpoint.Parts(
        policy, trainer, base, sample.generator, gen, ctx, ctx.sample_problems, protocol, task
    )
    if r.resume is None:
        # a copy: a protocol may keep adding to the list it returned (RLHF refreshes)
        records = list(protocol.setup(ctx))  # the same on every rank: same seeds, same draws
        if rank:  # several ranks: from here on each samples its own prompts and responses
            sample.generator.manual_seed(cfg.seed + rank)
        store.log_judgments(run_id, 0, records)
        base_eval = harness.evaluate(eval_sampler(), protocol.proxy_reward)
        progress = checkpoint.Progress(0, records, base_eval, pretrained)
        if r.saving:  # a kill from here on resumes after the setup
            checkpoint.save(output_dir, progress, parts)
    else:
        progress = checkpoint.restore(r.resume.state, parts)
    metrics_file = (output_dir / "metrics.jsonl").open("a" if r.resume else "w")
    for step in tqdm(
        range(progress.step + 1, ppo_cfg.steps + 1),
        desc=f"PPO ({protocol.name}, {judge.name})",
        initial=progress.step,
        total=ppo_cfg.steps,
    ):
        t0 = time.perf_counter()
        split = f"ppo-{cfg.seed}" + (f"-rank{rank}" if rank else "")
        problems = task.sample(ppo_cfg.batch_size, seed=step, split=split)
        stats, batch, n_tokens = ppo_step(trainer, protocol, problems, step, gen, tok, device)
        seconds = time.perf_counter() - t0
        progress.step = step
        progress.tokens += n_tokens
        progress.rollout_seconds += seconds
        if not math.isnan(stats["kl"]):  # a step that trained nothing (all debates dead) has none
            progress.last_kl = stats["kl"]
        progress.records += batch.judgments
        store.log_judgments(run_id, step, batch.judgments)
        row = {
            "step": step,
            **stats,
            **batch.info,
            "tokens_per_second": n_tokens / seconds,
            "seconds": seconds,
        }
        answers = batch.responses or batch.turns[0].texts
        # truth read by the harness, logged only
        row |= flat("train", harness.score(batch.problems or problems, answers))
        for name, (ps, rs) in batch.scored.items():
            row |= flat(f"train/{name}", harness.score(ps, rs))
        row |= flat("judge_cost", judge.cost.as_dict())
        if eval_cfg.every and step % eval_cfg.every == 0 and step != ppo_cfg.steps:
            row |= flat("eval", harness.evaluate(eval_sampler(), protocol.proxy_reward))
        metrics_file.write(json.dumps(row) + "\n")
        metrics_file.flush()
        store.log_metrics(run_id, step, row)
        # not after the last step: resumed from it, the final evaluation would be logged twice
        if r.saving and step % cfg.checkpoint_every == 0 and step < ppo_cfg.steps:
            checkpoint.save(output_dir, progress, parts)
    metrics_file.close()

    final_eval = harness.evaluate(eval_sampler(), protocol.proxy_reward)
    # The trained policy stays with its run (outputs/ is never committed): analyses can sample it.
    policy.lm.save_pretrained(output_dir / "policy")
    tok.save_pretrained(output_dir / "policy")
    store.log_metrics(run_id, ppo_cfg.steps, flat("eval", final_eval))
    summary = {
        "protocol": protocol.name,
        "judge": judge.name,
        "seed": cfg.seed,
        "config": r.resolved,
        # before a protocol's SFT phase
        **({"pretrained": progress.pretrained} if progress.pretrained else {}),
        "base": progress.base_eval,
        "final": final_eval,
        "label_accuracy": (la := harness.label_accuracy(progress.records)),
        # on the kind of item the protocol's judge decides: did it side with the right answer?
        "judge_accuracy": {b: la.get(kind_prefix(protocol.kind) + b) for b in ("within", "beyond")},
        "judge_cost": judge.cost.as_dict(),
        # the harness's scores of a protocol's other answers (amplified targets), mean over steps
        **({"scored": scored} if (scored := scored_means(output_dir / "metrics.jsonl")) else {}),
        **({protocol.name: own} if (own := protocol.summary()) else {}),
        # what the protocol's AI helpers spent (critic calls and their checks)
        "role_cost": {name: role.cost.as_dict() for name, role in ctx.roles.items()},
        "kl": progress.last_kl,
        "wall_seconds": time.perf_counter() - t_start,
        "tokens_per_second": progress.tokens / max(progress.rollout_seconds, 1e-9),
        "base_model": r.base_meta,
        "device": str(device),
        "run_id": run_id,
        "store_url": store.engine.url.render_as_string(hide_password=True),
    }
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary


def scored_means(metrics: Path) -> dict[str, Any]:
    """{name: {"gold_accuracy": {bucket: mean}, ...}} over the steps of `metrics.jsonl` that
    logged `train/<name>/...` for a batch's other answers (`Batch.scored`); read back from the
    file, so a resumed run counts the steps before its kill too."""
    sums: dict[str, list[float]] = {}
    for line in metrics.read_text().splitlines():
        for k, v in json.loads(line).items():
            parts = k.split("/")
            if parts[0] == "train" and len(parts) == 4 and isinstance(v, int | float):
                sums.setdefault(k, []).append(float(v))
    out: dict[str, Any] = {}
    for k, vs in sorted(sums.items()):
        _, name, metric, bucket = k.split("/")
        out.setdefault(name, {}).setdefault(metric, {})[bucket] = sum(vs) / len(vs)
    return out


def _fmt(x: float | None) -> str:
    return "   -  " if x is None else f"{x:6.3f}"


def report(summary: dict[str, Any]) -> str:
    """The short base-vs-final table printed at the end of a run."""
    b, f = summary["base"], summary["final"]
    lines = [f"{'metric':<26}{'base':>8}{'final':>8}"]
    for key in ("gold_accuracy", "sycophancy_rate"):
        for bucket in ("within", "beyond", "all"):
            lines.append(
                f"{key + '/' + bucket:<26}{_fmt(b[key][bucket]):>8}{_fmt(f[key][bucket]):>8}"
            )
    lines.append(f"{'proxy_reward':<26}{_fmt(b['proxy_reward']):>8}{_fmt(f['proxy_reward']):>8}")
    la = summary["label_accuracy"]
    lines.append(
        f"label accuracy within {_fmt(la['within'])}, beyond {_fmt(la['beyond'])}; checks/label {summary['judge_cost']['checks_per_label']:.2f}"
    )
    lines.append(
        f"KL {summary['kl']:.2f}, {summary['tokens_per_second']:.0f} tokens/s, {summary['wall_seconds']:.0f} s"
    )
    return "\n".join(lines)
