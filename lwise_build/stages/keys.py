"""Unit cache keys, computed in one place from what a heavy stage declares (docs/architecture.md,
"Units and the cache").

Each heavy stage declares a :class:`CacheKey` in its light ``key.py``: the method version, the
resolved params (dotted paths into what ``resolve`` writes for the stage) whose values enter every
key, and the named content fields its units supply (input content id, model hash, device, derived
targets). Every other resolved param is listed with how it reaches the results without entering
the key (``derived``: through a content field, by choosing which units exist, or only in what is
recomputed every run) or why it cannot change them (``excluded``); tests/test_cache_keys.py
perturbs each one on a warm cache for score, enhance and metamers (ingest's is checked for
its declarations only). Keys hash the same serialisation as the resolved files (plain
JSON with sorted keys), so a key changes exactly when a declared value does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..io.digests import json_digest


@dataclass(frozen=True)
class CacheKey:
    """What a heavy stage's cached unit results depend on; :meth:`prefix` and :meth:`key` hash it."""

    version: int  # the method version: bump when the method changes results for the same inputs
    params: tuple[str, ...] = ()  # resolved-param paths whose values enter every key
    run_fields: tuple[str, ...] = ()  # content fields shared by a run's units (model hash, device)
    unit_fields: tuple[str, ...] = ()  # content fields of one unit (image id, target, budget)
    derived: Mapping[str, str] = field(default_factory=dict)  # path -> how it reaches results instead
    excluded: Mapping[str, str] = field(default_factory=dict)  # path -> why it cannot change results

    def __post_init__(self) -> None:
        seen = [*self.params, *self.derived, *self.excluded]
        twice = sorted({p for p in seen if seen.count(p) > 1})
        if twice:
            raise ValueError(f"cache key: {', '.join(twice)} declared twice")

    def prefix(self, resolved: Mapping[str, Any], **run: Any) -> str:
        """The digest of the version, the declared params' values in ``resolved`` and the run's
        content fields (exactly the declared ones)."""
        _same(run, self.run_fields, "run")
        values = {path: lookup(resolved, path) for path in self.params}
        return json_digest({"version": self.version, "params": values, "run": run})

    def key(self, prefix: str, **unit: Any) -> str:
        """One unit's key: ``prefix`` with the unit's content fields (exactly the declared ones)."""
        _same(unit, self.unit_fields, "unit")
        return json_digest({"prefix": prefix, "unit": unit})


def lookup(resolved: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of resolved params (a missing path is a declaration error)."""
    value: Any = resolved
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"cache key: {path!r} is not a resolved param of the stage")
        value = value[part]
    return value


def _same(given: Mapping[str, Any], declared: tuple[str, ...], what: str) -> None:
    """Fail unless a stage passes exactly the declared content fields (none slips in unnamed)."""
    if set(given) != set(declared):
        raise TypeError(f"cache key: {what} fields {sorted(given)} are not the declared {sorted(declared)}")
