"""The house: no import cycles between the project's modules, one module per name, the run store
holds only its own tables, and the repository cites no document outside itself."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import inspect

from oversight.store import Store
from tests.helpers import ROOT

PACKAGES = ("oversight", "protocols", "ui")
OUTSIDE = "DESIGN" + ".md"  # the design brief outside the repository (split: not a citation)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports, wherever in the file the import stands."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known}
    return out


def import_graph() -> dict[str, set[str]]:
    mods = project_modules()
    return {m: imports(p, m, set(mods)) - {m} for m, p in mods.items()}


def test_import_graph_is_read_from_the_source():
    g = import_graph()
    assert "oversight.engine.ppo" in g["oversight.experiment.run"]
    assert "oversight.models.tokenizer" in g["oversight.models.sft"]


def test_no_import_cycles():
    graph, state, cycles = import_graph(), {}, []

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            # importing a submodule runs its package's __init__ first: that edge is not a cycle
            if m.startswith(n + "."):
                continue
            if state.get(n) == "open":
                cycles.append([*path[path.index(n) :], n] if n in path else [m, n])
            elif n not in state:
                visit(n, [*path, n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_one_module_per_name():
    """Except `base`: each package's interface (tasks, judges, protocols) is its `base` module."""
    stems: dict[str, list[str]] = {}
    for m, p in project_modules().items():
        if p.stem not in ("__init__", "__main__", "base"):
            stems.setdefault(p.stem, []).append(m)
    assert {s: ms for s, ms in stems.items() if len(ms) > 1} == {}


def test_the_run_store_creates_only_its_own_tables(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    assert set(inspect(store.engine).get_table_names()) == {"run", "metric", "judgment"}


def test_no_file_cites_a_document_outside_the_repository():
    cited = [
        str(p.relative_to(ROOT))
        for d in (*PACKAGES, "tests", "conf", "bench", "docs")
        for p in (ROOT / d).rglob("*")
        if p.is_file() and p.suffix in (".py", ".yaml", ".md") and OUTSIDE in p.read_text()
    ]
    assert cited == []
