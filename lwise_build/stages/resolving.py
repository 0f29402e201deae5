"""What the stages' ``resolved`` functions share (each lives in its stage's ``spec.py``): plain
JSON data, a section with the seed and device, scoring's class mapping, a local checkpoint's hash.

Light like the specs: ``resolve`` runs on every ``dvc repro`` (docs/architecture.md, "Sources
and params").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config.params import Params
from ..config.schema import to_plain
from ..io.fingerprint import files_fingerprint


def plain(obj: Any) -> Any:
    """JSON-ready plain data (dates and other scalars as text), as written to resolved files."""
    return json.loads(json.dumps(obj, default=str))


def section(params: Params, corpus: str, name: str) -> dict[str, Any]:
    """The seed, the device and one section of the corpus (what most model stages read)."""
    spec = params.corpus(corpus)
    return plain({"seed": params.seed, "device": params.device, name: to_plain(getattr(spec, name))})


def mapping(params: Params, corpus: str) -> dict[str, Any]:
    """Scoring's class mapping when one is set (every stage that maps labels onto a head uses it)."""
    sp = params.corpus(corpus).score
    if not (sp.class_map or sp.target_column):
        return {}
    return {"score_mapping": plain({"class_map": dict(sp.class_map), "target_column": sp.target_column})}


def is_local(source: str) -> bool:
    """A checkpoint given as a file path (not an http(s) URL or ``hf://``, which name their content)."""
    return not source.startswith(("http://", "https://", "hf://"))


def checkpoint_digest(source: str) -> str:
    """The sha256 of a local checkpoint file ("" when it does not exist; train then says so), read
    again only when its size or modification time changed (the source stat cache)."""
    path = Path(source).expanduser()
    return files_fingerprint(path, [(path.name, path)])[0][path.name] if path.is_file() else ""  # own stat cache
