"""The ``score`` stage: ``data/<c>/scores/``, ``metrics/score.json`` and ``plots/score/``.

Reads the images table shard by shard, runs every scoring and observer model once per decoded
batch (:func:`.scoring.score_pngs`), keeps finished shards in the scratch cache, then adds the
difficulty columns and measures recognisability (:func:`.recognisability.score_report`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from datasets import ClassLabel, Features, Value
from tqdm import tqdm

from . import figures, tables
from .device import pick_device
from .errors import UserError
from .models import WEIGHTS_FILE, load_named, model_dir
from .recognisability import score_report
from .scoring import COLUMNS, STATS, map_targets, resolve_precision, score_pngs, with_difficulty

HUMAN_COLUMNS = ("human_accuracy", "human_correct", "human_trials")


def run(params: Any, corpus: str) -> None:
    """The ``score`` stage: ``data/<c>/scores/``, ``metrics/score.json`` and ``plots/score/``."""
    sp, where = params.corpus(corpus).score, f"corpora.{corpus}.score"
    src = tables.stage_dir(corpus, "images")
    feats = tables.read_features(src)
    names = list(feats["label"].names)
    meta = tables.read_table(src, columns=_meta_columns(sp, list(feats), src, where))
    labels = np.asarray(meta.column("label").to_numpy(), dtype=np.int64)
    device = pick_device(params.device)
    panel = list(dict.fromkeys([*sp.models.values(), *(sp.observers or ())]))
    models = {m: load_named(params, m, device) for m in panel}
    if device.type == "cuda":
        for model in models.values():
            model.to(memory_format=torch.channels_last)
    targets = {m: _targets(sp, meta, names, models[m].classes, f"{where} (model {m})") for m in panel}
    stats, sizes = _score_shards(params, sp, src, models, targets, device)
    cols = {a: with_difficulty(stats[m], labels) for a, m in sp.models.items()}
    _write_scores(corpus, meta, names, cols, sizes)
    report = score_report(
        dict(sp.models), {m: stats[m] for m in panel}, targets,
        {a: 1.0 - c["difficulty"] for a, c in cols.items()}, meta.column("split").to_numpy(zero_copy_only=False),
        meta.column("id").to_pylist(), observers=sp.observers, human=_human(meta),
        heldout=tuple(sp.heldout_splits), seed=params.seed)
    tables.write_json(tables.stage_dir(corpus, "metrics") / "score.json", report)
    _plots(tables.stage_dir(corpus, "plots") / "score", cols, labels, names, report, meta, stats, targets)


def _meta_columns(sp: Any, columns: list[str], src: Any, where: str) -> list[str]:
    """id, label, split, the target column and any human columns the images table has."""
    if sp.target_column is not None and sp.target_column not in columns:
        raise UserError(f"{where}.target_column: {sp.target_column!r} is not a column of {src} "
                        f"(columns: {', '.join(columns)})")
    extra = [sp.target_column] if sp.target_column else []
    return list(dict.fromkeys(["id", "label", "split", *extra, *(c for c in HUMAN_COLUMNS if c in columns)]))


def _targets(sp: Any, meta: Any, names: list[str], classes: Sequence[str], where: str) -> np.ndarray:
    """Model class index per row: target column, else label name through ``class_map``."""
    if sp.target_column is not None:
        return map_targets(classes, meta.column(sp.target_column).to_pylist(), f"{where}.target_column")
    for key in sp.class_map:
        if key not in names:
            more = ", ..." if len(names) > 10 else ""
            raise UserError(f"{where}.class_map: {key!r} is not a label of the corpus ({', '.join(names[:10])}{more})")
    values = [sp.class_map.get(n, n) for n in names]
    mapped = map_targets(classes, values, where) if names else np.zeros(0, np.int64)
    return mapped[np.asarray(meta.column("label").to_numpy(), dtype=np.int64)]


def _score_shards(params: Any, sp: Any, src: Any, models: dict, targets: dict,
                  device: torch.device) -> tuple[dict[str, dict[str, np.ndarray]], list[int]]:
    """Forward stats per model over every images shard; finished shards come from the cache."""
    paths = tables.shard_paths(src)
    sizes = [pq.read_metadata(p).num_rows for p in paths]
    if not models:
        return {}, sizes
    precision = resolve_precision(sp.precision, device)
    cache = tables.ShardCache("score")
    hashes = {m: model.model_hash or tables.file_digest(model_dir(params, m) / WEIGHTS_FILE)
              for m, model in models.items()}
    parts, start = [], 0
    with tqdm(total=sum(sizes), unit="img", desc="score", disable=None) as bar:
        for path, n in zip(paths, sizes, strict=True):
            tg = {m: t[start:start + n] for m, t in targets.items()}
            key = tables.json_digest([tables.file_digest(path), hashes, precision, device.type,
                                      {m: tables.json_digest(t.tolist()) for m, t in tg.items()}])
            part = cache.get(key)
            if part is None:
                pngs = pq.read_table(path, columns=["image"]).column("image").combine_chunks().field("bytes")
                got = score_pngs(models, pngs.to_pylist(), tg, device, batch_size=sp.batch_size,
                                 workers=sp.decode_workers, precision=precision, progress=bar)
                part = pa.table({f"{m}|{s}": got[m][s] for m in models for s in STATS})
                cache.put(key, part)
            else:
                bar.update(n)
            parts.append(part)
            start += n
    table = pa.concat_tables(parts)
    return {m: {s: table.column(f"{m}|{s}").to_numpy() for s in STATS} for m in models}, sizes


def _write_scores(corpus: str, meta: Any, names: list[str], cols: dict, sizes: list[int]) -> None:
    """``data/<c>/scores/``: id, label, split and the alias columns, one shard per images shard."""
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

    with tables.staged_output(tables.stage_dir(corpus, "scores")) as tmp:
        tables.write_table(shards(), Features(feats), tmp)


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


MAX_PANELS = 30


def _plots(folder: Any, cols: dict, labels: np.ndarray, names: list[str], report: dict, meta: Any,
           stats: dict, targets: dict) -> None:
    """difficulty_hist.png, logit_vs_observer.png and recognisability.csv (for ``dvc plots``)."""
    with tables.staged_output(folder) as tmp:
        _write_csv(tmp / "recognisability.csv", report)
        if not cols:
            return
        first = next(iter(cols))
        present = [k for k in range(len(names)) if (labels == k).any()]
        more = f" (first {MAX_PANELS} of {len(present)} classes)" if len(present) > MAX_PANELS else ""
        figures.histograms({names[k]: cols[first]["difficulty"][labels == k] for k in present[:MAX_PANELS]},
                           tmp / "difficulty_hist.png", title=f"{first}: difficulty within class{more}",
                           xlabel="difficulty (0 easiest, 1 hardest) [0,1]")
        human = _human(meta)
        if human is not None:
            rows, y, what = np.isfinite(human["accuracy"]), human["accuracy"], "human accuracy"
        else:
            obs = report_observers(report, first)
            if not obs:
                return
            split = np.asarray(meta.column("split").to_pylist())
            rows = np.isin(split, report.get("heldout_splits") or [])
            rows = rows if rows.any() else np.ones(len(split), dtype=bool)
            y = np.mean([stats[o]["pred"] == targets[o] for o in obs], axis=0)
            what = f"observer accuracy ({', '.join(obs)})"
        figures.scatter(cols[first]["gt_logit"][rows], y[rows], tmp / "logit_vs_observer.png",
                        title=f"{first} gt logit vs {what.split(' (')[0]}", xlabel=f"{first}_gt_logit",
                        ylabel=what)


def report_observers(report: dict, alias: str) -> list[str]:
    """The observers the report used for ``alias``."""
    return list(report["recognisability"].get(alias, {}).get("observers", []))


def _write_csv(path: Any, report: dict) -> None:
    """One row per (alias, score, judge): AUC and Spearman, for ``dvc plots`` and spreadsheets."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["alias", "score", "judge", "auc", "spearman"])
        for alias, rec in report["recognisability"].items():
            for name, block in rec.items():
                if name == "observers":
                    continue
                rows = [("humans", block)] if "auc" in block else [
                    *block["per_observer"].items(), ("observer_accuracy", block["vs_observer_accuracy"])]
                for judge, m in rows:
                    w.writerow([alias, name, judge, _fmt(m["auc"]), _fmt(m["spearman"])])


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.6f}"
