"""Policy models: the character tokenizer, a pretrained checkpoint from a local path, the cache."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from oversight.engine.sampling import generate
from oversight.errors import ConfigError
from oversight.models.base_model import base_model
from oversight.models.policy import PolicyConfig
from oversight.models.tokenizer import char_tokenizer, decode, encode


def test_char_tokenizer_round_trips_and_keeps_pad_apart_from_eos(tmp_path):
    tok = char_tokenizer()
    text = "3+4*2-5=? I think it is 7.\nYou are right. 3+4=7. Answer: 7."
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.pad_token_id != tok.eos_token_id
    tok.save_pretrained(tmp_path)
    assert type(tok).from_pretrained(tmp_path)(text)["input_ids"] == tok(text)["input_ids"]


def test_pretrained_checkpoint_from_a_local_path(tmp_path, task):
    # A tiny GPT-2 saved by the test itself, with a tokenizer whose PAD is EOS: the loader must
    # add a distinct PAD token (PPO checklist) and fine-tune it on the task corpus (whose
    # revision demonstrations run to 196 tokens: 256 positions).
    tok = char_tokenizer()
    tok.pad_token = tok.eos_token
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=len(tok), n_positions=320, n_embd=32, n_layer=1, n_head=2)
    )
    model.save_pretrained(tmp_path / "ckpt")
    tok.save_pretrained(tmp_path / "ckpt")
    cfg = PolicyConfig(
        path=str(tmp_path / "ckpt"), sft_steps=3, sft_examples=50, cache_dir=str(tmp_path / "cache")
    )
    lm, tok2, meta = base_model(cfg, task, {"name": "arithmetic"})
    assert meta["cached"] is False and tok2.pad_token_id != tok2.eos_token_id
    assert lm.get_input_embeddings().weight.shape[0] == len(tok2)
    ids, mask = encode(tok2, ["1+2=?\n", "3*4-5=?\n"])
    out = generate(
        lm,
        ids,
        mask,
        5,
        1.0,
        tok2.eos_token_id,
        tok2.pad_token_id,
        torch.Generator().manual_seed(0),
    )
    assert out.shape[0] == 2 and out.shape[1] <= 5
    assert len(decode(tok2, out, tok2.eos_token_id)) == 2
    assert base_model(cfg, task, {"name": "arithmetic"})[2]["cached"] is True


def test_missing_policy_path_is_a_config_error(tmp_path, task):
    with pytest.raises(ConfigError, match="does not exist"):
        base_model(PolicyConfig(path=str(tmp_path / "nope"), cache_dir=str(tmp_path)), task, {})
