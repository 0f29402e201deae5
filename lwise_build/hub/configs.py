"""The Hub configs: stage tables turned into ``data/<config>/<split>-XXXXX-of-YYYYY.parquet``.

One writer per config routes rows to per-split shards of at most ``max_bytes`` each, with the
image bytes embedded (never paths) and the ``datasets`` features in the Parquet schema, so
``load_dataset(<folder>, <config>)`` restores ClassLabel and Image columns.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Features, Image, Value

from .. import console
from ..config.constants import SPLITS
from ..config.responses import RESPONSE_COLUMNS, RESPONSE_TYPES
from ..errors import UserError
from ..io.paths import budget_dir, parse_budget
from ..io.tables import has_table, iter_shards, read_features, read_table, shard_name, write_shard

#: The split of configs that are one table (metamers).
SINGLE_SPLIT = "train"
#: Re-encodes a stimulus image's bytes (``export.stimulus_format: jpeg``); None keeps the PNG.
Encoder = Callable[[bytes], bytes] | None


@dataclass
class ConfigInfo:
    """One config of the Hub folder: its features, and per split its row count and shard files."""

    name: str
    kind: str  # default | enhanced | curriculum | metamers | responses
    features: Features
    key: Any = None  # the budget (enhanced) or curriculum name
    rows: dict[str, int] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    nbytes: int = 0

    def data_files(self) -> list[dict[str, str]]:
        return [{"split": s, "path": f"data/{self.name}/{s}-*.parquet"} for s in self.splits()]

    def splits(self) -> list[str]:
        known = [s for s in SPLITS if s in self.rows]
        return known + sorted(s for s in self.rows if s not in SPLITS)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class ConfigWriter:
    """Collect rows of one config and cut each split into shards of at most ``max_bytes``."""

    def __init__(self, root: Path, info: ConfigInfo, max_bytes: int):
        self.folder = root / "data" / info.name
        self.info, self.max_bytes = info, max_bytes
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._size: dict[str, int] = {}
        self._parts: dict[str, list[Path]] = {}

    def add(self, split: str, row: dict[str, Any]) -> None:
        if split not in self._rows:
            if not re.fullmatch(r"\w+(\.\w+)*", str(split)):
                raise UserError(f"config {self.info.name}: split name {split!r} must match ^\\w+(\\.\\w+)*$")
            self._rows[split], self._size[split], self._parts[split] = [], 0, []
        self._rows[split].append(row)
        self.info.rows[split] = self.info.rows.get(split, 0) + 1
        self._size[split] += _row_bytes(row)
        if self._size[split] >= self.max_bytes:
            self._flush(split)

    def _flush(self, split: str) -> None:
        rows = self._rows[split]
        if not rows:
            return
        part = self.folder / f".{split}-{len(self._parts[split]):05d}.parquet"
        write_shard({k: [r.get(k) for r in rows] for k in self.info.features}, self.info.features, part)
        self._parts[split].append(part)
        self._rows[split], self._size[split] = [], 0

    def close(self) -> ConfigInfo:
        """Write what is left and give the shards their final ``<split>-i-of-n`` names."""
        for split in list(self._rows):
            self._flush(split)
            parts = self._parts[split]
            names = []
            for i, part in enumerate(parts):
                final = self.folder / shard_name(i, len(parts), split)
                part.rename(final)
                self.info.nbytes += final.stat().st_size
                names.append(final.relative_to(self.folder.parent.parent).as_posix())
            self.info.files[split] = names
        return self.info


def _row_bytes(row: dict[str, Any]) -> int:
    size = 16 * len(row)
    for value in row.values():
        if isinstance(value, dict) and value.get("bytes"):
            size += len(value["bytes"])
        elif isinstance(value, (str, bytes)):
            size += len(value)
    return size


def _embedded(value: Any) -> dict[str, Any] | None:
    """An image cell as embedded bytes only: the Hub folder never refers to local paths."""
    if value is None:
        return None
    if not value.get("bytes"):
        raise UserError(f"image cell without embedded bytes (path {value.get('path')!r}); rebuild the table")
    return {"bytes": value["bytes"], "path": None}


def _as_shown(cell: dict[str, Any] | None, encode: Encoder) -> dict[str, Any] | None:
    """An embedded image cell re-encoded as participants are shown it (unchanged without ``encode``)."""
    if cell is None or encode is None:
        return cell
    return {"bytes": encode(cell["bytes"]), "path": None}


def _relabel(features: Features, names: list[str]) -> Features:
    """The table's features with ``label`` as the corpus ClassLabel."""
    out = dict(features)
    if "label" in out:
        out["label"] = ClassLabel(names=names)
    return Features(out)


