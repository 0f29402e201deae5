"""The package is layered (docs/architecture.md): imports go only downward, and never in a cycle.

Read from the source (``tools/import_graph.py``), so neither a function-local import nor one
under ``if TYPE_CHECKING:`` can hide a cycle. Each test of the rule also checks it fires on a small package that breaks it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from import_graph import ImportGraph

#: layer -> the layers it may import from (itself included: siblings, but no cycles)
BASE = {"errors", "seeding", "console", "device"}
ALLOWED = {
    "base": {"base"},
    "config": {"base", "config"},
    "io": {"base", "config", "io"},
    "models": {"base", "config", "io", "models"},
    "ops": {"base", "config", "models", "ops"},  # the methods: tensors in, results out, no files
    "hub": {"base", "config", "io", "models", "ops", "hub"},
    "stages": {"base", "config", "io", "models", "ops", "hub", "stages"},
    "top": {"base", "config", "io", "models", "ops", "hub", "stages", "top"},
}


def layer(module: str, package: str = "lwise_build") -> str:
    parts = module.split(".")[1:]
    if not parts or parts[0] in BASE:  # the package root only holds __version__ and lazy names
        return "base"
    return parts[0] if parts[0] in ALLOWED else "top"  # cli, api, __main__


def violations(graph: ImportGraph) -> list[str]:
    """``a -> b`` for every import against the layers, and every click import outside the CLI."""
    out = []
    for module in graph.modules:
        for dep in sorted(graph.imports(module)):
            if dep == "ext:click" and not (module + ".").startswith(f"{graph.package}.cli."):
                out.append(f"{module} -> click (only the CLI imports click)")
            elif not dep.startswith("ext:") and layer(dep) not in ALLOWED[layer(module)]:
                out.append(f"{module} ({layer(module)}) -> {dep} ({layer(dep)})")
    return out


def test_the_package_has_no_import_cycle() -> None:
    assert ImportGraph().cycles() == []


def test_imports_only_go_down_the_layers() -> None:
    assert violations(ImportGraph()) == []


def make_package(root: Path, files: dict[str, str]) -> ImportGraph:
    for rel, text in files.items():
        path = root / "lwise_build" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ImportGraph(root)


def test_a_cycle_hidden_in_a_function_is_found(tmp_path: Path) -> None:
    graph = make_package(tmp_path, {
        "__init__.py": "", "io/__init__.py": "",
        "io/a.py": "from .b import x\n",
        "io/b.py": "def x():\n    from .a import y\n",  # local import: still a cycle
        "io/c.py": "from .d import z\n",  # no way back to c: no cycle
        "io/d.py": "z = 1\n",
    })
    assert graph.cycles() == [["lwise_build.io.a", "lwise_build.io.b"]]


def test_a_cycle_through_type_checking_imports_only_is_found(tmp_path: Path) -> None:
    graph = make_package(tmp_path, {
        "__init__.py": "", "io/__init__.py": "",
        "io/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import T\n",
        "io/d.py": "import typing\nif typing.TYPE_CHECKING:\n    from . import c\n",  # never runs, still a cycle
        "io/e.py": "from .c import TYPE_CHECKING\n",
    })
    assert graph.cycles() == [["lwise_build.io.c", "lwise_build.io.d"]]


@pytest.mark.parametrize(("files", "expected"), [
    ({"ops/x.py": "from ..io.tables import read_table\n"}, "lwise_build.ops.x (ops) -> lwise_build.io.tables (io)"),
    ({"io/x.py": "def f():\n    from ..stages.base import Stage\n"},
     "lwise_build.io.x (io) -> lwise_build.stages.base (stages)"),
    ({"hub/x.py": "import click\n"}, "lwise_build.hub.x -> click (only the CLI imports click)"),
])
def test_an_import_against_the_layers_is_found(tmp_path: Path, files: dict, expected: str) -> None:
    base = {"__init__.py": "", "io/__init__.py": "", "io/tables.py": "", "ops/__init__.py": "",
            "stages/__init__.py": "", "stages/base.py": "", "hub/__init__.py": ""}
    assert violations(make_package(tmp_path, {**base, **files})) == [expected]
