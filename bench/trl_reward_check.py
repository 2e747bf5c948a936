"""Our last-token Bradley-Terry reward model against TRL's RewardTrainer, on the same pairs.

Runs the RLHF protocol's own `setup` on the default config with the oracle judge (`--pairs`
oracle-labelled pairs of base-policy answers; our reward model, readout "last", fitted on them).
A `LlamaForSequenceClassification(num_labels=1)` from the same base-model trunk is then trained
by TRL's `RewardTrainer` on the same decided pairs (prompt + response + EOS, chosen = the
oracle's pick) with our optimiser settings (AdamW, lr 3e-4, weight decay 0.01, constant lr, grad
clip 1.0, 3 epochs, batch 32). Both are scored on the decisive held-out pairs of
bench/reward_model_probe.py, by what is wrong with the losing answer.

Why: on oracle labels our last-token readout stays at chance on wrong-step pairs (README, "What
the demo shows"). If TRL's reward model learns them from the same pairs and trunk, ours has a
bug; if not, the readout is the limit. About 2 minutes on one CPU thread:

    .venv/bin/python bench/trl_reward_check.py [--pairs 2048] [--seed 0]
"""

from __future__ import annotations

import copy
import tempfile
import time

import torch
from datasets import Dataset
from reward_model_probe import (  # bench/ is on sys.path
    KINDS,
    arguments,
    heldout,
    kind,
    load,
)
from transformers import LlamaForSequenceClassification, PreTrainedTokenizerBase
from trl import RewardConfig, RewardTrainer

from oversight.experiment.run import Sampler, build, build_judge, protocol_context
from oversight.judges import Verdict
from oversight.tasks.base import truth_access
from protocols.rlhf import RLHF

Decisive = dict[str, list[tuple[int, bool]]]  # kind of the losing answer -> (pair, a is right)


def accuracy(r_a: torch.Tensor, r_b: torch.Tensor, decisive: Decisive) -> dict[str, float]:
    acc = {
        k: sum(bool(r_a[i] > r_b[i]) == ar for i, ar in v) / max(len(v), 1)
        for k, v in decisive.items()
    }
    n = sum(len(v) for v in decisive.values())
    acc["all"] = sum(acc[k] * len(v) for k, v in decisive.items()) / n
    return acc


