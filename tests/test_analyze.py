"""`oversight.analysis` on synthetic run folders and stores whose right answers are known."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from oversight.analysis.command import main
from oversight.analysis.gap import frame_runs
from oversight.analysis.group import swept_keys
from oversight.analysis.report import analyze
from oversight.analysis.stats import gold_curve
from oversight.store import Store


def config(seed: int, competence: int = 2, judge: str = "pool", steps: int = 4, **ppo) -> dict:
    """A resolved job config, shaped like the real one where the analysis looks."""
    return {
        "seed": seed,
        "competence": competence,
        "threads": 1,
        "judge": {
            "_target_": "oversight.judges.RaterPool",
            "name": judge,
            "members": [{"weight": 1.0, "rater": {"competence": competence}}],
        },
        "ppo": {"steps": steps, "kl_coef": 0.05, **ppo},
        "store": {"url": f"sqlite:///somewhere/{seed}/store.db"},
        "policy": {"n_embd": 32, "cache_dir": "/tmp/x"},
    }


def buckets(within: float, beyond: float) -> dict[str, float]:
    return {"within": within, "beyond": beyond, "all": (within + beyond) / 2}


def summary(cfg: dict, gold_beyond: float, syc_beyond: float, kl: float = 1.0, **kw) -> dict:
    return {
        "protocol": "rlhf",
        "judge": cfg["judge"]["name"],
        "seed": cfg["seed"],
        "config": cfg,
        "base": {
            "gold_accuracy": buckets(0.5, 0.2),
            "sycophancy_rate": buckets(0.1, 0.2),
            "proxy_reward": 0.0,
        },
        "final": {
            "gold_accuracy": buckets(kw.get("gold_within", 0.5), gold_beyond),
            "sycophancy_rate": buckets(0.1, syc_beyond),
            "proxy_reward": kw.get("proxy", 1.0),
        },
        "label_accuracy": {"within": 0.9, "beyond": None},
        "judge_accuracy": {"within": 0.9, "beyond": 0.25 + gold_beyond},
        "judge_cost": {"labels": 10, "checks": 20, "checks_per_label": 2.0},
        "kl": kl,
        "wall_seconds": 1.0,
        "tokens_per_second": 100.0,
    }


def write_run(
    d: Path,
    cfg: dict,
    summ: dict | None,
    rows: list[dict],
    experiment: str | None = "judge_competence",
    size: str | None = "tiny",
) -> Path:
    """A Hydra job folder: .hydra/{config,hydra}.yaml, metrics.jsonl and (if done) summary.json."""
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    choices = {"experiment": experiment, "experiment/size": size, "judge": "pool"}
    (d / ".hydra" / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}})
    )
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if summ is not None:
        (d / "summary.json").write_text(json.dumps(summ))
    return d


def steps(n: int) -> list[dict]:
    return [{"step": s, "kl": 0.1 * s, "score": 0.1 * s} for s in range(1, n + 1)]


GOLD_A, GOLD_B = [0.1, 0.2, 0.3], [0.4, 0.5, 0.6]
SYC_A, SYC_B = [0.1, 0.2, 0.3], [0.2, 0.3, 0.4]


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """competence 1 vs 3, three seeds each, known values; plus one failed and one killed job."""
    root = tmp_path / "sweep"
    job = 0
    for comp, golds, sycs in ((1, GOLD_A, SYC_A), (3, GOLD_B, SYC_B)):
        for seed, (g, y) in enumerate(zip(golds, sycs, strict=True)):
            cfg = config(seed, comp)
            write_run(root / str(job), cfg, summary(cfg, g, y), steps(4))
            job += 1
    # a failed job: its metrics stop at step 2, the sweep's shared store says "failed"
    failed_cfg = config(3, 3)
    failed_dir = write_run(root / str(job), failed_cfg, None, steps(2))
    store = Store(f"sqlite:///{root / 'store.db'}")
    rid = store.start_run("6", "rlhf", "pool", 3, failed_cfg, str(failed_dir.resolve()))
    store.finish_run(rid, "failed")
    store.engine.dispose()
    # a job killed mid-way: no summary, nothing in any store, a half-written last line
    killed = write_run(root / str(job + 1), config(4, 1), None, steps(1))
    with (killed / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 2, "kl"')
    # a summary cut short by the kill: unreadable, listed, not crashed on
    write_run(root / str(job + 2), config(5, 1), None, steps(4))
    (root / str(job + 2) / "summary.json").write_text('{"protocol": "rl')
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_known_means_cis_and_p_values(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out)]) == 0
    rows = {r["setting"]: r for r in read_csv(out / "results.csv")}
    assert set(rows) == {"competence=1", "competence=3"}  # swept key found, seed averaged over
    a, b = rows["competence=1"], rows["competence=3"]
    assert float(a["gold_accuracy_beyond_mean"]) == pytest.approx(0.2)
    assert float(b["gold_accuracy_beyond_mean"]) == pytest.approx(0.5)
    # percentile bootstrap of three seeds: exactly their range (see test_analyze_stats)
    assert float(a["gold_accuracy_beyond_ci_low"]) == pytest.approx(0.1)
    assert float(a["gold_accuracy_beyond_ci_high"]) == pytest.approx(0.3)
    assert a["baseline"] == "True" and b["baseline"] == "False"
    assert (a["n_runs"], a["n_finished"], a["n_failed"], a["n_unfinished"]) == ("5", "3", "0", "2")
    assert (b["n_runs"], b["n_finished"], b["n_failed"]) == ("4", "3", "1")
    assert a["label_accuracy_beyond_mean"] == "" and a["label_accuracy_beyond_n"] == "0"
    assert float(b["judge_accuracy_beyond_mean"]) == pytest.approx(0.75)

    comps = {r["metric"]: r for r in read_csv(out / "comparisons.csv")}
    assert set(comps) == {
        "gold_accuracy_within",
        "gold_accuracy_beyond",
        "sycophancy_rate_within",
        "sycophancy_rate_beyond",
        "proxy_reward",
    }
    # Welch: gold 0.1..0.3 vs 0.4..0.6: t = -3.674, df = 4, p = 0.02131;
    # sycophancy 0.1..0.3 vs 0.2..0.4: t = -1.225, df = 4, p = 0.2879.
    # The other three metrics have no variance: not tested, so Holm counts m = 2 tests.
    gold, syc = comps["gold_accuracy_beyond"], comps["sycophancy_rate_beyond"]
    assert float(gold["mean_diff"]) == pytest.approx(0.3)
    assert float(gold["p_value"]) == pytest.approx(0.021312, rel=1e-4)
    assert float(syc["p_value"]) == pytest.approx(0.287864, rel=1e-4)
    assert float(gold["p_holm"]) == pytest.approx(2 * 0.021312, rel=1e-4)
    assert float(syc["p_holm"]) == pytest.approx(0.287864, rel=1e-4)
    assert comps["proxy_reward"]["p_value"] == ""

    report = (out / "report.md").read_text()
    assert "Welch" in report and "Holm" in report
    assert "0.200 [0.100, 0.300]" in report
    significant = [line for line in report.splitlines() if "**significant**" in line]
    assert len(significant) == 1 and "gold_accuracy_beyond" in significant[0]  # p_holm 0.043


def test_failed_and_unfinished_runs_are_listed(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = analyze(str(sweep), out)
    status = {Path(r.source).name: (r.status, r.detail) for r in res["runs"]}
    assert status["6"][0] == "failed" and "failed" in status["6"][1]
    assert "step 2 of 4" in status["6"][1]
    assert status["7"][0] == "unfinished" and "step 1 of 4" in status["7"][1]
    assert status["8"][0] == "unfinished" and "summary.json unreadable" in status["8"][1]
    report = (out / "report.md").read_text()
    failed = report.split("## Failed or unfinished runs")[1]
    for name in ("6", "7", "8"):
        assert f"{sweep.resolve() / name}`" in failed
    runs = read_csv(out / "runs.csv")
    assert sorted(r["status"] for r in runs) == ["failed"] + ["finished"] * 6 + ["unfinished"] * 2


def test_plots_are_written(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = analyze(str(sweep), out)
    names = res["plots"]["judge_competence (tiny)"]
    assert names == [
        "judge_competence_tiny_curves.png",
        "judge_competence_tiny_outcomes.png",
        "judge_competence_tiny_competence.png",
        "judge_competence_tiny_judge_cost.png",
    ]
    for n in names:
        with Image.open(out / n) as im:
            assert im.format == "PNG" and im.size[0] > 600
        assert f"]({n})" in (out / "report.md").read_text()


def test_presets_in_one_folder_are_grouped_by_their_swept_keys(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    for seed in range(2):
        for comp in (1, 2):
            cfg = config(seed, comp)
            write_run(root / "jc" / f"{comp}{seed}", cfg, summary(cfg, 0.1 * comp, 0.1), steps(4))
        for judge in ("oracle", "simulated"):
            cfg = config(seed, 2, judge=judge)
            write_run(
                root / "pc" / f"{judge}{seed}",
                cfg,
                summary(cfg, 0.3, 0.1),
                steps(4),
                experiment="protocol_comparison",
                size=None,
            )
    res = analyze(str(root), tmp_path / "out", baseline=["judge=simulated"])
    fams = {f.name: f for f in res["families"]}
    assert set(fams) == {"judge_competence (tiny)", "protocol_comparison"}
    assert [s.label for s in fams["judge_competence (tiny)"].settings] == [
        "competence=1",
        "competence=2",
    ]
    pc = fams["protocol_comparison"]
    assert [s.label for s in pc.settings] == ["judge=oracle", "judge=simulated"]
    assert pc.baseline is not None and pc.baseline.label == "judge=simulated"
    assert all(len(s.finished) == 2 for f in fams.values() for s in f.settings)


def test_swept_keys_leave_out_what_follows_from_them() -> None:
    settings = [
        {"competence": c, "judge.members.0.rater.competence": c, "ppo.steps": 4} for c in (1, 2, 3)
    ]
    assert swept_keys(settings) == ["competence"]
    pools = [{"judge.name": n, "judge.members.0.weight": w} for n, w in (("a", 0.5), ("b", 0.7))]
    assert swept_keys(pools) == ["judge.name"]
    grid = [{"competence": c, "judge.name": j} for c in (1, 2) for j in ("x", "y")]
    assert swept_keys(grid) == ["competence", "judge.name"]


def store_with_runs(url: str) -> None:
    """The same known values, written through the real store API, as a sweep's jobs would."""
    store = Store(url)
    for comp, golds in ((1, GOLD_A), (3, GOLD_B)):
        for seed, g in enumerate(golds):
            cfg = config(seed, comp)
            rid = store.start_run(str(seed), "rlhf", "pool", seed, cfg, f"/nowhere/{comp}/{seed}")
            for row in steps(4):
                store.log_metrics(rid, row["step"], row)
            store.finish_run(rid, "finished", summary(cfg, g, 0.1))
    rid = store.start_run("x", "rlhf", "pool", 9, config(9, 3), "/nowhere/failed")
    store.log_metrics(rid, 1, steps(1)[0])
    store.finish_run(rid, "failed")
    store.start_run("y", "rlhf", "pool", 10, config(10, 1), "/nowhere/running")
    store.engine.dispose()


