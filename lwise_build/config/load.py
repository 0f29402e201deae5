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
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=BoundedLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except RecursionError:
        raise UserError(f"{path}: YAML nested too deeply to be params") from None
    except TooLarge as exc:
        raise UserError(f"{path}: {exc}; params need far fewer (an alias expanded over and over?)") from None
    return parse_params(data or {})


class TooLarge(ValueError):
    """A YAML document whose aliases expand to more values than params can hold."""


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses documents expanding (aliases included) to more than
    :data:`MAX_VALUES` values, before building any of them: a "billion laughs" alias bomb in a
    list or mapping would otherwise become a structure whose every use (a check, an error
    message, ``repr``) walks billions of values."""

    def construct_document(self, node: yaml.Node) -> object:
        expanded_size(node, {})
        return super().construct_document(node)


#: Values (scalars, lists, mappings) a params document may expand to; real ones have a few thousand.
MAX_VALUES = 200_000


def expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias expanded (each shared node counted
    once per use, computed once); raises :class:`TooLarge` past :data:`MAX_VALUES`."""
    if id(node) in memo:
        return memo[id(node)]
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(expanded_size(k, memo) + expanded_size(v, memo) for k, v in node.value)
    if size > MAX_VALUES:
        raise TooLarge(f"its aliases expand to more than {MAX_VALUES:,} values")
    memo[id(node)] = size
    return size


def parse_params(data: dict) -> Params:
    """Params from plain data (what ``params.yaml`` holds), fully checked."""
    params = build(Params, data, "")
    check_references(params)
    return params
