"""The base-model cache under concurrent sweep jobs: one job builds, the others wait and reuse it;
no job sees a half-written entry; a killed builder leaves nothing that blocks or corrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from oversight.models.base_model import base_key, base_model
from oversight.models.policy import PolicyConfig
from oversight.tasks import build_task
from tests.helpers import ROOT, subprocess_env

TASK = {"name": "arithmetic"}
# small enough to build in about a second, big enough that two jobs overlap while it builds
POLICY = {"n_embd": 16, "n_layer": 1, "n_head": 2, "sft_steps": 40, "sft_examples": 500}

JOB = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from oversight.models.policy import PolicyConfig
    from oversight.models.base_model import base_model
    from oversight.tasks import build_task
    cache, go = sys.argv[1], Path(sys.argv[2])
    policy = PolicyConfig(cache_dir=cache, **json.loads(sys.argv[3]))
    task_cfg = json.loads(sys.argv[4])
    task = build_task(task_cfg)
    print("ready", flush=True)
    while not go.exists():  # start both jobs' base_model() calls at the same moment
        time.sleep(0.01)
    t0 = time.time()
    model, tok, meta = base_model(policy, task, task_cfg)
    checksum = sum(float(p.double().sum()) for p in model.parameters())
    print(json.dumps({"cached": meta["cached"], "key": meta["key"], "start": t0,
                      "end": time.time(), "checksum": checksum}), flush=True)
    """
)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as in a sweep job: tiny models train faster than with contended threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def start_job(cache: Path, go: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", JOB, str(cache), str(go), json.dumps(POLICY), json.dumps(TASK)],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
        cwd=ROOT,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def finish(p: subprocess.Popen[str]) -> dict:
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "base").iterdir() if not p.name.endswith(".lock"))


def test_two_concurrent_jobs_build_the_base_model_once(tmp_path: Path) -> None:
    cache, go = tmp_path / "cache", tmp_path / "go"
    jobs = [start_job(cache, go) for _ in range(2)]
    go.touch()
    a, b = (finish(p) for p in jobs)
    builder, waiter = (a, b) if not a["cached"] else (b, a)
    assert (builder["cached"], waiter["cached"]) == (False, True)  # exactly one trained it
    assert waiter["end"] >= builder["end"]  # the other waited on the lock, then loaded it
    assert a["key"] == b["key"] and a["checksum"] == pytest.approx(b["checksum"], rel=1e-6)
    (entry,) = entries(cache)  # one complete entry, no temporary folder left behind
    assert entry.name == a["key"] and (entry / "meta.json").is_file()

    # a third job (the same sweep run again) loads it without training
    third = start_job(cache, go)
    assert finish(third)["cached"] is True


def test_killed_builder_neither_blocks_nor_corrupts(tmp_path: Path) -> None:
    """A job killed mid-build (SIGKILL: no clean-up runs) holds the lock and leaves a partial
    temporary folder. The OS frees the lock; the next job cleans up and builds a good entry."""
    cache = tmp_path / "cache"
    policy = PolicyConfig(cache_dir=str(cache), **POLICY)
    key = base_key(policy, TASK)
    (cache / "base").mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; "
            "l = FileLock(sys.argv[1]); l.acquire(); print('locked', flush=True); time.sleep(600)",
            str(cache / "base" / f"{key}.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    partial = cache / "base" / f"{key}.tmp-{holder.pid}"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half a model")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    t0 = time.perf_counter()
    model, _, meta = base_model(policy, build_task(TASK), TASK)
    assert meta["cached"] is False and time.perf_counter() - t0 < 120
    (entry,) = entries(cache)  # the stale temporary folder is gone
    assert entry.name == key
    _, _, again = base_model(policy, build_task(TASK), TASK)
    assert again["cached"] is True


def test_corrupt_entry_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    policy = PolicyConfig(cache_dir=str(cache), **POLICY)
    key = base_key(policy, TASK)
    entry = cache / "base" / key
    entry.mkdir(parents=True)
    (entry / "meta.json").write_text("{}")  # marked complete, but the weights are garbage
    (entry / "model.safetensors").write_bytes(b"not a model")
    model, tok, meta = base_model(policy, build_task(TASK), TASK)
    assert meta["cached"] is False
    reloaded, _, meta2 = base_model(policy, build_task(TASK), TASK)
    assert meta2["cached"] is True
    for p, q in zip(model.parameters(), reloaded.parameters(), strict=True):
        assert torch.equal(p, q)
