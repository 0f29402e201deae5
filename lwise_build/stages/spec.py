"""What a DVC stage declares, in one light place: :class:`StageSpec` (docs/architecture.md,
"Adding a stage").

Each stage package holds a ``spec.py`` with its ``SPEC``; :mod:`.registry` lists them in pipeline
order, and the CLI commands, ``resolve``'s files, ``check``'s plan, the report's "configured" view
and dvc.yaml (``python tools/dvc_yaml.py``) are derived from that list. A spec imports only
config- and io-level modules: ``resolve`` and ``--help`` load every spec, never torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Any, Literal

from ..config.params import Params
from .keys import CacheKey

Resolved = Callable[[Params, str], dict[str, Any]]
Describe = Callable[[Params, str], str]
Splits = Callable[[Params, str], list[tuple[str, str, int]]]


@dataclass(frozen=True)
class DvcPath:
    """A path of dvc.yaml under ``data/<corpus>/`` (``{model}``: the model of a per-model stage),
    with an optional note (a YAML comment), ``cache: false`` and a plot's template options."""

    path: str
    note: str = ""
    cache: bool = True
    plot: tuple[tuple[str, str], ...] = ()


def _paths(entries: tuple[str | DvcPath, ...]) -> tuple[DvcPath, ...]:
    return tuple(e if isinstance(e, DvcPath) else DvcPath(e) for e in entries)


@dataclass(frozen=True)
class StageSpec:
    """One DVC stage: its name, output, params, command, plan line, dvc.yaml entry and cache key.

    ``per`` is what the stage runs once for: each corpus (``lwise-build X <corpus>``, dvc.yaml
    ``foreach: ${corpora}``) or each model (``lwise-build X <corpus> <model>``, ``${models}``).
    ``resolved(params, item)`` is what its output depends on in params, defaults filled in (the
    ``resolve`` stage writes it to ``data/<corpus>/resolved/<name>.json``, or
    ``<name>-<model>.json``); ``describe(params, item)`` the plan line's note; ``enabled_by`` the
    corpus's params key that turns the stage on (unset: always on).
    """

    name: str  # the DVC stage name and the command
    output: str  # its folder under data/<corpus>/
    stage: str  # "module:Class" of the Stage subclass doing the work (imported only to run)
    help: str  # the command's one-line help
    describe: Describe  # the note on its `lwise-build check` plan line
    section: str | None = None  # the corpus params section it reads
    per: Literal["corpus", "model"] = "corpus"
    resolved: Resolved | None = None  # None: no resolved file (resolve itself)
    enabled_by: str | None = None  # e.g. "enhance.model": empty or unset turns the stage off
    splits: Splits | None = None  # (params key, split, least images) it reads, for `check`
    executor: bool = False  # the command takes --executor (a UnitStage whose units may run on Ray)
    plan_path: str = ""  # a file inside the output the plan line points at (report: index.html)
    key: CacheKey | None = None  # the unit cache key's declared fields (heavy stages)
    # ---- dvc.yaml: paths under data/<corpus>/ (data deps only: code deps come from the imports)
    deps: tuple[str | DvcPath, ...] = ()
    outs: tuple[str | DvcPath, ...] = ()
    metrics: tuple[str | DvcPath, ...] = ()
    plots: tuple[str | DvcPath, ...] = ()
    assets: tuple[str, ...] = ()  # package files its command reads besides modules (code deps)
    always_changed: bool = False
    params_file: bool = False  # depends on the whole params file (resolve: it reads every section)

    def load(self) -> type:
        """The Stage subclass (imported now: stage modules may load torch)."""
        module, cls = self.stage.split(":")
        return getattr(importlib.import_module(module), cls)

    def enabled(self, params: Params, corpus: str) -> bool:
        """Whether ``corpus``'s params turn the stage on (its ``enabled_by`` key is set, non-empty)."""
        if self.enabled_by is None:
            return True
        return bool(reduce(getattr, self.enabled_by.split("."), params.corpus(corpus)))

    def items(self, params: Params, corpus: str) -> list[str]:
        """What the stage runs once for within ``corpus``: the corpus, or each of its models."""
        if self.per == "corpus":
            return [corpus]
        return [m for m, spec in params.models.items() if spec.corpus == corpus]

    def resolved_name(self, item: str) -> str:
        """The resolved file's name under ``data/<corpus>/resolved/``."""
        return f"{self.name}.json" if self.per == "corpus" else f"{self.name}-{item}.json"

    def plan(self, params: Params, corpus: str) -> list[str]:
        """``name@item -> output  (what it does)``, one line per item of ``corpus``."""
        lines = []
        for item in self.items(params, corpus):
            path = "/".join(p for p in (f"data/{corpus}/{self.output}", item if self.per == "model" else "",
                                        self.plan_path) if p)
            note = self.describe(params, item)
            lines.append(f"{self.name}@{item} -> {path}" + (f"  ({note})" if note else ""))
        return lines

    @property
    def draws_figures(self) -> bool:
        """Whether it draws figures into ``plots/<name>/`` (declared as a dvc.yaml plots folder)."""
        return any(p.path == f"plots/{self.name}" for p in self.dvc_paths("plots"))

    def dvc_paths(self, kind: str) -> tuple[DvcPath, ...]:
        """``deps``, ``outs``, ``metrics`` or ``plots`` as :class:`DvcPath` entries."""
        return _paths(getattr(self, kind))

