"""The ``score`` stage: ``data/<c>/scores/``, ``metrics/details/score.json`` (the headline:
``metrics/score/<alias>.json``) and ``plots/score/``.

Each (image, model) is one cached item (so adding images or a scoring model computes only what
is new); missing items run in fixed-size batches, every model needed on a decoded batch at once
(:func:`~lwise_build.models.inference.score_pngs`); the difficulty columns are then computed
over the whole table, and recognisability is measured against humans or held-out observers
(:func:`~lwise_build.ops.recognisability.score_report`; docs/methods.md, "Difficulty").
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from datasets import ClassLabel, Features, Value

from ...errors import UserError
from ...io import figures
from ...io.tables import column_names, read_table, shard_paths, shard_sizes, write_table
from ...models.inference import STATS, resolve_precision, score_pngs
from ...models.store import model_digest
from ...ops.difficulty import COLUMNS, with_difficulty
from ...ops.recognisability import score_report
from ..units import Item, UnitStage, attach_pngs, chunks
from .spec import SPEC

HUMAN_COLUMNS = ("human_accuracy", "human_correct", "human_trials")
MAX_PANELS = 30
IMAGE_BATCHES_PER_CALL = 8  # fixed-size batches per compute call: decoding runs ahead within it
_TYPES = {"gt_logit": pa.float32(), "pred": pa.int64(), "prob": pa.float32(), "margin": pa.float32()}


def _stats_of(table: pa.Table) -> dict[str, np.ndarray]:
    return {s: table.column(s).to_numpy() for s in STATS}


@dataclass(frozen=True)
class ScoreWork:
    """One image under one model: where the image is and its target (head index); ``png`` once attached."""

    model: str
    shard: str
    row: int
    target: int
    png: bytes | None = None

    @property
    def where(self) -> tuple[str, int]:
        """(images shard file name, row)."""
        return self.shard, self.row


class Score(UnitStage, spec=SPEC):
    """Ground-truth logits, difficulty and recognisability of every scoring model."""

    headline_rows = True  # metrics/score/<alias>.json

    def prepare(self) -> None:
        sp, src = self.p, self.ctx.dir("images")
        self.meta = read_table(src, columns=_meta_columns(sp, column_names(src), src, self.where))
        self.labels = np.asarray(self.meta.column("label").to_numpy(), dtype=np.int64)
        self.panel = list(dict.fromkeys([*sp.models.values(), *(sp.observers or ())]))
        self.models = {m: self.ctx.model(m) for m in self.panel}
        if self.ctx.device.type == "cuda":
            for model in self.models.values():
                model.to(memory_format=torch.channels_last)
        values = self.meta.column(sp.target_column).to_pylist() if sp.target_column is not None else None
        self.targets = {m: self.ctx.targets(m, self.labels, values) for m in self.panel}
        self.precision = resolve_precision(sp.precision, self.ctx.device)

    def write(self, tmp: Path) -> None:
        """Every (image, model) result from the cache or computed, then the score columns."""
        images = self.ctx.dir("images")
        here = self.compute_device == self.ctx.device.type  # else Ray GPU actors: they resolve "auto"
        precision = self.precision if here else self.p.precision
        prefix = {m: self.key_prefix(model_hash=model_digest(model), precision=precision, device=self.compute_device)
                  for m, model in self.models.items()}
        keys: dict[str, list[str]] = {m: [] for m in self.models}
        start = 0
        for path, n in zip(shard_paths(images), shard_sizes(images), strict=True):
            ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
            items = []
            for m in self.models:
                tg = self.targets[m][start:start + n].tolist()
                ks = [self.cache_key.key(prefix[m], image_id=i, target=t) for i, t in zip(ids, tg, strict=True)]
                keys[m] += ks
                items += [Item(k, ScoreWork(m, path.name, row, t)) for row, (k, t) in enumerate(zip(ks, tg, strict=True))]
            self.ensure(items, f"shard {path.name}")
            start += n
        self.stats = {m: _stats_of(self.lookup(keys[m], list(STATS))) for m in self.models}
        self.cols = {a: with_difficulty(self.stats[m], self.labels) for a, m in self.p.models.items()}
        _write_scores(tmp, self.meta, self.ctx.classes, self.cols, shard_sizes(images))

    def attach(self, batch: list[Item]) -> list[Item]:
        """Each item with its image's PNG bytes, read from just the row groups holding them."""
        return attach_pngs(self.ctx.dir("images"), batch, lambda it: it.payload.where)

    def batches(self, items: list[Item]) -> list[list[Item]]:
        """Images needing the same models together, several fixed-size batches per call."""
        rows: dict[tuple[str, int], list[Item]] = {}
        for it in items:
            rows.setdefault(it.payload.where, []).append(it)
        by_models: dict[tuple[str, ...], list[tuple[str, int]]] = {}
        for row, its in rows.items():
            by_models.setdefault(tuple(sorted(it.payload.model for it in its)), []).append(row)
        per_call = self.p.batch_size * IMAGE_BATCHES_PER_CALL
        return [[it for r in part for it in rows[r]] for group in by_models.values() for part in chunks(group, per_call)]

    def compute(self, batch: list[Item]) -> pa.Table:
        """Decode the batch's images once and run each of its models on them."""
        work = [it.payload for it in batch]
        rows = list(dict.fromkeys(w.where for w in work))
        pngs = {w.where: w.png for w in work}
        models = sorted({w.model for w in work})
        target = {(w.model, w.where): w.target for w in work}
        got = score_pngs({m: self.models[m] for m in models}, [pngs[r] for r in rows],
                         {m: np.asarray([target[(m, r)] for r in rows]) for m in models}, self.ctx.device,
                         batch_size=self.p.batch_size, workers=self.p.decode_workers, precision=self.precision)
        pos = {r: i for i, r in enumerate(rows)}
        cols = {s: np.asarray([got[w.model][s][pos[w.where]] for w in work]) for s in STATS}
        return pa.table({"key": [it.key for it in batch], **{s: pa.array(cols[s], _TYPES[s]) for s in STATS}})

    def metrics(self) -> dict[str, Any]:
        sp = self.p
        self.report = score_report(
            dict(sp.models), {m: self.stats[m] for m in self.panel}, self.targets,
            {a: 1.0 - c["difficulty"] for a, c in self.cols.items()},
            self.meta.column("split").to_numpy(zero_copy_only=False), self.meta.column("id").to_pylist(),
            observers=sp.observers, human=_human(self.meta), heldout=tuple(sp.heldout_splits), seed=self.ctx.seed)
        return self.report

    def headline(self, d: dict[str, Any]) -> dict[str, Any]:
        """Per alias: test accuracy, and how well its gt logit predicts recognisability."""
        rows = {}
        for alias in d["models"]:
            g = d["recognisability"][alias].get("gt_logit") or {}
            judged = g if d["basis"] == "humans" else g.get("vs_observer_accuracy") or {}
            row = {"accuracy": d["accuracy"][alias].get("test"),  # judged by d["basis"]: see the details
                   "auc": judged.get("auc"), "spearman": judged.get("spearman")}
            if alias == "robust" and "standard" in d["models"]:
                row["beats_standard"] = (d.get("summary") or {}).get("robust_beats_standard")
            rows[alias] = row
        return rows

    def brief_reason(self, key: str) -> str:
        if key == "accuracy":
            return "no test images"
        if self.report.get("basis") == "none":
            return "no humans or observers"
        return "an AUC is undefined" if key == "beats_standard" else "no errors to predict"

    def null_reason(self, path: tuple[str, ...]) -> str:
        """Why a score metric is undefined: no judges, or judges without both outcomes."""
        r, key = self.report, path[-1]
        n, basis = r.get("n_judged", 0), r.get("basis")
        if key == "summary":
            return "needs score aliases named robust and standard, judged by humans or observers"
        if key in ("robust_beats_standard", "beats_standard"):
            return "the AUC of robust or standard is undefined (see its reason)"
        if key == "test" or key == "test_accuracy":
            return "the corpus has no test images"
        if basis == "none":
            return "nothing judges recognisability: no human columns and no observer models"
        if basis == "humans":
            return f"undefined on the {n} judged images: human accuracy or the score does not vary"
        observer = path[path.index("per_observer") + 1] if "per_observer" in path else None
        who = f"observer {observer}" if observer else "the observers"
        return (f"undefined on the {n} held-out images: {who} made no errors there (or got none right), "
                "and AUC and correlations need both outcomes")

    def plots(self, folder: Path) -> None:
        _write_csv(folder / "recognisability.csv", self.report)
        if self.cols:
            _figures(folder, self)

    def summary(self) -> str:
        if not self.p.models:
            return f"{len(self.labels)} images, no scoring models (score.models is empty)"
        acc = ", ".join(f"{a} {v:.3f}" for a, m in self.report["accuracy"].items()
                        if a in self.p.models and (v := m.get("test")) is not None)
        return (f"{len(self.labels)} images x {len(self.p.models)} scoring models"
                + (f"; test accuracy {acc}" if acc else "") + f"; judged by {self.report['basis']}")


