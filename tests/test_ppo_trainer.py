"""The PPO core on a real (tiny) transformer: ratio = 1 on the first minibatch, and it learns."""

import copy

import torch

from oversight.engine.ppo import PolicyWithValue, PPOConfig, PPOTrainer
from oversight.models.policy import PolicyConfig, build_model
from oversight.models.tokenizer import char_tokenizer, encode


def make_trainer(max_new_tokens: int = 6, **ppo):
    torch.manual_seed(0)
    tok = char_tokenizer()
    base = build_model(PolicyConfig(n_embd=32, n_layer=1), tok)
    policy = PolicyWithValue(copy.deepcopy(base))
    cfg = PPOConfig(batch_size=32, minibatch_size=8, **ppo)
    trainer = PPOTrainer(
        policy,
        base,
        cfg,
        tok.eos_token_id,
        tok.pad_token_id,
        1.0,
        max_new_tokens,
        torch.device("cpu"),
    )
    ids, mask = encode(tok, ["1+2=?\n", "3*4-5=? I think it is 7.\n"] * 16)
    return trainer, tok, ids, mask


def test_value_head_starts_at_zero_and_ratio_is_one_on_first_minibatch():
    trainer, _, ids, mask = make_trainer()
    assert torch.all(trainer.policy.value_head.weight == 0) and torch.all(
        trainer.policy.value_head.bias == 0
    )
    g = torch.Generator().manual_seed(0)
    ro = trainer.rollout(ids, mask, g)
    stats = trainer.step(ro, torch.randn(32), g)
    assert abs(stats["ratio_first_minibatch"] - 1.0) < 1e-6
    # policy == reference before the first update: the sampler's log-probabilities against the
    # reference pass differ by float rounding only
    assert abs(stats["kl"]) < 1e-6
    for k in (
        "entropy",
        "clipfrac",
        "approx_kl",
        "explained_variance",
        "policy_loss",
        "value_loss",
    ):
        assert k in stats


def test_rollout_masks_after_eos_and_left_pads_prompts():
    # Long enough that an untrained model (EOS about 1 token in 40) ends some rows and not others.
    trainer, tok, ids, mask = make_trainer(max_new_tokens=40)
    assert mask[0, 0] == 0 and mask[0, -1] == 1  # the shorter prompt is left-padded
    ro = trainer.rollout(ids, mask, torch.Generator().manual_seed(1))
    ended = 0
    for row, m in zip(ro.responses, ro.mask, strict=True):
        eos = (row == tok.eos_token_id).nonzero()
        if len(eos):
            ended += 1
            end = eos[0].item()
            assert m[: end + 1].all() and not m[end + 1 :].any()
            assert (row[end + 1 :] == tok.pad_token_id).all()
        else:  # ran out of tokens: every one counts
            assert m.all() and len(row) == 40
    assert 0 < ended < len(ro.responses)  # both kinds of row were checked


def test_ppo_increases_a_simple_reward():
    # Reward: the response's first character is "7". An untrained model emits it ~1/28 of the time.
    trainer, tok, ids, mask = make_trainer(lr=3e-3, kl_coef=0.0, missing_eos_penalty=None)
    g = torch.Generator().manual_seed(0)
    target = tok.convert_tokens_to_ids("7")
    rates = []
    for _ in range(25):
        ro = trainer.rollout(ids, mask, g)
        hit = (ro.responses[:, 0] == target).float()
        rates.append(hit.mean().item())
        trainer.step(ro, hit, g)
    # Where it peaks, not where it ends: with no KL penalty at this learning rate, once (nearly)
    # every sample hits, the whitened advantages are rounding noise at unit scale and the policy
    # can drift off again, at a step that moves with any change of float rounding or CPU.
    window = [sum(rates[i : i + 5]) / 5 for i in range(len(rates) - 4)]
    assert window[0] < 0.2 and max(window) > 0.8
