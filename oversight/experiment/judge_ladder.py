"""The ladder: how often one judge sides with the right answer, deciding alone, with a consultant,
with two debaters, and as the oracle, on the same answer pairs (Khan et al. 2024's comparison).

Per seed: two samples per problem commit to answers (when they agree, the second is the first's
work concluding another answer, as debate's `agree=assign`); the pairs where one answer is
right, by right work, and the other wrong are the ones every rung decides. The answers come from
a base model of the plain corpus (the kind every other protocol trains); the turns from the
debaters' own, whose corpus holds turn demonstrations (`task=arguing`). Both are pre-trained on
the ladder's own setting (the corpus draws its problems from task.min_steps..task.max_steps), so
they are not the default run's base models.

- naive: the judge compares the two answers, both ways round;
- consultancy (assigned): a consultant argues for one answer of the pair, drawn 50/50; the judge
  accepts or rejects it, and is right when it accepts a right answer or rejects a wrong one;
- consultancy (open): the consultant argues for the pair's first answer, the answerer's own
  first sample (as if it had picked its side);
- debate (best of N): the two sides argue (`protocols.debate.Debate`), the judge picks a winner;
- interactive debate: the same, the judge testing one claimed step between rounds and both
  sides reading what it found (with 2 rounds or more);
- oracle: a judge that checks every step, on the same pairs (the ceiling).

Debaters trained by PPO (`debaters`: a run's saved `policy/`, one per seed) argue in place of the
arguing base model, on the same answer pairs: debater strength as PPO steps of debate training.

The policies write every answer and turn; nothing is trained here. This is a measurement, so it
reads the truth (which pairs to keep, and whether the judge was right) through the harness only:
the protocols' code it runs sees what it sees in training.
"""

from __future__ import annotations

import copy
import json
import random
import statistics
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from oversight.errors import ConfigError
from oversight.experiment.config import validate
from oversight.experiment.harness import Harness, kind_prefix
from oversight.experiment.run import Sampler, build, build_judge, pick_device, protocol_context
from oversight.judges import Argued, Comparison, Judge, JudgmentRecord, Oracle, Transcript
from oversight.models.base_model import base_model
from oversight.models.policy import PolicyConfig, load_pretrained
from oversight.tasks import PublicProblem, build_task
from protocols.base import Speaker, another_answer
from protocols.consultancy import Consultancy
from protocols.debate import Debate

OVERRIDES = (
    "task.min_steps=6",
    "task.max_steps=8",
    "judge=simulated",
    "competence=2",
    "policy.max_new_tokens=96",
    "protocol=debate",
    "protocol.rounds=2",
)
"""The ladder's setting (Hydra overrides, before the command line's): long problems, a judge
that checks two steps per answer, room for an 8-step answer, two rounds so the interactive
judge has a point between them to speak at; `protocol.*` sets the debate's rounds and best-of
(the consultant argues as many rounds)."""


@dataclass
class Rung:
    name: str
    accuracy: float | None
    """fraction of items on which the judge sided with the right answer"""
    items: int
    checks_per_item: float


def answer_pairs(
    text: Any, sample: Any, problems: list[PublicProblem], rng: random.Random
) -> list[tuple[PublicProblem, str, str]]:
    """Two committed answers per problem: the policy's two samples, or, when they agree, its
    first and that work concluding another answer."""
    n = len(problems)
    answers = sample([p.prompt for p in problems] * 2)
    out = []
    for p, a, b in zip(problems, answers[:n], answers[n:], strict=True):
        if text.final_answer(a) == text.final_answer(b):
            b = another_answer(text, a, rng) or b
        out.append((p, a, b))
    return out


def _rung(
    name: str, judge: Judge, harness: Harness, kind: str, records: list[JudgmentRecord]
) -> Rung:
    checks = judge.cost.checks
    judge.cost.checks = 0
    acc = harness.label_accuracy(records).get(kind_prefix(kind) + "beyond")
    return Rung(name, acc, len(records), checks / max(len(records), 1))


