"""The PPO benchmark runs end to end and reports positive speeds (no timing is asserted)."""

import subprocess
import sys

from tests.helpers import ROOT, subprocess_env


def test_the_ppo_benchmark_runs_our_side_and_reports_each_repetition():
    cmd = [sys.executable, "bench/ppo.py", "--no-trl", "--steps", "1", "--reps", "2"]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        env=subprocess_env(TOKENIZERS_PARALLELISM="false"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    rows = [
        line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["med"])
    ]
    assert [r[0] for r in rows] == ["1", "2", "med"]
    assert all(float(x) > 0 for r in rows for x in r[1:])  # samples/s, tokens/s, per CPU-second
    assert "tokens/sample" in out