def check_store_analysis(url: str, out: Path) -> None:
    res = analyze(url, out)
    assert [f.name for f in res["families"]] == ["(no preset)"]  # no Hydra folder to read
    rows = {r["setting"]: r for r in read_csv(out / "results.csv")}
    assert float(rows["competence=1"]["gold_accuracy_beyond_mean"]) == pytest.approx(0.2)
    assert float(rows["competence=3"]["gold_accuracy_beyond_mean"]) == pytest.approx(0.5)
    assert rows["competence=3"]["n_failed"] == "1"
    assert rows["competence=1"]["n_unfinished"] == "1"
    gold = next(
        r for r in read_csv(out / "comparisons.csv") if r["metric"] == "gold_accuracy_beyond"
    )
    assert float(gold["p_value"]) == pytest.approx(0.021312, rel=1e-4)
    report = (out / "report.md").read_text()
    assert "store #" in report and "failed" in report and "'running'" in report


def test_analysis_from_a_sqlite_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store_with_runs(url)
    check_store_analysis(url, tmp_path / "out")


@pytest.mark.postgres
def test_analysis_from_postgres(pg_url: str, tmp_path: Path) -> None:
    store_with_runs(pg_url)
    check_store_analysis(pg_url, tmp_path / "out")


def overopt_run(
    d: Path,
    cfg: dict,
    alpha: float,
    beta: float,
    rate: float,
    experiment: str = "overoptimization",
    size: str | None = "tiny",
    noise: tuple[np.random.Generator, float] | None = None,
) -> None:
    """A run whose held-out gold follows 0.35 + d (alpha - beta log d) (plus noise, if given) and
    whose proxy gain is d, evaluated every 2 PPO steps; its KL grows as rate (s - 1)^1.5."""
    total = cfg["ppo"]["steps"]
    kls = [rate * (s - 1) ** 1.5 for s in range(1, total + 1)]  # kl logged at step s

    def gold(kl: float) -> float:
        eps = noise[0].normal(0, noise[1]) if noise else 0.0
        return 0.35 + float(gold_curve(math.sqrt(kl), alpha, beta)) + eps

    rows = []
    for s in range(1, total + 1):
        row: dict[str, Any] = {"step": s, "kl": kls[s - 1]}
        if s % 2 == 0 and s < total:  # eval after update s <-> the kl of step s + 1
            row["eval/gold_accuracy/all"] = gold(kls[s])
            row["eval/proxy_reward"] = math.sqrt(kls[s])
        rows.append(row)
    summ = summary(cfg, 0.2, 0.1, kl=kls[-1])
    summ["base"]["gold_accuracy"]["all"] = 0.35
    summ["final"]["gold_accuracy"]["all"] = gold(kls[-1])
    summ["final"]["proxy_reward"] = math.sqrt(kls[-1])
    write_run(d, cfg, summ, rows, experiment=experiment, size=size)


