"""One experiment, end to end (docs/design.md, "One PPO step"):

    task.sample -> policy rollout -> protocol.signal -> ppo.step -> harness (logged only) -> store

`run` is what `python -m oversight.train` calls; tests call it too.
"""

from __future__ import annotations

import copy
import json
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from oversight.engine import distributed
from oversight.engine.ppo import PolicyWithValue, PPOConfig, PPOTrainer, cpu_threads
from oversight.engine.sampling import generate
from oversight.errors import ConfigError
from oversight.experiment.config import EvalConfig, validate
from oversight.experiment.harness import Harness
from oversight.judges import Judge
from oversight.models.base_model import base_model
from oversight.models.policy import PolicyConfig
from oversight.models.tokenizer import decode, encode
from oversight.store import Store
from oversight.tasks import Task, build_task
from protocols import Protocol, ProtocolContext


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build(node: Any, kind: str) -> Any:
    """Instantiate a config node (a judge, a protocol), or a one-line ConfigError."""
    try:
        return instantiate(node, _convert_="all")
    except Exception as e:  # Hydra wraps the real cause several layers deep
        cause = e
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise ConfigError(f"cannot build {kind}: {cause}") from None


def build_judge(cfg: DictConfig, task: Task) -> Judge:
    judge: Judge = build(cfg.judge, "judge")
    judge.attach(task)
    return judge


def protocol_context(
    cfg: DictConfig,
    task: Task,
    judge: Judge,
    base: PreTrainedModel,
    tok: Any,
    device: torch.device,
    generate: Any,
) -> ProtocolContext:
    """What a protocol gets: its problems come from their own split, drawn in order."""
    counter = iter(range(10**9))
    return ProtocolContext(
        judge=judge,
        base_model=base,
        tokenizer=tok,
        device=device,
        generate=generate,
        sample_problems=lambda n: task.sample(n, seed=next(counter), split=f"protocol-{cfg.seed}"),
        rng=random.Random(cfg.seed),
        seed=cfg.seed,
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


def run(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    t_start = time.perf_counter()
    validate(cfg)  # a bad value stops here: nothing built, nothing written, no store opened
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
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
    store = Store(cfg.store.url if distributed.is_main() else "sqlite://")
    base, tok, base_meta = base_model(policy_cfg, task, task_cfg, device)
    if device.type == "cpu" and not cfg.threads:
        # Auto: the base model's SFT (batched, once) gains from every core; PPO on a small
        # policy runs faster on one thread (see cpu_threads).
        torch.set_num_threads(cpu_threads(cfg.policy.n_embd, cfg.policy.path))

    run_id = store.start_run(
        str(output_dir.name), protocol.name, judge.name, cfg.seed, resolved, str(output_dir)
    )
    try:
        summary = _train(
            _Run(cfg, resolved, task, base, tok, base_meta, judge, protocol, store, run_id),
            policy_cfg,
            ppo_cfg,
            eval_cfg,
            device,
            output_dir,
            t_start,
        )
    except BaseException:
        store.finish_run(run_id, "failed")
        raise
    store.finish_run(run_id, "finished", summary)
    return summary


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
    ctx = protocol_context(cfg, task, judge, base, tok, device, sample)

    records = protocol.setup(ctx)  # the same on every rank: same seeds, same draws
    rank = distributed.rank()
    if rank:  # several ranks: from here on each samples its own prompts and responses
        sample.generator.manual_seed(cfg.seed + rank)
    store.log_judgments(run_id, 0, records)
    base_eval = harness.evaluate(eval_sampler(), protocol.proxy_reward)
    metrics_file = (output_dir / "metrics.jsonl").open("w")
    gen = torch.Generator().manual_seed(cfg.seed + rank)
    tokens, rollout_seconds = 0, 0.0
    last_kl = 0.0
    for step in tqdm(range(1, ppo_cfg.steps + 1), desc=f"PPO ({protocol.name}, {judge.name})"):
        t0 = time.perf_counter()
        split = f"ppo-{cfg.seed}" + (f"-rank{rank}" if rank else "")
        problems = task.sample(ppo_cfg.batch_size, seed=step, split=split)
        ids, mask = encode(tok, [p.prompt for p in problems], device)
        ro = trainer.rollout(ids, mask, sample.generator)
        texts = decode(tok, ro.responses, tok.eos_token_id)
        signal = protocol.signal(problems, texts, step)
        if signal.sft_targets is not None:
            raise NotImplementedError(
                "the PPO core does not consume SFT targets yet; no protocol emits them"
            )
        stats = trainer.step(ro, signal.rewards, gen)
        seconds = time.perf_counter() - t0
        n_tokens = int(ro.mask.sum())
        tokens += n_tokens
        rollout_seconds += seconds
        last_kl = stats["kl"]
        records += signal.judgments
        store.log_judgments(run_id, step, signal.judgments)
        row = {
            "step": step,
            **stats,
            **signal.info,
            "tokens_per_second": n_tokens / seconds,
            "seconds": seconds,
        }
        row |= flat(
            "train", harness.score(problems, texts)
        )  # truth read by the harness, logged only
        row |= flat("judge_cost", judge.cost.as_dict())
        if eval_cfg.every and step % eval_cfg.every == 0 and step != ppo_cfg.steps:
            row |= flat("eval", harness.evaluate(eval_sampler(), protocol.proxy_reward))
        metrics_file.write(json.dumps(row) + "\n")
        metrics_file.flush()
        store.log_metrics(run_id, step, row)
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
        "base": base_eval,
        "final": final_eval,
        "label_accuracy": harness.label_accuracy(records),
        "judge_cost": judge.cost.as_dict(),
        "kl": last_kl,
        "wall_seconds": time.perf_counter() - t_start,
        "tokens_per_second": tokens / max(rollout_seconds, 1e-9),
        "base_model": r.base_meta,
        "device": str(device),
        "run_id": run_id,
        "store_url": store.engine.url.render_as_string(hide_password=True),
    }
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary


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
