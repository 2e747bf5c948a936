"""SFT: the packed loss is the padded one, SFT raises its targets' likelihood, a seed fixes it."""

import copy
import subprocess
import sys

import pytest
import torch

from oversight.engine import fastlm
from oversight.engine.ppo import PolicyWithValue
from oversight.models.policy import PolicyConfig, build_model
from oversight.models.sft import response_logprob, sft, sft_batch, sft_loss
from oversight.models.tokenizer import char_tokenizer
from tests.helpers import ROOT, subprocess_env


@pytest.fixture
def tok():
    return char_tokenizer()


@pytest.fixture
def model(tok):
    torch.manual_seed(0)
    return build_model(PolicyConfig(n_layer=2, n_head=4, n_embd=32), tok)


@pytest.fixture
def pairs(task):
    return task.corpus(24, seed=1)


def test_the_packed_loss_and_its_gradients_are_the_padded_ones(model, tok, pairs):
    lm = PolicyWithValue(model).lm  # as a distillation term in the PPO step would call it
    lm.train()
    assert fastlm.supports(lm)
    batch = sft_batch(tok, pairs, "cpu")
    grads = {}
    for name in ("packed", "padded"):
        lm.zero_grad(set_to_none=True)
        if name == "padded":
            with fastlm.disabled():
                loss = sft_loss(lm, batch)
        else:
            loss = sft_loss(lm, batch)
        loss.backward()
        grads[name] = (loss.detach(), [p.grad.clone() for p in lm.parameters()])
    assert lm.training  # the loss leaves the mode alone
    (a, ga), (b, gb) = grads["packed"], grads["padded"]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


def test_response_logprob_is_each_response_given_its_prompt(model, tok, pairs):
    model.eval()
    got = response_logprob(model, tok, pairs[:4], "cpu")
    with fastlm.disabled():
        padded = response_logprob(model, tok, pairs[:4], "cpu", batch_size=3)
    want = []
    with torch.no_grad():  # one unpadded sequence at a time: nothing shared with the batching
        for p, r in pairs[:4]:
            ids = tok(p + r + tok.eos_token, add_special_tokens=False, return_tensors="pt")
            ids = ids["input_ids"]
            n = len(tok(p, add_special_tokens=False)["input_ids"])
            logp = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
            want.append(logp[n - 1 :].gather(-1, ids[0, n:, None]).sum())
    torch.testing.assert_close(got, torch.stack(want), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(padded, got, rtol=1e-5, atol=1e-4)
    assert got.shape == (4,) and not got.requires_grad


def test_sft_raises_the_likelihood_of_its_training_pairs(model, tok, pairs):
    before = response_logprob(model, tok, pairs, "cpu")
    losses = sft(model, tok, pairs, steps=40, batch_size=8, lr=3e-3, seed=0, device="cpu")
    after = response_logprob(model, tok, pairs, "cpu")
    assert len(losses) == 40 and not model.training
    assert losses[-1] < losses[0]
    lengths = torch.tensor([len(r) + 1 for _, r in pairs])
    # nats per target token: from about log(vocab) = 3.6 at the start
    assert ((after - before) / lengths).mean() > 0.5


def test_sft_is_deterministic_for_a_seed(model, tok, pairs):
    def run(seed: int) -> list[float]:
        return sft(copy.deepcopy(model), tok, pairs, 5, 4, 1e-3, seed, "cpu")

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_the_sft_benchmark_runs_both_sides_and_reports_their_ratio():
    args = "--steps 6 --warmup 2 --chunk 2 --threads 1".split()  # seconds, not minutes
    cmd = [sys.executable, "bench/sft.py", *args]
    done = subprocess.run(
        cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line}
    assert all(float(x) > 0 for side in ("padded", "packed") for x in rows[side])
    assert "median ratio over 2 chunks" in done.stdout
