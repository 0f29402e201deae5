"""Run the ingest stage on one corpus ``c`` from an ingest section, as the ingest tests do."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from lwise_build.config.load import load_params
from lwise_build.io.tables import read_features, read_table
from lwise_build.stages.ingest.stage import Ingest


def write_params(tmp_path: Path, ingest_params: dict, seed: int = 0) -> Path:
    """A params.yaml in ``tmp_path`` with one corpus ``c`` and this ingest section."""
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"seed": seed, "corpora": {"c": {"ingest": ingest_params}}}, allow_unicode=True))
    return p


def run_ingest(tmp_path: Path, **ingest_params):
    """Ingest corpus ``c`` (16 px unless given): its rows, features and ingest.json metrics."""
    ingest_params.setdefault("image_size", 16)
    Ingest(load_params(write_params(tmp_path, ingest_params)), "c").run()
    folder = tmp_path / "data" / "c" / "images"
    return read_table(folder).to_pylist(), read_features(folder), json.loads((folder.parent / "metrics" / "details" / "ingest.json").read_text())
