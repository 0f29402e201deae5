"""The Stage base: what every DVC stage repeats, written once (docs/architecture.md, "Stages").

A stage declares its DVC stage name, its output folder under ``data/<corpus>/`` and its params
section; it implements only its own work: ``prepare`` (check and load everything before any
work), ``write`` (fill the staged output folder), and optionally ``metrics`` and ``plots``. The
base owns the params section, class names, device and models (:class:`StageContext`), atomic
output, the metrics JSON, a fresh plots folder, progress and the one-line summary.

Heavy stages (score, enhance, metamers) are :class:`UnitStage`: their work is a list of
independent :class:`Unit` whose results depend only on what their cache keys hash, so finished
units come from the cache and the output is assembled in a fixed order, whatever ran them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from .. import console
from ..config.params import CorpusParams, Params
from ..device import pick_device
from ..io.paths import details_path, metrics_path, plots_dir, stage_dir
from ..io.staging import staged_output, write_json
from ..io.tables import class_names
from .spec import StageSpec

T = TypeVar("T")


class StageContext:
    """What a stage reads once: params, its corpus, the device, class names and built models."""

    def __init__(self, params: Params, corpus: str):
        self.params, self.corpus = params, corpus
        self.spec: CorpusParams = params.corpus(corpus)
        self._models: dict[str, Any] = {}
        self._groups: dict[str, tuple[np.ndarray, ...]] = {}

    @property
    def seed(self) -> int:
        return self.params.seed

    @cached_property
    def device(self) -> Any:
        return pick_device(self.params.device)

    def dir(self, stage: str) -> Path:
        """``data/<corpus>/<stage>`` (another stage's output, e.g. ``images``)."""
        return stage_dir(self.corpus, stage)

    @cached_property
    def classes(self) -> list[str]:
        """The corpus's class names, in label-index order (from the images table)."""
        return class_names(self.dir("images"))

    def model(self, name: str) -> Any:
        """Built model ``name`` on the device, eval mode, no parameter gradients (loaded once)."""
        if name not in self._models:
            from ..models.store import load_named

            self._models[name] = load_named(self.params, name, self.device)
        return self._models[name]

    @cached_property
    def labels(self) -> tuple[np.ndarray, list[Any] | None]:
        """Every image's label and, with ``score.target_column``, its target value (images table order)."""
        from ..io.tables import read_table

        col = self.spec.score.target_column
        t = read_table(self.dir("images"), ["label", *([col] if col else [])])
        return np.asarray(t.column("label").to_pylist(), dtype=np.int64), t.column(col).to_pylist() if col else None

    def targets(self, name: str, labels: Any, values: list[Any] | None = None) -> np.ndarray:
        """Head index of model ``name`` for each row (corpus ``labels`` and, with
        ``score.target_column``, the rows' ``values``): scoring's class mapping (``score.class_map``,
        ``score.target_column``; docs/methods.md), the one every stage uses."""
        from ..ops.classmap import model_targets

        sp = self.spec.score
        return model_targets(self.model(name).classes, self.classes, labels, f"corpora.{self.corpus}.score (model {name})",
                             class_map=sp.class_map, target_values=values if sp.target_column else None)

    def groups(self, name: str) -> tuple[np.ndarray, ...]:
        """Per corpus class, the head outputs of model ``name`` its images map to: the choices of a
        forced choice over the corpus's classes (one output each, unless ``target_column`` is set)."""
        from ..ops.classmap import choice_groups

        if name not in self._groups:
            labels, values = self.labels
            self._groups[name] = choice_groups(self.targets(name, labels, values), labels, len(self.classes))
        return self._groups[name]


class Stage:
    """One DVC stage for one corpus; subclasses fill in the small steps."""

    stage_spec: ClassVar[StageSpec | None] = None  # its declaration (stages/<name>/spec.py)
    name: ClassVar[str]  # the DVC stage name and CLI command
    output: ClassVar[str]  # the folder under data/<corpus>/
    section: ClassVar[str | None] = None  # corpora.<corpus>.<section>
    has_plots: ClassVar[bool] = False  # figures into data/<corpus>/plots/<name>/
    headline_rows: ClassVar[bool] = False  # headline as metrics/<name>/<row>.json, one file per row

    def __init_subclass__(cls, spec: StageSpec | None = None, **kwargs: Any) -> None:
        """``class Score(UnitStage, spec=SPEC)``: name, output, section, figures and cache key come
        from the spec, declared once (docs/architecture.md, "Adding a stage")."""
        super().__init_subclass__(**kwargs)
        if spec is not None:
            cls.stage_spec = spec
            cls.name, cls.output, cls.section, cls.has_plots = spec.name, spec.output, spec.section, spec.draws_figures
            if spec.key is not None:  # a unit stage's cache key (its key.py)
                cls.cache_key = spec.key

    def __init__(self, params: Params, corpus: str):
        self.ctx = StageContext(params, corpus)
        self.p: Any = getattr(self.ctx.spec, self.section) if self.section else None
        self.where = f"corpora.{corpus}.{self.section}" if self.section else f"corpora.{corpus}"

    @property
    def out(self) -> Path:
        return self.ctx.dir(self.output)

    @property
    def metrics_name(self) -> str:
        return self.name

    def run(self) -> Path:
        """Check, build atomically, then metrics and plots; print one summary line."""
        start = time.perf_counter()
        self.prepare()
        with staged_output(self.out) as tmp:
            self.write(tmp)
        self.write_metrics(self.metrics())
        if self.has_plots:
            with staged_output(plots_dir(self.ctx.corpus, self.name)) as tmp:
                self.plots(tmp)
        console.info(f"{self.name} {self.ctx.corpus}: {self.summary()} "
                     f"({time.perf_counter() - start:.1f} s) -> {self.out}")
        return self.out

    def prepare(self) -> None:
        """Load and check everything before any work starts (bad params fail here)."""

    def write(self, tmp: Path) -> None:
        """Write the stage's output into ``tmp`` (it replaces ``out`` when this returns)."""
        raise NotImplementedError

    def metrics(self) -> dict[str, Any] | None:
        """The ``metrics/<name>.json`` content, or None for none."""
        return None

    def headline(self, details: dict[str, Any]) -> dict[str, Any]:
        """The few figures ``dvc metrics show`` lists, flat (one value per key; with
        ``headline_rows`` a mapping row -> flat dict); the default: all of ``details``."""
        return details

    def null_reason(self, path: tuple[str, ...]) -> str:  # noqa: ARG002 - a hook: subclasses use it
        """Why the metric at ``path`` of the details is null (stages say more where they know more)."""
        return "undefined for this build (a constant input, or too few values)"

    def brief_reason(self, key: str) -> str:  # noqa: ARG002 - a hook: subclasses use it
        """Why a headline figure is null, in a few words (it is a column of `dvc metrics show`)."""
        return "undefined: see metrics/details"

    def write_metrics(self, details: dict[str, Any] | None) -> None:
        """``metrics/details/<name>.json`` (everything) and the headline ``metrics/<name>.json``
        (or ``metrics/<name>/<row>.json``); every null gets a ``<key>_reason`` beside it."""
        if details is None:
            return
        corpus, name = self.ctx.corpus, self.metrics_name
        details = explain_nulls(details, self.null_reason)
        write_json(details_path(corpus, name), details)
        head = self.headline(details)
        if not self.headline_rows:
            write_json(metrics_path(corpus, name), explain_row(head, self.brief_reason))
            return
        with staged_output(metrics_path(corpus, name).with_suffix("")) as tmp:
            for row, values in head.items():
                write_json(tmp / f"{row}.json", explain_row(values, self.brief_reason))

    def plots(self, folder: Path) -> None:
        """Draw figures and plot tables into ``folder`` (a fresh folder)."""

    def summary(self) -> str:
        """What was built, in a few words (e.g. ``1797 images``)."""
        return "built"


def explain_nulls(obj: Any, reason: Callable[[tuple[str, ...]], str], path: tuple[str, ...] = ()) -> Any:
    """``obj`` with a ``<key>_reason`` beside every null value that has none (recursively)."""
    if isinstance(obj, list):
        return [explain_nulls(v, reason, (*path, str(i))) for i, v in enumerate(obj)]
    if not isinstance(obj, Mapping):
        return obj
    out = {k: explain_nulls(v, reason, (*path, str(k))) for k, v in obj.items()
           if not (str(k).endswith("_reason") and v is None)}
    for k, v in obj.items():
        if v is None and not str(k).endswith("_reason") and f"{k}_reason" not in out:
            out[f"{k}_reason"] = reason((*path, str(k)))
    return out


def explain_row(row: Mapping[str, Any], brief: Callable[[str], str]) -> dict[str, Any]:
    """A flat headline row with one short ``reason`` column for its nulls ("no observers"), so
    that `dvc metrics show` gains one narrow column, not one per null key."""
    nulls = [k for k, v in row.items() if v is None]
    return {**row, "reason": "; ".join(dict.fromkeys(brief(k) for k in nulls))} if nulls else dict(row)


def unexplained_nulls(obj: Any, path: str = "") -> list[str]:
    """Key paths of nulls without a ``<key>_reason`` sibling or a row ``reason`` (tests check
    every metrics file)."""
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in unexplained_nulls(v, f"{path}[{i}]")]
    if not isinstance(obj, Mapping):
        return []
    bad = [f"{path}.{k}" for k, v in obj.items() if v is None and not obj.get(f"{k}_reason") and not obj.get("reason")]
    return bad + [p for k, v in obj.items() for p in unexplained_nulls(v, f"{path}.{k}")]
