"""Several ranks (DDP's semantics): different data per rank, one policy. Two CPU processes, gloo."""

import copy
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from oversight.engine import distributed
from oversight.engine.ppo import PolicyWithValue, PPOConfig, PPOTrainer
from oversight.models.policy import PolicyConfig, build_model
from oversight.models.tokenizer import char_tokenizer, encode

PROMPTS = [["1+2=?\n", "3*4-5=? I think it is 7.\n"], ["9-9*2+1=?\n", "7=? I think it is 1.\n"]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, out: dict) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    device = distributed.setup(torch.device("cpu"))
    try:
        tok = char_tokenizer()
        torch.manual_seed(0)  # the same initial policy on every rank
        base = build_model(PolicyConfig(n_embd=32, n_layer=1), tok)
        policy = PolicyWithValue(copy.deepcopy(base))
        before = torch.cat([p.detach().flatten() for p in policy.parameters()]).clone()
        trainer = PPOTrainer(
            policy,
            base,
            PPOConfig(batch_size=16, minibatch_size=8, epochs=1, lr=1e-2),
            tok.eos_token_id,
            tok.pad_token_id,
            1.0,
            8,
            device,
        )
        ids, mask = encode(tok, PROMPTS[rank] * 8)  # each rank its own data
        g = torch.Generator().manual_seed(rank)
        for _ in range(2):
            ro = trainer.rollout(ids, mask, g)
            stats = trainer.step(ro, torch.randn(16, generator=g), g)
        after = torch.cat([p.detach().flatten() for p in policy.parameters()])
        gathered = [torch.empty_like(after) for _ in range(2)]
        dist.all_gather(gathered, after)
        kls = [None, None]
        dist.all_gather_object(kls, stats["kl"])
        out[rank] = {
            "same": bool(torch.equal(gathered[0], gathered[1])),
            "moved": bool(not torch.equal(before, after)),
            "kl_same": kls[0] == kls[1],
        }
    finally:
        dist.destroy_process_group()


def test_ranks_train_one_policy_on_their_own_data():
    out = mp.Manager().dict()
    mp.spawn(_rank, args=(_free_port(), out), nprocs=2, join=True)
    assert out[0] == out[1] == {"same": True, "moved": True, "kl_same": True}
