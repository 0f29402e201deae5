"""The one seeded-hash rule: every random choice derives from ``seed`` and stable names.

``seeded_hex(seed, "a", 3)`` is the SHA-256 of ``"seed:a:3"``. Sorting by it, or seeding a
generator from it, gives draws that depend only on the seed and the ids involved, never on row
order, batch size, shard count or executor (docs/architecture.md, "Determinism").
"""

from __future__ import annotations

import hashlib

import numpy as np


def seeded_hex(seed: int, *parts: object) -> str:
    """Hex SHA-256 of ``seed`` and ``parts`` joined by ``:``: an order-free sort key."""
    return hashlib.sha256(":".join(str(p) for p in (seed, *parts)).encode()).hexdigest()


def seeded_int(seed: int, *parts: object, bits: int = 32) -> int:
    """The first ``bits`` bits of :func:`seeded_hex` as an integer (a seed for a generator)."""
    return int(seeded_hex(seed, *parts)[: bits // 4], 16)


def seeded_rng(seed: int, *parts: object) -> np.random.Generator:
    """A numpy generator of its own for ``(seed, *parts)`` (64 bits of the hash)."""
    return np.random.default_rng(seeded_int(seed, *parts, bits=64))