def _meta_columns(sp: Any, columns: list[str], src: Any, where: str) -> list[str]:
    """id, label, split, the target column and any human columns the images table has."""
    if sp.target_column is not None and sp.target_column not in columns:
        raise UserError(f"{where}.target_column: {sp.target_column!r} is not a column of {src} "
                        f"(columns: {', '.join(columns)})")
    extra = [sp.target_column] if sp.target_column else []
    return list(dict.fromkeys(["id", "label", "split", *extra, *(c for c in HUMAN_COLUMNS if c in columns)]))


def _write_scores(tmp: Path, meta: Any, names: list[str], cols: dict, sizes: list[int]) -> None:
    """id, label, split and the alias columns, one shard per images shard."""
    feats = {"id": Value("string"), "label": ClassLabel(names=names), "split": Value("string")}
    for alias in cols:
        feats.update({f"{alias}_{c}": Value("int64" if c == "pred" else "float32") for c in COLUMNS})
    base = {k: meta.column(k).to_pylist() for k in ("id", "label", "split")}
    flat = {f"{a}_{c}": v[c] for a, v in cols.items() for c in COLUMNS}

    def shards() -> Iterator[dict[str, list]]:
        lo = 0
        for n in sizes:
            rows = {k: v[lo:lo + n] for k, v in base.items()}
            rows.update({k: v[lo:lo + n].tolist() for k, v in flat.items()})
            lo += n
            yield rows

    write_table(shards(), Features(feats), tmp)


