"""The scratch cache of finished units of work, outside the DVC outputs (``$LWISE_CACHE``).

A heavy stage's unit result is a small Arrow table stored under a key that hashes everything
the result depends on (input content, model hash, params that matter, method version), so a
rerun after a crash, or after new images arrive, only computes the missing keys
(docs/architecture.md, "Units and the cache").
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .paths import cache_root


class ShardCache:
    """Finished unit results of one stage, keyed by content hash."""

    def __init__(self, stage: str, root: Path | None = None):
        self.dir = (root or cache_root()) / stage

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.parquet"

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    def get(self, key: str, columns: list[str] | None = None) -> pa.Table | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            return pq.read_table(p, columns=columns)
        except (OSError, pa.ArrowInvalid):  # a torn cache entry is just recomputed
            p.unlink(missing_ok=True)
            return None

    def put(self, key: str, table: pa.Table) -> None:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(p)
