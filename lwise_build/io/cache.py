"""The unit cache: per-item results of the heavy stages, outside the DVC outputs (``$LWISE_CACHE``).

An item is one image (score), one image at one budget (enhance), one reference at one
generator layer (metamers) or one source file (ingest); its key hashes everything its result
depends on (content, model hash, the params that matter, the method version). Results are stored
in *packs*: one Parquet file per computed batch, named by the SHA-256 of its bytes, with a ``key``
column. So an entry is never half-written (write to a temporary name, rename), two builds writing
the same pack at once leave one valid file, and a corrupt or truncated pack is detected (its
bytes no longer hash to its name), deleted and recomputed, never used
(docs/architecture.md, "Units and the cache").
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .digests import bytes_digest
from .paths import cache_root
from .staging import disk_errors


class ItemCache:
    """Packs of item results of one stage: ``has``/``missing`` by key, ``put`` a batch, ``get``
    rows by key in the order asked."""

    def __init__(self, stage: str, root: Path | None = None):
        self.stage = stage
        self.dir = (root or cache_root()) / stage
        self._index: dict[str, tuple[Path, int]] | None = None
        self._verified: set[Path] = set()

    # ------------------------------------------------------------ index -----------------------
    def packs(self) -> list[Path]:
        return sorted(self.dir.glob("*/*.parquet"))

    @property
    def index(self) -> dict[str, tuple[Path, int]]:
        """key -> (pack, row), read from the packs' key columns (first pack wins on duplicates)."""
        if self._index is None:
            self._index = {}
            for pack in self.packs():
                try:
                    keys = pq.read_table(pack, columns=["key"]).column("key").to_pylist()
                except (OSError, pa.ArrowException):
                    self._drop(pack)
                    continue
                for row, key in enumerate(keys):
                    self._index.setdefault(key, (pack, row))
        return self._index

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys with no valid entry; packs holding wanted keys are checked against their name."""
        keys = list(dict.fromkeys(keys))
        for pack in sorted({self.index[k][0] for k in keys if k in self.index}):
            if not self._verify(pack):
                self._drop(pack)
        return [k for k in keys if k not in self.index]

    def _verify(self, pack: Path) -> bool:
        if pack in self._verified:
            return True
        try:
            ok = bytes_digest(pack.read_bytes()) == pack.stem
        except OSError:
            ok = False
        if ok:
            self._verified.add(pack)
            os.utime(pack)  # "used now", for `lwise-build cache clear --older-than`
        return ok

    def _drop(self, pack: Path) -> None:
        """Forget (and delete) a pack that is corrupt or unreadable: its items get recomputed."""
        pack.unlink(missing_ok=True)
        if self._index is not None:
            self._index = {k: v for k, v in self._index.items() if v[0] != pack}

    # ------------------------------------------------------------ write / read ----------------
    def put(self, table: pa.Table) -> Path:
        """Store one computed batch (a table with a ``key`` column) as a content-named pack."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd", write_statistics=False)
        data = sink.getvalue().to_pybytes()
        name = bytes_digest(data)
        pack = self.dir / name[:2] / f"{name}.parquet"
        if not pack.exists():
            pack.parent.mkdir(parents=True, exist_ok=True)
            tmp = pack.with_name(f".{name}.tmp{os.getpid()}-{time.monotonic_ns()}")
            try:
                with disk_errors(self.dir, need=len(data)):
                    tmp.write_bytes(data)
            except BaseException:
                tmp.unlink(missing_ok=True)  # never a partial file in the cache
                raise
            tmp.replace(pack)  # atomic: a concurrent writer of the same pack wrote the same bytes
        self._verified.add(pack)
        index = self.index
        for row, key in enumerate(table.column("key").to_pylist()):
            index.setdefault(key, (pack, row))
        return pack

    def get(self, keys: Sequence[str], columns: list[str] | None = None) -> pa.Table:
        """The rows of ``keys`` (all present: call :meth:`missing` first), in that order."""
        by_pack: dict[Path, list[int]] = {}
        where = []
        for key in keys:
            if key not in self.index:
                raise KeyError(key)
            pack, row = self.index[key]
            by_pack.setdefault(pack, []).append(row)
            where.append((pack, row))
        parts, offset, position = [], 0, {}
        for pack, rows in by_pack.items():
            uniq = sorted(set(rows))
            parts.append(pq.read_table(pack, columns=columns).take(pa.array(uniq, pa.int64())))
            position.update({(pack, r): offset + i for i, r in enumerate(uniq)})
            offset += len(uniq)
        if not parts:
            schema_source = self.packs()
            return pq.read_table(schema_source[0], columns=columns).slice(0, 0) if schema_source else pa.table({})
        table = pa.concat_tables(parts, promote_options="default")  # an all-null column of an older pack: typed
        return table.take(pa.array([position[w] for w in where], pa.int64()))


# ---------------------------------------------------------------- lwise-build cache ------------
def cache_report(root: Path | None = None) -> list[tuple[str, int, int]]:
    """(stage, packs, bytes) for every stage folder in the cache."""
    base = root or cache_root()
    out = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        files = [f for f in folder.rglob("*") if f.is_file()]
        out.append((folder.name, len(files), sum(f.stat().st_size for f in files)))
    return out


def clear_cache(older_than_s: float | None = None, stage: str | None = None,
                root: Path | None = None) -> tuple[int, int]:
    """Delete cache files (those unused for ``older_than_s`` seconds, if given); (files, bytes)."""
    base = (root or cache_root()) / stage if stage else (root or cache_root())
    now, files, size = time.time(), 0, 0
    for f in sorted(base.rglob("*")) if base.is_dir() else []:
        if f.is_file() and (older_than_s is None or now - f.stat().st_mtime > older_than_s):
            size += f.stat().st_size
            f.unlink()
            files += 1
    return files, size