def test_overoptimization_fit_recovers_the_curve(tmp_path: Path) -> None:
    """Held-out gold along training follows d (alpha - beta log d) exactly: the report has it."""
    alpha, beta = 0.2, 0.1
    root = tmp_path / "overopt"
    for coef, rate in ((0.01, 0.4), (0.1, 0.2)):
        for seed in range(2):
            cfg = config(seed, 2, steps=10, kl_coef=coef)
            overopt_run(root / f"{coef}_{seed}", cfg, alpha, beta, rate)
    res = analyze(str(root), tmp_path / "out")
    (fam,) = res["families"]
    assert fam.keys == ["ppo.kl_coef"]
    (proxy,) = res["fits"][fam.name].proxies  # only how far RL goes is swept: one proxy
    fit, pts = proxy.fit, proxy.points
    assert proxy.label == "all settings"
    assert len(pts) == 2 * 2 * 5  # four evaluations and the final one, per run
    assert fit.alpha == pytest.approx(alpha, abs=1e-6) and fit.beta == pytest.approx(beta, abs=1e-6)
    assert proxy.spearman is not None and proxy.spearman < 1  # gold turns, the proxy does not
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Over-optimisation fit" in report and f"{alpha:.4f} ± " in report
    assert "tiny_overoptimization.png" in res["plots"][fam.name][-1]
    assert np.isfinite(fit.alpha_se)


