"""PPO math against hand computations (docs/design.md, "The PPO core")."""

import torch

from oversight.engine.ppo_math import (
    KLController,
    gae,
    kl_penalized_rewards,
    logprobs_from_logits,
    masked_mean,
    masked_var,
    masked_whiten,
    policy_loss,
    value_loss,
)


def test_gae_matches_hand_computation():
    # One response of 3 tokens then padding; gamma = 0.9, lambda = 0.8.
    r = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    v = torch.tensor([[0.5, 0.4, 0.3, 9.9]])  # the padded value must be ignored
    m = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    g, lam = 0.9, 0.8
    d2 = 1.0 - 0.3
    d1 = 0.0 + g * 0.3 - 0.4
    d0 = 0.0 + g * 0.4 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    adv, ret = gae(r, v, m, g, lam)
    torch.testing.assert_close(adv, torch.tensor([[a0, a1, a2, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[a0 + 0.5, a1 + 0.4, a2 + 0.3, 0.0]]))


def test_gae_rows_are_independent():
    r = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    v = torch.zeros(2, 2)
    m = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    adv, _ = gae(r, v, m, 1.0, 1.0)
    torch.testing.assert_close(adv, torch.tensor([[1.0, 0.0], [2.0, 2.0]]))


def test_masked_statistics_ignore_padding():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    m = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert masked_mean(x, m).item() == 2.5
    torch.testing.assert_close(masked_var(x, m), torch.tensor([1.0, 2.0, 3.0, 4.0]).var())
    w = masked_whiten(x, m)
    vals = w[m.bool()]
    torch.testing.assert_close(vals.mean(), torch.tensor(0.0), atol=1e-6, rtol=0)
    torch.testing.assert_close(vals.std(), torch.tensor(1.0), atol=1e-4, rtol=0)
    # shift_mean=False keeps the original mean
    torch.testing.assert_close(
        masked_whiten(x, m, shift_mean=False)[m.bool()].mean(), torch.tensor(2.5)
    )


def test_logprobs_match_log_softmax():
    logits = torch.randn(2, 5, 7)
    labels = torch.randint(7, (2, 5))
    ref = torch.log_softmax(logits, -1).gather(-1, labels[..., None]).squeeze(-1)
    torch.testing.assert_close(logprobs_from_logits(logits, labels), ref)


def test_kl_penalty_and_score_at_last_token():
    lp = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]])
    ref = torch.tensor([[-2.0, -1.0, -1.0], [-1.0, -1.5, -1.0]])
    m = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    rewards, kl = kl_penalized_rewards(torch.tensor([5.0, 7.0]), lp, ref, m, kl_coef=0.1)
    torch.testing.assert_close(kl, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0]]))
    torch.testing.assert_close(rewards, torch.tensor([[-0.1, 5.0, 0.0], [0.0, -0.05, 7.0]]))


def test_policy_loss_ratio_one_and_clipping():
    lp = torch.tensor([[-1.0, -2.0]])
    adv = torch.tensor([[1.0, -1.0]])
    m = torch.ones(1, 2)
    loss, stats = policy_loss(lp, lp.clone(), adv, m, 0.2)
    assert (
        stats["ratio"].item() == 1.0
        and stats["approx_kl"].item() == 0.0
        and stats["clipfrac"].item() == 0.0
    )
    torch.testing.assert_close(loss, torch.tensor(0.0))
    # A ratio of e^1 with positive advantage is clipped at 1.2.
    loss, stats = policy_loss(
        torch.tensor([[0.0]]), torch.tensor([[-1.0]]), torch.tensor([[1.0]]), torch.ones(1, 1), 0.2
    )
    torch.testing.assert_close(loss, torch.tensor(-1.2))
    assert stats["clipfrac"].item() == 1.0


def test_value_loss_is_clipped_pessimistically():
    # New value jumped far from old; the clipped value is further from the return -> it counts.
    loss = value_loss(
        torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[2.0]]), torch.ones(1, 1), 0.2
    )
    torch.testing.assert_close(loss, torch.tensor(0.5 * 1.8**2))


def test_adaptive_kl_controller_moves_towards_target():
    fixed = KLController(0.1)
    fixed.update(100.0, 64)
    assert fixed.value == 0.1
    ctl = KLController(0.1, target=6.0, horizon=100)
    ctl.update(12.0, 64)  # KL too high -> coefficient grows (error clipped at +0.2)
    assert abs(ctl.value - 0.1 * (1 + 0.2 * 0.64)) < 1e-12
    ctl.update(0.0, 64)
    assert ctl.value < 0.1 * (1 + 0.2 * 0.64)
