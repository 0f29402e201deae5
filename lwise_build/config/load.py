"""Read ``params.yaml`` into the typed :class:`~.params.Params`, every problem one line.

The schema checks keys, types and ranges per section; :mod:`.references` then checks the names
sections use of each other. Nothing runs before both pass.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import UserError
from .params import Params
from .references import check_references
from .schema import build


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file; every problem is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_params(data or {})


def parse_params(data: dict) -> Params:
    """Params from plain data (what ``params.yaml`` holds), fully checked."""
    params = build(Params, data, "")
    check_references(params)
    return params