def _rows(folder: Path, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    for table in iter_shards(folder, columns=columns):
        yield from table.to_pylist()


# ---------------------------------------------------------------- the configs -----------------
def write_default(images: Path, scores: Path | None, root: Path, max_bytes: int,
                  calibration: dict[str, Any] | None = None) -> ConfigInfo:
    """``default``: one row per image, with the score columns of every scoring model, and
    ``predicted_accuracy`` when a calibration from human responses exists (``analyze``)."""
    img_feats = read_features(images)
    names = img_feats["label"].names
    score_by_id: dict[str, dict[str, Any]] = {}
    score_feats: dict[str, Any] = {}
    if has_table(scores):
        sf = read_features(scores)
        score_feats = {k: v for k, v in sf.items() if k not in ("id", "label", "split")}
        for row in read_table(scores, columns=["id", *score_feats]).to_pylist():
            score_by_id[row.pop("id")] = row
    meta = {k: v for k, v in img_feats.items() if k not in ("image", "label", "split", "id")}
    if calibration is not None:
        if calibration["score"] not in score_feats:
            raise UserError(f"analysis/calibration.json maps score {calibration['score']!r}, which the scores "
                            "table lacks; rerun `lwise-build analyze`")
        score_feats["predicted_accuracy"] = Value("float64")
        for row in score_by_id.values():
            row["predicted_accuracy"] = predicted(row.get(calibration["score"]), calibration)
    feats = Features({"image": Image(), "label": ClassLabel(names=names), "split": Value("string"),
                      "id": Value("string"), **score_feats, **meta})
    writer = ConfigWriter(root, ConfigInfo("default", "default", feats), max_bytes)
    for row in console.progress(_rows(images), desc="export default", unit="img", leave=False):
        scored = score_by_id.get(row["id"], {})
        writer.add(row["split"], {**row, **{k: scored.get(k) for k in score_feats},
                                  "image": _embedded(row["image"])})
    return writer.close()


def predicted(score: float | None, calibration: dict[str, Any]) -> float | None:
    """The calibrated human accuracy of an image from its score (docs/methods.md, "Experiments and analysis")."""
    if score is None or not math.isfinite(score):
        return None
    return 1.0 / (1.0 + math.exp(-(calibration["slope"] * score + calibration["intercept"])))


def write_passthrough(folder: Path, name: str, kind: str, key: Any, names: list[str], root: Path,
                      max_bytes: int, *, split_column: str | None = "split",
                      extra: dict[str, Any] | None = None, encode: Encoder = None) -> ConfigInfo:
    """A stage table as one config (enhanced budgets, metamers), split by ``split_column``;
    ``encode`` re-encodes its ``image`` column (the stimuli of an enhanced config)."""
    feats = _relabel(read_features(folder), names)
    extra = extra or {}
    feats = Features({**feats, **{k: Image() for k in extra}})
    images = [k for k, v in feats.items() if isinstance(v, Image)]
    writer = ConfigWriter(root, ConfigInfo(name, kind, feats, key), max_bytes)
    for row in console.progress(_rows(folder), desc=f"export {name}", unit="row", leave=False):
        for col, lookup in extra.items():
            row[col] = lookup(row)
        row.update({k: _embedded(row.get(k)) for k in images})
        if "image" in row:
            row["image"] = _as_shown(row["image"], encode)
        writer.add(row[split_column] if split_column else SINGLE_SPLIT, row)
    return writer.close()


def image_lookup(folder: Path, ids: set[str]) -> dict[str, dict[str, Any]]:
    """id -> embedded image for just ``ids`` (memory stays bounded by what a config needs)."""
    out: dict[str, dict[str, Any]] = {}
    for table in iter_shards(folder, columns=["id", "image"]):
        for row in table.to_pylist():
            if row["id"] in ids:
                out[row["id"]] = _embedded(row["image"])
    return out


def write_curricula(curricula: Path, images: Path, enhanced: dict[float, Path], names: list[str],
                    root: Path, max_bytes: int, encode: Encoder = None) -> list[ConfigInfo]:
    """``curriculum-<name>``: every trial in presentation order with the image as shown (re-encoded
    by ``encode`` when the stimuli are JPEG); learning-phase trials in split ``train``, test-phase
    trials in split ``test`` (a sequence is both, sorted by ``sequence`` and ``trial``)."""
    table = read_table(curricula)
    feats = _relabel(Features.from_arrow_schema(table.schema), names)
    feats = Features({**feats, "image": Image()})
    rows = sorted(table.to_pylist(), key=lambda r: (r["curriculum"], r["sequence"], r["trial"]))
    shown = {k: _as_shown(v, encode) for k, v in shown_images(rows, images, enhanced).items()}
    infos: dict[str, ConfigWriter] = {}
    for row in rows:
        cname = f"curriculum-{row['curriculum']}"
        if cname not in infos:
            infos[cname] = ConfigWriter(root, ConfigInfo(cname, "curriculum", feats, row["curriculum"]), max_bytes)
        infos[cname].add(row["phase"], {**row, "image": shown[(row["id"], float(row["budget"] or 0))]})
    return [w.close() for w in infos.values()]


def write_responses(data_csv: Path, root: Path, max_bytes: int) -> ConfigInfo:
    """The ``responses`` config (opt-in): ``analyze``'s de-identified trial data (its Psych-DS
    CSV), one row per trial, typed by the data dictionary."""
    with data_csv.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    feats = Features({c: Value(RESPONSE_TYPES.get(c, "string")) for c in RESPONSE_COLUMNS})
    writer = ConfigWriter(root, ConfigInfo("responses", "responses", feats), max_bytes)
    for row in rows:
        writer.add(SINGLE_SPLIT, {c: _typed(row.get(c, ""), RESPONSE_TYPES.get(c, "string")) for c in RESPONSE_COLUMNS})
    return writer.close()


def _typed(text: str, dtype: str) -> Any:
    if text == "":
        return None
    if dtype == "int64":
        return int(float(text))
    if dtype == "float64":
        return float(text)
    return text == "true" if dtype == "bool" else text


def shown_images(rows: list[dict[str, Any]], images: Path,
                 enhanced: dict[float, Path]) -> dict[tuple[str, float], dict[str, Any]]:
    """(id, budget) -> the image a participant saw: enhanced at that budget, else natural."""
    needed: dict[float, set[str]] = {}
    for row in rows:
        needed.setdefault(float(row["budget"] or 0), set()).add(row["id"])
    shown: dict[tuple[str, float], dict[str, Any]] = {}
    for budget, ids in needed.items():
        if budget == 0:
            found = image_lookup(images, ids)
        elif budget in enhanced:
            found = image_lookup(enhanced[budget], ids)
        else:
            raise UserError(f"curricula use budget {budget:g}, but enhanced/{budget_dir(budget)} was not built")
        missing = sorted(ids - set(found))
        if missing:
            where = "images" if budget == 0 else f"enhanced/{budget_dir(budget)}"
            raise UserError(f"curricula show image {missing[0]} at budget {budget:g}, which {where} lacks "
                            f"({len(missing)} missing); rerun the enhance stage for its split")
        shown.update({(i, budget): img for i, img in found.items()})
    return shown


def enhanced_tables(folder: Path | None) -> dict[float, Path]:
    """budget -> ``enhanced/eps=<b>/`` table, for every built budget."""
    if folder is None or not folder.is_dir():
        return {}
    found = {parse_budget(sub.name): sub for sub in folder.iterdir() if has_table(sub)}
    return dict(sorted((b, p) for b, p in found.items() if b is not None))