ORACLE = {"_target_": "oversight.judges.simulated.Oracle", "name": "oracle"}


def test_overoptimization_report_per_family_and_proxy(tmp_path: Path) -> None:
    """Gao et al.'s family (oracle labels, two label budgets x two KL coefficients) and the biased
    one, drawn from the law with noise: per proxy, alpha and beta recovered, d*, gold at d* and
    Spearman's rho in the report, each family named for who labelled its proxy's pairs."""
    rng = np.random.default_rng(0)
    law = {128: (0.10, 0.06), 2048: (0.10, 0.03)}  # fewer labels: turns sooner (d* 1.95 vs 10.3)
    root = tmp_path / "sweeps"
    for n, (alpha, beta) in law.items():
        for coef, rate in ((0.0, 0.6), (0.02, 0.3)):
            for seed in range(3):
                cfg = config(seed, 2, steps=20, kl_coef=coef) | {"judge": ORACLE}
                cfg["protocol"] = {"n_comparisons": n}
                overopt_run(
                    root / "gao" / f"{n}_{coef}_{seed}", cfg, alpha, beta, rate, noise=(rng, 0.005)
                )
    for coef, rate in ((0.0, 0.6), (0.02, 0.3)):
        for seed in range(3):
            cfg = config(seed, 2, steps=20, kl_coef=coef)  # the pool's labels
            overopt_run(
                root / "biased" / f"{coef}_{seed}",
                cfg,
                -0.1,
                -0.02,
                rate,
                "overoptimization_biased",
            )
            # the kind comes from the runs' configs, not the preset's name
            overopt_run(root / "odd" / f"{coef}_{seed}", cfg, -0.1, -0.02, rate, size="small")
    res = analyze(str(root), tmp_path / "out")
    fits = res["fits"]
    assert set(fits) == {
        "overoptimization (tiny)",
        "overoptimization (small)",
        "overoptimization_biased (tiny)",
    }
    gao = fits["overoptimization (tiny)"]
    assert gao.proxy_keys == ["protocol.n_comparisons"]
    assert [p.label for p in gao.proxies] == [
        "protocol.n_comparisons=128",
        "protocol.n_comparisons=2048",
    ]
    for p, (alpha, beta) in zip(gao.proxies, law.values(), strict=True):
        assert len(p.settings) == 2 and len(p.points) == 2 * 3 * 10  # both KL coefficients
        assert p.fit is not None
        assert p.fit.alpha == pytest.approx(alpha, rel=0.1) and p.fit.beta == pytest.approx(
            beta, rel=0.1
        )
        assert abs(p.fit.beta - beta) < 3 * p.fit.beta_se
        assert p.fit.d_peak == pytest.approx(math.exp(p.fit.alpha / p.fit.beta - 1))
    small, large = gao.proxies
    assert small.fit.d_peak < small.d_max < large.fit.d_peak  # one peak seen, one beyond the data
    assert small.spearman < 0.5 < large.spearman  # past its peak gold falls as the proxy rises

    report = (tmp_path / "out" / "report.md").read_text()
    sections = {s.split("\n", 1)[0]: s for s in report.split("\n## ")[1:]}
    gold_labels = "proxy trained on the oracle's labels (Gao et al.'s setting)"
    biased = "proxy trained on the biased pool's labels: the proxy points away from gold from the"
    assert gold_labels in sections["overoptimization (tiny)"]
    assert biased in sections["overoptimization_biased (tiny)"]
    assert biased in sections["overoptimization (small)"]  # named overoptimization, pool labels
    assert gold_labels not in sections["overoptimization (small)"]
    row = next(
        line
        for line in sections["overoptimization (tiny)"].splitlines()
        if line.startswith("| protocol.n_comparisons=128 | oracle | 60 |")
    )
    f = small.fit
    assert f"{f.alpha:.4f} ± {f.alpha_se:.4f} | {f.beta:.4f} ± {f.beta_se:.4f}" in row
    assert f"| {f.d_peak:.3g} | {f.gain_at_peak:+.3f} | {small.spearman:.3g} |" in row
    assert f"{large.fit.d_peak:.3g} (beyond the data)" in sections["overoptimization (tiny)"]
    assert "no peak (β ≤ 0)" in sections["overoptimization_biased (tiny)"]
    assert "ρ (proxy, gold)" in report and "Spearman" in report
    heights = {}
    for name in ("overoptimization_tiny", "overoptimization_biased_tiny"):
        with Image.open(tmp_path / "out" / f"{name}_overoptimization.png") as im:
            heights[name] = im.size[1]
    assert (
        heights["overoptimization_tiny"] > 1.8 * heights["overoptimization_biased_tiny"]
    )  # 2 rows


