"""Protocols and judges never see ground truth: checked in the code and at run time.

Only three doors open the wall (`truth_access()`): a judge's metered verifier (`check_step`, and
`work` for a judge that answers a problem within its competence itself), the
evaluation harness, and a task's `attention_checks` (gold items with known answers for scoring
human judges). The source scan below knows them and fails on any other. Judges and AI helper
roles (`oversight/roles/`) check steps through their own verifier and name nothing else.
"""

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


SOURCE = ("oversight", "protocols", "ui")
"""the project's code (tests may read the truth to build answers; that code may not)"""
HARNESS = "oversight/experiment/harness.py"
DOORS = {
    "oversight/tasks/base.py:Verifier.check_step",
    "oversight/tasks/base.py:Verifier.work",
    "oversight/tasks/arithmetic.py:ArithmeticTask.attention_checks",
}
"""besides the harness, every place that may open the wall, as file:qualified name"""


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


def wall_openings(path: Path) -> set[str]:
    """Where `path` calls `truth_access` (by any name it was imported as): qualified names of
    the enclosing functions, "<module>" at the top level."""
    tree = ast.parse(path.read_text())
    aliases = {"truth_access"} | {
        a.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for a in node.names
        if a.name == "truth_access" and a.asname
    }
    found: set[str] = set()

    def visit(node: ast.AST, scope: list[str]) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope = [*scope, node.name]
        if isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name in aliases:
                found.add(".".join(scope) or "<module>")
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, [])
    return found


def reads_a_truth_store(path: Path) -> bool:
    """Whether `path` names `<anything>.truth` (a task's truth store) or a bare `truth.get`."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "truth":
            return True
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "get"
            and isinstance(node.value, ast.Name)
            and node.value.id == "truth"
        ):
            return True
    return False


def sources(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_only_the_named_doors_open_the_wall():
    opened = {f"{rel(p)}:{where}" for p in sources(*SOURCE) for where in wall_openings(p)}
    harness = {o for o in opened if o.startswith(HARNESS + ":")}
    assert harness, "the harness scores against the truth: the scan should see it"
    assert opened - harness == DOORS


def test_the_scan_sees_a_new_door(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "from oversight.tasks.base import truth_access as open_up\n"
        "class J:\n"
        "    def peek(self, task, p):\n"
        "        with open_up():\n"
        "            return task.truth.get(p.id)\n"
    )
    assert wall_openings(sneaky) == {"J.peek"} and reads_a_truth_store(sneaky)


@pytest.mark.parametrize("path", sources("protocols"), ids=rel)
def test_protocol_source_never_names_the_truth(path):
    used = names_used(path)
    assert not used & FORBIDDEN_NAMES, f"{rel(path)} touches {used & FORBIDDEN_NAMES}"
    assert "oversight.tasks.base" not in used


@pytest.mark.parametrize("path", sources("oversight/judges", "oversight/roles"), ids=rel)
def test_judges_and_roles_reach_the_truth_only_through_their_verifier(path):
    used = names_used(path)
    opening = {"truth_access", "_TRUTH_OPEN", "TruthStore"}
    assert not used & opening, f"{rel(path)} names {used & opening}"
    assert not reads_a_truth_store(path), f"{rel(path)} reads a task's truth store"


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
