"""The fast PPO core changes no results: same seed, same metrics (docs/design.md, "The PPO core").

The packed forward and sampling of `oversight.engine.fastlm` against the plain Hugging Face path they
replace, on the demo's (tiny) Llama policy: the same draws, logits within float rounding, and two
PPO iterations from one seed giving the same statistics within tolerance.
"""

import copy

import numpy as np
import pytest
import torch

from oversight.engine import fastlm, kernels
from oversight.engine.ppo import PolicyWithValue, PPOConfig, PPOTrainer
from oversight.engine.sampling import generate, position_ids, response_mask
from oversight.models.policy import PolicyConfig, build_model
from oversight.models.tokenizer import char_tokenizer, encode

PROMPTS = ["1+2=?\n", "3*4-5=? I think it is 7.\n", "9-9*2+1=?\n", "7=? I think it is 1.\n"] * 4


def tiny_model():
    tok = char_tokenizer()
    torch.manual_seed(0)
    return build_model(PolicyConfig(n_embd=32, n_layer=2, n_head=4), tok), tok


def run(steps: int = 2) -> list[dict[str, float]]:
    base, tok = tiny_model()
    cfg = PPOConfig(batch_size=16, minibatch_size=8, epochs=2, lr=3e-3)
    trainer = PPOTrainer(
        PolicyWithValue(copy.deepcopy(base)),
        base,
        cfg,
        tok.eos_token_id,
        tok.pad_token_id,
        1.0,
        12,
        torch.device("cpu"),
    )
    ids, mask = encode(tok, PROMPTS)
    g = torch.Generator().manual_seed(0)
    target = tok.convert_tokens_to_ids("7")
    out = []
    for _ in range(steps):
        ro = trainer.rollout(ids, mask, g)
        score = (ro.responses == target).float().mean(-1)  # cheap, depends on every draw
        out.append(trainer.step(ro, score, g) | {"tokens": float(ro.mask.sum())})
    return out


def test_the_fast_path_is_taken_for_the_demo_policy():
    base, _ = tiny_model()
    assert fastlm.supports(base)
    with fastlm.disabled():
        assert not fastlm.supports(base)


@pytest.mark.parametrize(("groups", "kernel"), [(1, True), (1, False), (3, False)])
def test_packed_forward_matches_hugging_face(groups, kernel, monkeypatch):
    # the packed attention kernel on a CPU, else SDPA on padded blocks (a GPU's path)
    monkeypatch.setattr(kernels, "_enabled", kernel)
    base, tok = tiny_model()
    ids, mask = encode(tok, PROMPTS)
    resp = generate(base, ids, mask, 12, 1.0, tok.eos_token_id, tok.pad_token_id)
    full = torch.cat([ids, resp], 1)
    attn = torch.cat([mask, response_mask(resp, tok.eos_token_id)], 1)
    with torch.no_grad():
        ref = base(input_ids=full, attention_mask=attn, position_ids=position_ids(attn)).logits
        pk = fastlm.pack(attn, groups)
        h, _ = fastlm.hidden(base, full.flatten()[pk.flat], pk)
        # only each row's last two tokens, in row order, as PPO asks (the last layer computes
        # just those)
        last = attn.sum(-1).cumsum(0) - 1
        pick = torch.stack([last - 1, last], 1).flatten()
        j = torch.tensor([0, 1]).repeat(len(last))
        h_pick, _ = fastlm.hidden(base, full.flatten()[pk.flat], pk, fastlm.queries(pk, pick, j))
    assert pk.flat.numel() == attn.sum() < attn.numel()  # padding is left out
    real = ref.flatten(0, 1)[pk.flat]
    torch.testing.assert_close(fastlm.logits(base, h), real, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fastlm.logits(base, h_pick), real[pick], atol=1e-5, rtol=1e-5)


def test_the_compiled_forward_matches_and_does_not_recompile_for_new_block_sizes():
    base, tok = tiny_model()
    hidden = fastlm.compiled_hidden()
    ids, mask = encode(tok, PROMPTS[:8])
    pk = fastlm.pack(mask, 4)  # 4 blocks of 2 rows
    x, last = ids.flatten()[pk.flat], mask.sum(-1).cumsum(0).numpy() - 1
    with torch.no_grad():
        # each row's last n tokens: query blocks of equal sizes, then of different ones (sizes
        # 0 and 1 are always specialised: at least 2)
        for i, n in enumerate([np.full(8, 2), np.array([2, 3, 4, 5, 2, 3, 4, 5])]):
            rows = np.repeat(np.arange(8), n)
            j = np.concatenate([np.arange(k) for k in n])
            want = fastlm.queries(pk, last[rows] - n[rows] + 1 + j, j)
            with torch._dynamo.config.patch(error_on_recompile=i > 0):
                h = hidden(base, x, pk, want)[0]
            torch.testing.assert_close(h, fastlm.hidden(base, x, pk, want)[0], atol=1e-5, rtol=1e-5)


def test_fast_sampling_draws_what_the_plain_loop_draws():
    base, tok = tiny_model()
    ids, mask = encode(tok, PROMPTS * 4)
    args = (base, ids, mask, 24, 1.0, tok.eos_token_id, tok.pad_token_id)
    fast = generate(*args, torch.Generator().manual_seed(3))
    with fastlm.disabled():
        plain = generate(*args, torch.Generator().manual_seed(3))
    assert torch.equal(fast, plain)


def test_the_samplers_logprobs_and_values_match_a_full_pass():
    base, tok = tiny_model()
    policy = PolicyWithValue(copy.deepcopy(base))
    torch.nn.init.normal_(policy.value_head.weight)  # nonzero values, to compare them
    trainer = PPOTrainer(
        policy, base, PPOConfig(), tok.eos_token_id, tok.pad_token_id, 0.7, 40, torch.device("cpu")
    )
    ids, mask = encode(tok, PROMPTS * 2)
    ro = trainer.rollout(ids, mask, torch.Generator().manual_seed(0))
    assert ro.logprobs is not None and ro.values is not None
    lengths = ro.mask.sum(-1)
    assert lengths.min() < lengths.max() / 2  # rows left the sampler's cache at different steps
    m = ro.attention_mask.numpy().astype(bool)
    with torch.no_grad():
        lp, values, _ = trainer._fast_pass(
            policy.lm, trainer._tokens(ro.ids, m, ids.shape[1]), policy.value_head
        )
    torch.testing.assert_close(ro.logprobs, lp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ro.values, values, atol=1e-5, rtol=1e-5)
    assert (ro.logprobs[ro.mask == 0] == 0).all() and (ro.logprobs[ro.mask == 1] < 0).all()


def test_same_seed_same_metrics():
    fast = run()
    assert fast == run()  # the fast path itself is deterministic
    with fastlm.disabled():
        plain = run()
    for f, p in zip(fast, plain, strict=True):
        assert f.keys() == p.keys()
        for k in f:
            assert f[k] == pytest.approx(p[k], rel=1e-4, abs=1e-5), k
