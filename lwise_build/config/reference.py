"""The params reference (``docs/params.md``), generated from the schema so it cannot drift.

Every dataclass of :mod:`.params` becomes one table (key, type, default, meaning), in the order a
reader meets them in ``params.yaml``; ``lwise-build params --reference`` prints it and
``tests/test_params_reference.py`` fails when the committed file differs.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, Union

from .params import Params

HEADER = """# params.yaml reference

Generated from the schema (`lwise_build/config/params.py`) by `lwise-build params --reference`;
`tests/test_params_reference.py` fails when this file is out of date. Every key is checked
before any work starts (`lwise-build check`): unknown keys, wrong types and out-of-range values
fail with the key path. `<corpus>`, `<model>` and `<name>` stand for names you choose.
"""


def _nested(tp: Any) -> type | None:
    """The dataclass a field holds (directly, optionally, or as list/dict values), if any."""
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        found = _nested(arg)
        if found is not None:
            return found
    return None


def type_text(tp: Any) -> str:
    """A short reader-facing type: ``integer``, ``list of numbers``, ``l2 | linf``, ``string or null``."""
    words = {int: "integer", float: "number", str: "string", bool: "true/false", type(None): "null"}
    origin = typing.get_origin(tp)
    if tp in words:
        return words[tp]
    if origin is Literal:
        return " \\| ".join(str(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        inner = type_text(typing.get_args(tp)[0])
        return f"list of {inner}" if "\\|" not in inner else f"list of ({inner})"
    if origin is dict:
        key, val = (type_text(a) for a in typing.get_args(tp))
        return f"mapping {key} → {val}"
    if dataclasses.is_dataclass(tp):
        return "mapping (below)"
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        names = list(dict.fromkeys("date (YYYY-MM-DD)" if getattr(a, "__name__", "") == "date" else type_text(a)
                                   for a in args))
        optional = " or null" if type(None) in typing.get_args(tp) else ""
        return " or ".join(names) + optional
    return getattr(tp, "__name__", str(tp))


def default_text(f: dataclasses.Field) -> str:
    """The default as YAML-ish inline text; ``required`` when there is none."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(below)"
    if isinstance(value, types.MappingProxyType):
        value = dict(value)
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value)}`"


def _rows(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    out = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        doc = f.metadata.get("doc", "").replace("|", "\\|")
        out.append(f"| `{f.name}` | {type_text(hints[f.name])} | {default_text(f)} | {doc} |")
    return out


def _sections(cls: type, path: str) -> list[tuple[str, type]]:
    """(key path, dataclass) of ``cls`` and every dataclass below it, depth first."""
    found = [(path, cls)]
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        sub = _nested(tp)
        if sub is None:
            continue
        origin = typing.get_origin(tp)
        placeholder = {"corpora": "<corpus>", "models": "<model>"}.get(f.name, "<name>")
        key = f"{path}.{f.name}" if path else f.name
        key += f".{placeholder}" if origin is dict else "[]" if origin in (list, tuple) else ""
        found += _sections(sub, key)
    return found


def params_reference() -> str:
    """The whole reference as Markdown."""
    parts = [HEADER]
    for path, cls in _sections(Params, ""):
        title = f"`{path}`" if path else "Top level"
        doc = " ".join((cls.__doc__ or "").split()).replace("``", "`")
        parts += [f"## {title}\n", f"{doc}\n" if doc else "", *_rows(cls), ""]
    return "\n".join(p for p in parts if p is not None).rstrip("\n") + "\n"