def trl_scores(
    model: torch.nn.Module, tok: PreTrainedTokenizerBase, prompts: list[str], responses: list[str]
) -> torch.Tensor:
    """Logit at the last non-pad token of prompt + response + EOS, right-padded as in training."""
    texts = [p + r + tok.eos_token for p, r in zip(prompts, responses, strict=True)]
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(texts), 256):
            kw = dict(padding=True, padding_side="right", add_special_tokens=False)
            enc = tok(texts[i : i + 256], return_tensors="pt", **kw)
            out.append(model(**enc).logits.squeeze(-1).float())
    return torch.cat(out)


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    t0 = time.perf_counter()
    cfg, task, device, policy_cfg, base, tok = load(args.pairs, args.seed)

    # Held-out decisive pairs by kind, as bench/reward_model_probe.py builds them.
    problems, prompts, a, b, verdicts = heldout(cfg, task, base, tok, policy_cfg, device, args.seed)
    decisive: Decisive = {k: [] for k in KINDS}
    with truth_access():
        for i, (q, v) in enumerate(zip(problems, verdicts, strict=True)):
            if isinstance(v, Verdict) and v.prob_a != 0.5:
                lose = b[i] if v.prefers_a else a[i]
                k = kind(task.steps(lose), task.final_answer(lose), task.truth.get(q.id), q.belief)
                decisive[k].append((i, v.prefers_a))
    print("held-out decisive: " + ", ".join(f"{k} {len(v)}" for k, v in decisive.items()))

    # Ours: the protocol's own setup (collect, oracle labels, fit).
    judge, protocol = build_judge(cfg, task), build(cfg.protocol, "protocol")
    assert isinstance(protocol, RLHF) and protocol.rm_cfg.readout == "last"
    ctx = protocol_context(
        cfg, task, judge, base, tok, device, Sampler(base, tok, policy_cfg, device, cfg.seed)
    )
    torch.manual_seed(cfg.seed)
    t = time.perf_counter()
    records = protocol.setup(ctx)
    ours_s = time.perf_counter() - t
    ours = accuracy(protocol.rm.score(prompts, a), protocol.rm.score(prompts, b), decisive)
    ours["train"] = protocol.stats["rm_train_accuracy"]

    # TRL: same trunk, same decided pairs, hard labels.
    dec = [(r.item, r.outcome) for r in records if isinstance(r.outcome, Verdict)]
    print(f"train pairs: {len(records)}, oracle prob_a values {sorted({v.prob_a for _, v in dec})}")
    dec = [(c, v) for c, v in dec if v.prob_a != 0.5]
    tp = [c.problem.prompt for c, _ in dec]
    chosen = [c.a if v.prefers_a else c.b for c, v in dec]
    rejected = [c.b if v.prefers_a else c.a for c, v in dec]
    data = Dataset.from_dict({"prompt": tp, "chosen": chosen, "rejected": rejected})
    cls_cfg = copy.deepcopy(base.config)
    cls_cfg.num_labels, cls_cfg.pad_token_id = 1, tok.pad_token_id
    torch.manual_seed(cfg.seed)
    model = LlamaForSequenceClassification(cls_cfg)
    model.model.load_state_dict(base.model.state_dict())
    rc, out = protocol.rm_cfg, tempfile.mkdtemp(prefix="trl_rm_")
    same = dict(learning_rate=rc.lr, num_train_epochs=rc.epochs, max_grad_norm=1.0)
    same |= dict(per_device_train_batch_size=rc.batch_size, lr_scheduler_type="constant")
    same |= dict(weight_decay=0.01, seed=cfg.seed)  # 0.01: torch AdamW's default, as ours
    quiet = dict(report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True)
    cpu = dict(use_cpu=True, bf16=False, activation_checkpointing=False, max_length=None)
    trl_args = RewardConfig(output_dir=out, eval_strategy="no", **same, **quiet, **cpu)
    trainer = RewardTrainer(model=model, args=trl_args, train_dataset=data, processing_class=tok)
    want = tok(
        [p + c + tok.eos_token for p, c in zip(tp, chosen, strict=True)], add_special_tokens=False
    )
    assert trainer.train_dataset["chosen_ids"] == want["input_ids"], "TRL tokenises differently"
    t = time.perf_counter()
    trainer.train()
    trl_s = time.perf_counter() - t
    trl = accuracy(trl_scores(model, tok, prompts, a), trl_scores(model, tok, prompts, b), decisive)
    trl["train"] = float(
        (trl_scores(model, tok, tp, chosen) > trl_scores(model, tok, tp, rejected)).float().mean()
    )

    print(
        f"\npairs {args.pairs}, seed {args.seed}, oracle labels; accuracy on decisive held-out pairs, by what is wrong with the losing answer"
    )
    head = f"{'model':<19}{'all':>6}" + "".join(f"{k:>12}" for k in KINDS)
    head += f"{'train acc':>10}{'fit s':>7}"
    print(head + "\n" + "-" * len(head))
    for name, acc, s in (("ours (last)", ours, ours_s), ("TRL RewardTrainer", trl, trl_s)):
        cells = "".join(f"{acc[k]:>12.3f}" if decisive[k] else f"{'-':>12}" for k in KINDS)
        print(f"{name:<19}{acc['all']:>6.3f}{cells}{acc['train']:>10.3f}{s:>7.0f}")
    print(
        "\nours: fit s includes sampling and labelling the pairs, train acc is over the last epoch;"
        f" TRL: train acc after training. Total {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
