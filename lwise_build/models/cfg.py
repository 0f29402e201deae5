"""The built-model folder format: ``model.safetensors`` plus ``config.json`` (no torch needed).

``config.json`` carries what rebuilding the model needs (arch, classes, input channels,
mean/std) and the weights' SHA-256, which stage caches and the Hub provenance use as the model
hash. Light on purpose: export and publish read it without importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UserError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def is_built(folder: Path) -> bool:
    """Whether ``folder`` holds a built model (config and weights)."""
    folder = Path(folder)
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def read_config(folder: Path) -> dict[str, Any]:
    """The ``config.json`` of a model folder; a missing or broken one is a one-line error."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file():
        raise UserError(f"{folder}: not a built model folder (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        cfg = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{folder / CONFIG_FILE}: not valid JSON ({exc})") from None
    return cfg


def write_config(folder: Path, cfg: dict[str, Any]) -> None:
    """Write ``config.json`` deterministically (sorted keys, trailing newline)."""
    (Path(folder) / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