def _human(meta: Any) -> dict[str, np.ndarray | None] | None:
    """Per-image human accuracy (and trial counts) from the images table, if it has them."""
    cols = meta.column_names

    def get(c: str) -> np.ndarray:
        return np.asarray(meta.column(c).to_pylist(), dtype=np.float64)

    trials = get("human_trials") if "human_trials" in cols else None
    if "human_accuracy" in cols:
        acc = get("human_accuracy")
    elif "human_correct" in cols and trials is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = get("human_correct") / trials
    else:
        return None
    return {"accuracy": acc, "trials": trials} if np.isfinite(acc).any() else None


def _figures(folder: Path, st: Score) -> None:
    """difficulty_hist.png and logit_vs_observer.png of the first scoring alias."""
    cols, labels, names = st.cols, st.labels, st.ctx.classes
    first = next(iter(cols))
    present = [k for k in range(len(names)) if (labels == k).any()]
    more = f" (first {MAX_PANELS} of {len(present)} classes)" if len(present) > MAX_PANELS else ""
    figures.histograms({names[k]: cols[first]["difficulty"][labels == k] for k in present[:MAX_PANELS]},
                       folder / "difficulty_hist.png", title=f"{first}: difficulty within class{more}",
                       xlabel="difficulty (0 easiest, 1 hardest) [0,1]")
    human = _human(st.meta)
    if human is not None:
        rows, y, what = np.isfinite(human["accuracy"]), human["accuracy"], "human accuracy"
    else:
        obs = list(st.report["recognisability"].get(first, {}).get("observers", []))
        if not obs:
            return
        split = np.asarray(st.meta.column("split").to_pylist())
        rows = np.isin(split, st.report.get("heldout_splits") or [])
        rows = rows if rows.any() else np.ones(len(split), dtype=bool)
        y = np.mean([st.stats[o]["pred"] == st.targets[o] for o in obs], axis=0)
        what = f"observer accuracy ({', '.join(obs)})"
    figures.scatter(cols[first]["gt_logit"][rows], y[rows], folder / "logit_vs_observer.png",
                    title=f"{first} gt logit vs {what.split(' (')[0]}", xlabel=f"{first}_gt_logit", ylabel=what)


def _write_csv(path: Path, report: dict) -> None:
    """One row per (alias, score, judge): AUC and Spearman; ``dvc plots`` draws a bar per row
    (x = auc, y = series)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["series", "alias", "score", "judge", "auc", "spearman"])
        for alias, rec in report["recognisability"].items():
            for name, block in rec.items():
                if name == "observers":
                    continue
                rows = [("humans", block)] if "auc" in block else [
                    *block["per_observer"].items(), ("observer_accuracy", block["vs_observer_accuracy"])]
                for judge, m in rows:
                    w.writerow([f"{alias} {name} / {judge}", alias, name, judge, _fmt(m["auc"]), _fmt(m["spearman"])])


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.6f}"
