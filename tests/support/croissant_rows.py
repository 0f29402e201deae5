"""Every record of a Hub folder's croissant.json read with mlcroissant, next to the Parquet rows.

Rows are compared as canonical JSON (text decoded, NaN as null, an image as the SHA-256 of its
decoded pixels), so a record equals its Parquet row exactly when every field does.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from PIL import Image


def _pixels(img: Image.Image) -> str:
    arr = np.asarray(img)
    return f"{img.mode}{arr.shape}:" + hashlib.sha256(arr.tobytes()).hexdigest()


def _value(v: Any) -> Any:
    if isinstance(v, Image.Image):
        return _pixels(v)
    if isinstance(v, dict) and "bytes" in v:
        return _pixels(Image.open(io.BytesIO(v["bytes"])))
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _canonical(row: dict[str, Any]) -> str:
    return json.dumps({k: _value(v) for k, v in row.items()}, sort_keys=True)


def croissant_records(folder: Path) -> dict[str, Counter]:
    """record set name -> the multiset of its records, read by mlcroissant from croissant.json."""
    import mlcroissant as mlc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = mlc.Dataset(jsonld=str(folder / "croissant.json"))
        out = {}
        for rs in ds.metadata.record_sets:
            prefix = rs.name + "/"
            out[rs.name] = Counter(_canonical({k.removeprefix(prefix): v for k, v in rec.items()})
                                   for rec in ds.records(record_set=rs.uuid))
    return out


def parquet_records(folder: Path) -> dict[str, Counter]:
    """config -> the multiset of its rows read with pyarrow (``split`` from the file name when the
    rows have no such column), for every config provenance.json lists."""
    prov = json.loads((folder / "provenance.json").read_text())
    out = {}
    for name, cfg in prov["configs"].items():
        rows: Counter = Counter()
        for split, files in cfg["files"].items():
            for rel in files:
                for row in pq.read_table(folder / rel).to_pylist():
                    rows[_canonical({"split": split, **row})] += 1
        out[name] = rows
    return out
