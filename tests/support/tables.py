"""A tiny images table written as ingest writes it (the schema every later stage reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The classes of the ``tiny_images`` fixture's corpus (conftest.py), in label order.
TINY_CLASSES = ["bar", "dot", "ring"]


def write_images_table(folder: Path, arrays: np.ndarray, labels: list[int], splits: list[str],
                       class_names: list[str], extra: dict | None = None) -> list[str]:
    """Write ``arrays`` (N, H, W[, C] uint8) as an images table (the ingest schema); return ids."""
    from datasets import ClassLabel, Features, Image, Value

    from lwise_build.io.images import encode_png, image_id
    from lwise_build.io.tables import write_table

    pngs = [encode_png(a) for a in arrays]
    ids = [image_id(p) for p in pngs]
    rows = {
        "id": ids, "image": [{"bytes": p, "path": None} for p in pngs], "label": list(labels),
        "split": list(splits), "source": [f"array:{i}" for i in range(len(pngs))], **(extra or {}),
    }
    feats = {"id": Value("string"), "image": Image(), "label": ClassLabel(names=class_names),
             "split": Value("string"), "source": Value("string")}
    for key, values in (extra or {}).items():
        feats[key] = Value("float64" if isinstance(values[0], float) else "string")
    write_table([rows], Features(feats), Path(folder))
    return ids
