"""Protocols never see ground truth (DESIGN.md §2): checked in the code and at run time."""

import ast
import random
from pathlib import Path

import pytest
import torch

from oversight.judges import Comparison, Oracle
from oversight.tasks import GroundTruthAccessError, PublicProblem
from protocols.base import Protocol, ProtocolContext, Signal
from tests.helpers import ROOT, correct_response

FORBIDDEN_NAMES = {
    "truth",
    "truth_access",
    "TruthStore",
    "Truth",
    "_TRUTH_OPEN",
    "corpus",
    "verifier",
    "check_step",
}


def names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            found.update(a.name for a in node.names)
            found.add(node.module or "")
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "protocols").glob("*.py")), ids=lambda p: p.name)
def test_protocol_source_never_names_the_truth(path):
    used = names_used(path)
    assert not used & FORBIDDEN_NAMES, f"{path.name} touches {used & FORBIDDEN_NAMES}"
    assert "oversight.tasks.base" not in used


def test_public_problem_carries_no_answer():
    assert set(PublicProblem.__dataclass_fields__) == {"id", "prompt", "difficulty", "belief"}


def test_protocol_context_has_no_path_to_the_truth():
    assert "task" not in ProtocolContext.__dataclass_fields__
    assert "truth" not in ProtocolContext.__dataclass_fields__


class Cheater(Protocol):
    """A protocol that tries to grade answers by reading the truth store it was never given."""

    name = "cheater"

    def __init__(self, task):
        self.task = task

    def signal(self, problems, responses, step):
        return Signal(
            torch.tensor(
                [
                    float(self.task.final_answer(r) == self.task.truth.get(p.id).answer)
                    for p, r in zip(problems, responses, strict=True)
                ]
            )
        )


def test_reading_the_truth_outside_the_wall_fails_at_run_time(task):
    problems = task.sample(4, seed=0)
    with pytest.raises(GroundTruthAccessError):
        Cheater(task).signal(problems, ["1+1=2. Answer: 2."] * 4, step=0)


def test_judges_may_check_through_their_metered_verifier(task):
    oracle = Oracle()
    oracle.attach(task)
    p = task.sample(1, seed=0)[0]
    out = oracle.compare(
        [Comparison(p, correct_response(task, p), "1+1=2. Answer: 2.")], random.Random(0)
    )
    assert out[0].prob_a == 1.0 and oracle.cost.checks >= 1
