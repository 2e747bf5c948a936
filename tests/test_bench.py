"""The PPO benchmark runs end to end and reports positive speeds (no timing is asserted)."""

import torch

from oversight import bench


def test_the_ppo_benchmark_runs_our_side_and_reports_each_repetition(capsys, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    threads = torch.get_num_threads()
    try:
        bench.main(["ppo", "--no-trl", "--steps", "1", "--reps", "2"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    rows = [
        line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["med"])
    ]
    assert [r[0] for r in rows] == ["1", "2", "med"]
    assert all(float(x) > 0 for r in rows for x in r[1:])  # samples/s, tokens/s, per CPU-second
    assert "tokens/sample" in out
