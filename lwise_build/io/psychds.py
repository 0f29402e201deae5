"""Behavioural data in the Psych-DS layout (https://psych-ds.github.io/): a folder with
``dataset_description.json`` (schema.org ``Dataset`` with a ``variableMeasured`` data dictionary
of every column) and ``data/<keyword>-<value>_data.csv``; written by ``analyze``, carried by the
export's opt-in ``responses`` config.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .staging import write_json

SCHEMA_VERSION = "Psych-DS 0.1.0"


def keyword_value(text: str) -> str:
    """A Psych-DS filename keyword value: letters and digits only."""
    return re.sub(r"[^A-Za-z0-9]", "", text) or "x"


def data_file(corpus: str) -> str:
    """The data file's path inside the dataset folder."""
    return f"data/study-{keyword_value(corpus)}_data.csv"


def write_psychds(folder: Path, *, name: str, description: str, rows: Sequence[Mapping[str, Any]],
                  columns: Mapping[str, str], corpus: str, extra: Mapping[str, Any] | None = None) -> Path:
    """The dataset folder: one CSV of ``rows`` with ``columns`` (name -> meaning) in that order."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    path = folder / data_file(corpus)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(list(columns))
        w.writerows([[_cell(r.get(c)) for c in columns] for r in rows])
    meta = {"@context": "https://schema.org/", "@type": "Dataset", "name": name, "description": description,
            "schemaVersion": SCHEMA_VERSION,
            "variableMeasured": [{"@type": "PropertyValue", "name": c, "description": d} for c, d in columns.items()],
            **(extra or {})}
    write_json(folder / "dataset_description.json", meta)
    return path


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.10g}"
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else v