def climb(
    cfg: DictConfig, problems: int, device: torch.device, debaters: Path | None = None
) -> list[Rung]:
    """One seed's ladder on `problems` fresh problems (fewer pairs: those with one right answer);
    `debaters`: a trained policy's directory, arguing instead of the arguing base model."""
    validate(cfg)
    torch.manual_seed(cfg.seed)
    task_cfg = OmegaConf.to_container(cfg.task, resolve=True)
    assert isinstance(task_cfg, dict)
    task = build_task(task_cfg)
    policy_cfg = PolicyConfig(**cfg.policy)
    judge = build_judge(cfg, task)
    debate = build(cfg.protocol, "protocol")
    if not isinstance(debate, Debate):
        raise ConfigError("the ladder's debaters are protocol=debate's (protocol.rounds=...)")
    if debaters is None:
        base, tok, _ = base_model(policy_cfg, task, task_cfg, device, debate.alphabet)
    else:
        base, tok = load_pretrained(debaters)
        base.to(device)
    sample = Sampler(base, tok, policy_cfg, device, cfg.seed)
    debate.setup(protocol_context(cfg, task, judge, base, tok, device, sample))
    # The answers come from a base model of the plain corpus, the kind every other protocol
    # trains: the arguing base model writes few right answers to long problems (docs/design.md).
    plain_cfg = {**task_cfg, "corpus_turns": 0.0}
    plain, plain_tok, _ = base_model(policy_cfg, build_task(plain_cfg), plain_cfg, device)
    answer = Sampler(plain, plain_tok, policy_cfg, device, cfg.seed)
    harness = Harness(task, cfg.competence, 0, 0)
    return rungs(debate, harness, task.sample(problems, seed=cfg.seed, split="ladder"), answer)


def rungs(
    debate: Debate,
    harness: Harness,
    problems: list[PublicProblem],
    answer: Callable[[list[str]], list[str]] | None = None,
) -> list[Rung]:
    """Every rung on the answer pairs of `problems` with one right answer and one wrong, the
    answers written by `answer` (default: the debaters' policy): the judge and the arguing
    policy are `debate`'s (its context's), the consultant argues as many rounds."""
    ctx = debate.ctx
    assert ctx.text is not None
    consult = Consultancy(rounds=debate.rounds)
    consult.setup(ctx)
    oracle = Oracle()
    oracle.attach(harness.task)
    judge = ctx.judge
    # one answer right by right work, the other wrong: a right answer reached by wrong steps
    # is one no judge should vouch for, and even the oracle could not tell such a pair apart
    pairs = [
        (p, a, b)
        for p, a, b in answer_pairs(ctx.text, answer or ctx.generate, problems, ctx.rng)
        if (harness.sound(p, a) and not harness.correct(p, b))
        or (harness.sound(p, b) and not harness.correct(p, a))
    ]
    comparisons = [Comparison(p, a, b) for p, a, b in pairs]
    speak = Speaker(ctx, train=False)
    ids = list(range(len(pairs)))

    def records(items: list[Any], outcomes: list[Any]) -> list[JudgmentRecord]:
        return [JudgmentRecord(it, o, "ladder") for it, o in zip(items, outcomes, strict=True)]

    out = []
    judge.cost.checks = 0
    naive = judge.decide_both_ways(comparisons, ctx.rng)
    out.append(_rung("naive", judge, harness, "pair", records(comparisons, naive)))
    for mode, sides in (
        ("assigned", [(a, b)[ctx.rng.random() < 0.5] for _, a, b in pairs]),
        ("open", [a for _, a, _ in pairs]),
    ):
        start = [Argued(p, s) for (p, _, _), s in zip(pairs, sides, strict=True)]
        cases = consult.argue(start, speak, ids)
        verdicts = consult.judge(cases)
        out.append(
            _rung(f"consultancy ({mode})", judge, harness, "argued", records(cases, verdicts))
        )
    best = "" if debate.best_of == 1 else f", best of {debate.best_of}"
    for interactive in (False, True)[: 1 + (debate.rounds > 1)]:
        arguing = copy.copy(debate)
        arguing.interactive = interactive
        debates = arguing.debate([Transcript(p, a, b) for p, a, b in pairs], speak)
        verdicts = arguing.judge(debates)
        name = f"{'interactive ' * interactive}debate{best}"
        out.append(_rung(name, judge, harness, "debate", records(debates, verdicts)))
    truth = oracle.decide_both_ways(comparisons, ctx.rng)
    out.append(_rung("oracle", oracle, harness, "pair", records(comparisons, truth)))
    return out


def summarise(by_seed: list[list[Rung]]) -> list[dict[str, Any]]:
    """Per rung: mean and sd of accuracy over seeds, pairs and checks per item (means)."""
    out = []
    for rungs in zip(*by_seed, strict=True):
        accs = [r.accuracy for r in rungs if r.accuracy is not None]
        out.append(
            {
                "rung": rungs[0].name,
                "accuracy": statistics.fmean(accs) if accs else None,
                "sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "items": statistics.fmean(r.items for r in rungs),
                "checks_per_item": statistics.fmean(r.checks_per_item for r in rungs),
                "seeds": [r.accuracy for r in rungs],
            }
        )
    return out


