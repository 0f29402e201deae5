"""The package's import graph, read from the source with ``ast`` (no module is imported).

Every ``import`` counts, also the ones inside functions (they run when the function does) and
the ones under ``if TYPE_CHECKING:`` (they never run, but a module that needs another's types to
be read depends on it: a cycle through them is a cycle in the design, just hidden).
Used by the layering test and by ``tools/dvc_yaml.py``, which lists in dvc.yaml every module a
stage's command runs.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node``: imports in functions and in ``if TYPE_CHECKING:`` blocks too."""
    for child in ast.iter_child_nodes(node):
        yield child
        yield from _walk(child)


class ImportGraph:
    """Modules of ``package`` under ``root`` and the package modules each one imports."""

    def __init__(self, root: Path = ROOT, package: str = "lwise_build"):
        self.root, self.package = Path(root), package

    @cached_property
    def modules(self) -> dict[str, Path]:
        """dotted name -> file, for every module of the package."""
        out = {}
        for path in sorted((self.root / self.package).rglob("*.py")):
            rel = path.relative_to(self.root).with_suffix("")
            out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = path
        return out

    def path(self, name: str) -> str:
        return self.modules[name].relative_to(self.root).as_posix()

    def _target(self, current: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = current.split(".")
        base = parts if self.modules[current].name == "__init__.py" else parts[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def imports(self, name: str, top_level_only: bool = False) -> set[str]:
        """Package modules ``name`` imports (module level only, if asked), and external roots
        (``click``, ``torch``) as ``"ext:<name>"``."""
        tree = ast.parse(self.modules[name].read_text(encoding="utf-8"))
        nodes = tree.body if top_level_only else _walk(tree)
        found: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = self._target(name, node)
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in self.modules]
                found.update(subs or [target])
        inside = {m for m in found if m in self.modules and m != name}
        return inside | {f"ext:{m.split('.')[0]}" for m in found if not m.startswith(self.package)}

    @cached_property
    def edges(self) -> dict[str, set[str]]:
        return {m: {d for d in self.imports(m) if not d.startswith("ext:")} for m in self.modules}

    def closure(self, *starts: str) -> set[str]:
        """Every module ``starts`` run, with the packages (``__init__``) on the way to each."""
        seen: set[str] = set()
        todo = list(starts)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo += self.edges[name]
            parts = name.split(".")
            todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        return seen

    def cycles(self) -> list[list[str]]:
        """Import cycles, each a sorted list of modules (strongly connected components)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        out: list[list[str]] = []

        def visit(v: str) -> None:
            index[v] = low[v] = len(index)
            stack.append(v)
            for w in sorted(self.edges[v]):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = [stack.pop()]
                while comp[-1] != v:
                    comp.append(stack.pop())
                if len(comp) > 1 or v in self.edges[v]:
                    out.append(sorted(comp))

        sys.setrecursionlimit(10_000)
        for v in sorted(self.modules):
            if v not in index:
                visit(v)
        return out

    # ------------------------------------------------------------ what a DVC stage runs -------
    def entry(self) -> set[str]:
        """What every ``lwise-build <stage>`` command runs besides its stage module: the CLI
        modules, what they import at module level, and the params loader (not the other
        commands' own imports, which run only with their command)."""
        cli = f"{self.package}.cli"
        seen, todo, outside = set(), [cli], {f"{self.package}.config.load"}
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for dep in self.imports(name, top_level_only=True):
                if dep.startswith(cli):
                    todo.append(dep)
                elif not dep.startswith("ext:"):
                    outside.add(dep)
        return self.closure(*outside) | seen

    def stage_files(self, module: str) -> set[str]:
        """Every file a stage command runs (its stage ``module`` and the CLI), relative to the repository."""
        names = self.closure(module) | self.entry()
        return {self.path(n) for n in names}

    def dvc_deps(self, module: str) -> list[str]:
        """:meth:`stage_files`, with a folder in place of its files when the stage runs them all."""
        files = self.stage_files(module)
        out: set[str] = set()
        for path in files:
            folder = Path(path).parent
            members = {p.relative_to(self.root).as_posix() for p in (self.root / folder).glob("*.py")}
            whole = folder != Path(self.package) and members <= files
            out.add(folder.as_posix() if whole else path)
        return sorted(out)


def covered(path: str, deps: list[str]) -> bool:
    """Whether a dvc.yaml dep list covers ``path`` (listed itself, or a folder above it)."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)

