"""The ``pairs-<budget>`` configs: each enhanced image next to its original in one row.

The Hub viewer shows one config at a time, so an original and its enhanced version could only be
compared by joining two configs on ``id``; a pairs row holds both images (two ``Image``
columns), the budget, the guide's logits before and after and the size of the change. The
enhance stage writes its rows in the images table's order (a subset of its splits), so the two
tables are merged in one pass, one shard of each in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets import Features, Image

from .. import console
from ..errors import UserError
from ..io.paths import budget_dir
from ..io.tables import iter_shards, read_features
from .configs import ConfigInfo, ConfigWriter, Encoder, _as_shown, _embedded, _relabel, _rows


def pair_features(enhanced: Path, names: list[str]) -> Features:
    """The enhanced table's columns with ``image`` replaced by ``original`` and ``enhanced``."""
    feats = _relabel(read_features(enhanced), names)
    out: dict[str, Any] = {}
    for col, feat in feats.items():
        if col == "image":
            continue
        out[col] = feat
        if col == "budget":
            out["original"], out["enhanced"] = Image(), Image()
    out.setdefault("original", Image())
    out.setdefault("enhanced", Image())
    return Features(out)


def _originals(images: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for table in iter_shards(images, columns=["id", "image"]):
        for row in table.to_pylist():
            yield row["id"], row["image"]


def write_pairs(images: Path, enhanced: Path, budget: float, names: list[str], root: Path, max_bytes: int,
                encode: Encoder = None) -> ConfigInfo:
    """``pairs-<budget>``: every row of ``enhanced/eps=<budget>`` with its original image beside it
    (``original`` exactly as in ``default``, ``enhanced`` as in ``enhanced-<budget>``)."""
    name = f"pairs-{budget:g}"
    writer = ConfigWriter(root, ConfigInfo(name, "pairs", pair_features(enhanced, names), budget), max_bytes)
    originals = _originals(images)
    for row in console.progress(_rows(enhanced), desc=f"export {name}", unit="row", leave=False):
        original = _find(originals, row["id"], budget)
        row["original"] = _embedded(original)
        row["enhanced"] = _as_shown(_embedded(row.pop("image")), encode)
        writer.add(row["split"], row)
    return writer.close()


def _find(originals: Iterator[tuple[str, dict[str, Any]]], wanted: str, budget: float) -> dict[str, Any]:
    """The original of ``wanted``, advancing through the images table (both tables share its order)."""
    for image_id, image in originals:
        if image_id == wanted:
            return image
    raise UserError(f"enhanced/{budget_dir(budget)}: image {wanted} is not in the images table (or not in its "
                    "order); rerun `lwise-build enhance` for this corpus")