def plot(summary: list[dict[str, Any]], title: str, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    names = [textwrap.fill(s["rung"], 14) for s in summary]
    means = [s["accuracy"] or 0.0 for s in summary]
    ax.bar(names, means, yerr=[s["sd"] for s in summary], capsize=4, color="tab:blue")
    for i, m in enumerate(means):
        ax.text(i + 0.1, m + 0.02, f"{m:.2f}", ha="left")  # beside the error bar
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set(ylim=(0, 1.1), ylabel="judge accuracy (beyond)", title=title)
    fig.savefig(path, dpi=120)


def strength(by_n: dict[int, list[dict[str, Any]]], path: Path) -> dict[str, Any]:
    """Judge accuracy against the debaters' best-of-N (`by_n`: N -> that ladder's summary),
    debate's rungs as lines, naive and oracle as the levels they hold at every N; written to
    `path` (a plot) and beside it as strength.json."""
    from matplotlib.figure import Figure

    ns = sorted(by_n)
    lines: dict[str, list[tuple[float, float]]] = {}
    for n in ns:
        for s in by_n[n]:
            name = s["rung"].split(", best of")[0]
            lines.setdefault(name, []).append((s["accuracy"] or 0.0, s["sd"]))
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for name, points in lines.items():
        mean, sd = zip(*points, strict=True)
        if "debate" in name:
            ax.errorbar(ns, mean, yerr=sd, marker="o", capsize=3, label=name)
        elif name in ("naive", "oracle"):
            ax.axhline(
                statistics.fmean(mean), ls="--", lw=1, color="grey" if name == "naive" else "k"
            )
            ax.text(ns[0], statistics.fmean(mean) + 0.01, name, fontsize=8)
    ax.set_xscale("log", base=2)
    ax.minorticks_off()
    ax.set(xticks=ns, xticklabels=[str(n) for n in ns], ylim=(0.4, 1.05))
    ax.set(xlabel="debaters' best of N per turn", ylabel="judge accuracy (beyond)")
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=120)
    record = {"best_of": ns, "rungs": {k: [m for m, _ in v] for k, v in lines.items()}}
    (path.parent / "strength.json").write_text(json.dumps(record, indent=2))
    return record


def ladder(
    cfg_for_seed: Any,
    seeds: list[int],
    problems: int,
    out: Path,
    device: str = "auto",
    debaters: list[Path] | None = None,
) -> list[dict[str, Any]]:
    """The ladder over `seeds` (`cfg_for_seed(seed)` composes each seed's config), written to
    `out`/ladder.json and ladder.png; returns the summary. `debaters`: per seed, a trained
    policy's directory that argues instead of the arguing base model."""
    if debaters is not None and len(debaters) != len(seeds):
        raise ConfigError(f"{len(debaters)} debaters for {len(seeds)} seeds: give one per seed")
    for d in debaters or []:
        if not (d / "config.json").is_file():
            raise ConfigError(f"debaters {str(d)!r}: not a saved policy (a run's policy/ folder)")
    out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    by_seed = []
    trained: list[Path | None] = list(debaters) if debaters else [None] * len(seeds)
    for seed, arguer in zip(tqdm(seeds, desc="ladder seeds"), trained, strict=True):
        cfg = cfg_for_seed(seed)
        if dev.type == "cpu" and cfg.threads:
            torch.set_num_threads(cfg.threads)
        by_seed.append(climb(cfg, problems, dev, arguer))
    summary = summarise(by_seed)
    cfg = cfg_for_seed(seeds[0])
    setting = {
        "steps": f"{cfg.task.min_steps}-{cfg.task.max_steps}",
        "competence": cfg.competence,
        "rounds": cfg.protocol.rounds,
        "best_of": cfg.protocol.best_of,
        "problems": problems,
        "seeds": seeds,
        "debaters": None if debaters is None else [str(d) for d in debaters],
        "judge": OmegaConf.to_container(cfg.judge, resolve=True),
    }
    record = {
        "setting": setting,
        "summary": summary,
        "by_seed": [[asdict(r) for r in rs] for rs in by_seed],
    }
    (out / "ladder.json").write_text(json.dumps(record, indent=2))
    title = (
        f"{setting['steps']}-step problems, judge competence {cfg.competence}, "
        f"{setting['rounds']} rounds, best of {setting['best_of']}, {len(seeds)} seeds"
        + ("" if debaters is None else ", trained debaters")
    )
    plot(summary, title, out / "ladder.png")
    return summary
