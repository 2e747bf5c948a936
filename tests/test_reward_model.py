"""Bradley-Terry loss and reward-model training on separable data."""

import math

import pytest
import torch

from oversight.models.policy import PolicyConfig, build_model
from oversight.models.reward_model import (
    READOUTS,
    RewardModel,
    RewardModelConfig,
    bt_loss,
    pairwise_accuracy,
    train_reward_model,
)
from oversight.models.tokenizer import char_tokenizer


def test_bt_loss_matches_hand_computation():
    r_a, r_b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    p = torch.tensor([1.0, 0.5])
    expected = (
        -math.log(1 / (1 + math.exp(-2.0)))
        + (-0.5 * math.log(1 / (1 + math.exp(1.0))) - 0.5 * math.log(1 / (1 + math.exp(-1.0))))
    ) / 2
    assert abs(bt_loss(r_a, r_b, p).item() - expected) < 1e-6
    # The loss is symmetric under swapping the pair and the label.
    assert abs(bt_loss(r_b, r_a, 1 - p).item() - expected) < 1e-6


@pytest.mark.parametrize("readout", READOUTS)
def test_reward_model_learns_separable_preferences(readout):
    torch.manual_seed(0)
    tok = char_tokenizer()
    base = build_model(PolicyConfig(n_embd=32, n_layer=1), tok)
    rm = RewardModel(base, tok, readout)
    g = torch.Generator().manual_seed(0)

    def pairs(n):
        # Preferred answers end in an even digit, dispreferred in an odd one; the rest is noise.
        prompts, a, b = [], [], []
        for _ in range(n):
            x, y = torch.randint(10, (2,), generator=g).tolist()
            prompts.append(f"{x}+{y}=? ")
            a.append(f"{2 * torch.randint(5, (1,), generator=g).item()}.")
            b.append(f"{2 * torch.randint(5, (1,), generator=g).item() + 1}.")
        return prompts, a, b

    p, a, b = pairs(600)
    stats = train_reward_model(
        rm, p, a, b, [1.0] * len(a), RewardModelConfig(epochs=3, lr=1e-3), seed=0
    )
    assert stats["rm_train_accuracy"] > 0.9
    hp, ha, hb = pairs(200)
    assert pairwise_accuracy(rm, hp, ha, hb, [True] * 200) > 0.95
    assert pairwise_accuracy(rm, hp, hb, ha, [False] * 200) > 0.95


def test_token_readout_scores_only_the_response():
    """The sum runs over the response and its EOS, never the prompt or the padding."""
    tok = char_tokenizer()
    rm = RewardModel(build_model(PolicyConfig(n_embd=32, n_layer=1), tok), tok, "tokens")
    ids, mask, response = rm.batch(["1+2=? ", "12+3=? "], ["3.", "15."])
    assert response.sum(-1).tolist() == [3.0, 4.0]  # "3." + EOS, "15." + EOS
    assert (response <= mask).all()  # never on padding


def test_unknown_readout_is_a_clear_error():
    with pytest.raises(ValueError, match="readout"):
        RewardModelConfig(readout="mean")