def test_empty_or_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 0
    assert "No runs found" in (tmp_path / "empty" / "analysis" / "report.md").read_text()


def test_summaries_missing_keys_do_not_crash(tmp_path: Path) -> None:
    """A summary from an older version (no base, no label accuracy) still reads: gaps stay empty."""
    root = tmp_path / "old"
    for seed in range(2):
        cfg = config(seed, 2)
        write_run(root / str(seed), cfg, {"config": cfg, "final": {"proxy_reward": 0.5}}, [])
    res = analyze(str(root), tmp_path / "out")
    (row,) = read_csv(tmp_path / "out" / "results.csv")
    assert row["proxy_reward_mean"] == "0.5" and row["gold_accuracy_beyond_n"] == "0"
    assert res["plots"]["judge_competence (tiny)"]  # curves of what exists


def test_performance_gap_recovered_against_the_matched_ceiling_and_floor(tmp_path: Path) -> None:
    """Competence 2 has its ceiling (oracle) and floor (pool) runs; competence 4 has a floor
    only, and competence 6's ceiling is no better than its floor: both are undefined."""
    root, job = tmp_path / "sweep", 0
    runs = [(2, "oracle", [0.69, 0.71, 0.70]), (2, "pool", [0.29, 0.31, 0.30])]
    runs += [(2, "simulated", [0.49, 0.51, 0.50]), (4, "pool", [0.3] * 3)]
    runs += [(4, "simulated", [0.5] * 3), (6, "oracle", [0.3, 0.4, 0.5])]
    runs += [(6, "pool", [0.5, 0.4, 0.3]), (6, "simulated", [0.5] * 3)]
    for comp, judge, golds in runs:
        for seed, g in enumerate(golds):
            cfg = config(seed, comp, judge=judge)
            write_run(root / str(job), cfg, summary(cfg, g, 0.2), steps(4))
            job += 1
    # a protocol with an AI critic, its held-out evaluation more often: still the same frame
    for seed, g in enumerate([0.59, 0.61, 0.60]):
        cfg = config(seed, 2, judge="simulated") | {"eval": {"every": 10}}
        cfg |= {"protocol": {"_target_": "protocols.constitutional.Constitutional"}}
        cfg |= {"critic": {"_target_": "oversight.roles.critic.SimulatedCritic"}}
        write_run(root / str(job), cfg, summary(cfg, g, 0.2), steps(4), experiment=None)
        job += 1
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    rows = {r["setting"]: r for r in read_csv(out / "results.csv")}
    (cai,) = [r for r in rows.values() if r["family"] == "(no preset)"]
    assert float(cai["pgr_gold_beyond"]) == pytest.approx(0.75)
    # its outcome plot shows the frame it is matched to: competence 2's, not 6's
    families = analyze(str(root), tmp_path / "again")["families"]
    (other,) = [f for f in families if f.name == "(no preset)"]
    frame = frame_runs(families, other)
    assert {k: sorted(r.value("gold_accuracy_beyond") for r in v) for k, v in frame.items()} == {
        "oracle": [0.69, 0.7, 0.71],
        "pool": [0.29, 0.3, 0.31],
    }
    ok = rows["competence=2, judge=simulated"]
    assert float(ok["pgr_gold_beyond"]) == pytest.approx(0.5)
    assert float(ok["pgr_gold_beyond_ci_low"]) < 0.5 < float(ok["pgr_gold_beyond_ci_high"])
    assert float(rows["competence=2, judge=oracle"]["pgr_gold_beyond"]) == pytest.approx(1.0)
    assert float(rows["competence=2, judge=pool"]["pgr_gold_beyond"]) == pytest.approx(0.0)
    assert rows["competence=4, judge=simulated"]["pgr_gold_beyond"] == ""  # no ceiling run
    assert rows["competence=6, judge=simulated"]["pgr_gold_beyond"] == ""  # gap within noise
    assert "Performance gap recovered" in (out / "report.md").read_text()
