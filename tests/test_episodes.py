"""The core trains what protocols' episodes produce: turns of different prompt and response
lengths in one step, samples left out of training, and a supervised term next to PPO's."""

import dataclasses

import torch

from oversight.engine.ppo import Rollout
from oversight.models.sft import response_logprob, sft_batch
from oversight.models.tokenizer import encode
from tests.test_ppo_trainer import make_trainer


def turns(trainer, tok, prompts, seed):
    ids, mask = encode(tok, prompts)
    return trainer.rollout(ids, mask, torch.Generator().manual_seed(seed))


def test_a_batch_of_turns_with_different_lengths_trains_as_one():
    trainer, tok, _, _ = make_trainer(max_new_tokens=12)
    first = turns(trainer, tok, ["1+2=?\n"] * 8, 0)
    second = turns(trainer, tok, ["3*4-5=? I think it is 7.\n1+2=3. Answer: 3.\n"] * 8, 1)
    assert first.prompt_ids.shape[1] != second.prompt_ids.shape[1]
    both = Rollout.cat([first, second], tok.pad_token_id)
    assert both.prompt_ids.shape == (16, second.prompt_ids.shape[1])
    # each part's tokens survive the re-padding: same real tokens, same order
    for part, rows in ((first, slice(0, 8)), (second, slice(8, 16))):
        real = both.ids[rows][both.attention_mask[rows].bool()]
        assert torch.equal(real, part.ids[part.attention_mask.bool()])
    # the step's own pass over the mixed batch reproduces every sampled log-probability: the
    # first minibatch's ratio is 1 only if prompts and responses line up after re-padding
    recomputed = dataclasses.replace(both, logprobs=None, values=None)
    stats = trainer.step(recomputed, torch.randn(16), torch.Generator().manual_seed(0))
    assert abs(stats["ratio_first_minibatch"] - 1.0) < 1e-5


def test_rows_left_out_change_nothing_in_the_update():
    ro_all = None
    results = []
    for drop in (False, True):
        trainer, tok, ids, mask = make_trainer(max_new_tokens=8)
        ro = trainer.rollout(ids[:16], mask[:16], torch.Generator().manual_seed(3))
        extra = trainer.rollout(ids[16:24], mask[16:24], torch.Generator().manual_seed(4))
        scores = torch.linspace(-1, 1, 16)
        if drop:  # the same 16 rows, after 8 more that are then left out
            ro_all = Rollout.cat([extra, ro], tok.pad_token_id)
            keep = torch.tensor([False] * 8 + [True] * 16)
            ro = ro_all.rows(keep)
        trainer.step(ro, scores, torch.Generator().manual_seed(0))
        results.append([p.detach().clone() for p in trainer.policy.parameters()])
    for a, b in zip(*results, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_the_supervised_term_raises_its_targets_likelihood():
    trainer, tok, ids, mask = make_trainer(max_new_tokens=6, sft_coef=1.0, lr=3e-3)
    pairs = [("1+2=?\n", "Answer: 3.")] * 8
    before = response_logprob(trainer.policy.lm, tok, pairs, "cpu").mean()
    g = torch.Generator().manual_seed(0)
    for _ in range(5):  # PPO on zero scores: only the supervised term has somewhere to go
        ro = trainer.rollout(ids, mask, g)
        stats = trainer.step(ro, torch.zeros(32), g, [sft_batch(tok, pairs, "cpu")])
    after = response_logprob(trainer.policy.lm, tok, pairs, "cpu").mean()
    assert "sft_loss" in stats
    assert after > before + 1.0, (before, after)
