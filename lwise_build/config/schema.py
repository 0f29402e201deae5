"""Turn plain YAML data into frozen dataclasses, checking keys, types and ranges on the way.

Every error is a :class:`UserError` whose message is one line naming the key path, e.g.
``corpora.digits.ingest.image_size: must be a positive integer, got -3``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

from ..errors import UserError, quote

Check = Callable[[Any], "str | None"]


def param(default: Any = dataclasses.MISSING, *, check: Check | None = None, doc: str = "") -> Any:
    """A dataclass field with an optional range check (returns an error text or None)."""
    kwargs: dict[str, Any] = {"metadata": {"check": check, "doc": doc}}
    if isinstance(default, list):
        kwargs["default_factory"] = (lambda d=default: tuple(d))
    elif isinstance(default, dict):
        kwargs["default_factory"] = (lambda d=default: types.MappingProxyType(dict(d)))
    elif dataclasses.is_dataclass(default) and not isinstance(default, type):
        kwargs["default_factory"] = (lambda d=default: d)
    elif default is not dataclasses.MISSING:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


# ---- range checks -------------------------------------------------------------------------
def positive(v: Any) -> str | None:
    return None if v > 0 else "must be positive"


def non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def fraction(v: Any) -> str | None:
    return None if 0 <= v <= 1 else "must be between 0 and 1"


def each(check: Check) -> Check:
    """Apply ``check`` to every element of a list or every value of a dict."""

    def run(v: Any) -> str | None:
        items = v.values() if isinstance(v, dict) else v
        for item in items:
            err = check(item)
            if err:
                return f"{err} (each value)"
        return None

    return run


# ---- the builder ----------------------------------------------------------------------------
_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp in _TYPE_WORDS:
        return _TYPE_WORDS[tp]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    return str(tp)


def _fail(path: str, what: str, value: Any) -> UserError:
    return UserError(f"{path}: {what}, got {quote(value)}")


def convert(tp: Any, value: Any, path: str) -> Any:
    """Convert ``value`` to type ``tp`` (a hint), or raise a one-line UserError."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(arg, value, path)
            except UserError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise _fail(path, f"must be {_describe(tp)}", value)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise _fail(path, f"must be {_describe(tp)}", value)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _fail(path, "must be a list", value)
        (item_tp, *_) = typing.get_args(tp)
        return tuple(convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, "must be a mapping", value)
        key_tp, val_tp = typing.get_args(tp)
        return types.MappingProxyType(
            {convert(key_tp, k, path): convert(val_tp, v, f"{path}.{k}") for k, v in value.items()}
        )
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise _fail(path, f"must be {_describe(tp)}", value)


def build(cls: type, data: Any, path: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys with a did-you-mean."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _fail(path, "must be a mapping", data)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key)[:100], list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(fields)})"
            raise UserError(f"{_join(path, quote(key) if len(str(key)) > 60 else key)}: unknown key{hint}")
    values = {}
    for name, f in fields.items():
        where = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise UserError(f"{where}: required key is missing")
            continue
        values[name] = convert(hints[name], data[name], where)
        check = f.metadata.get("check")
        if check and values[name] is not None:
            err = check(values[name])
            if err:
                raise _fail(where, err, data[name])
    obj = cls(**values)
    validate = getattr(obj, "validate", None)
    if validate:
        validate(path)
    return obj


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def to_plain(obj: Any) -> Any:
    """The inverse of :func:`build`: plain dicts, lists and scalars (for hashing and provenance)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (dict, types.MappingProxyType)):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj
