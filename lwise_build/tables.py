"""Stage tables: sharded Parquet written through ``datasets`` features, staged and renamed atomically.

Every stage writes its own table keyed by ``id`` into ``data/<corpus>/<stage>/`` as
``data-00000-of-00003.parquet`` ...; the Hugging Face features (Image, ClassLabel) travel in the
Parquet schema metadata, so ``load_dataset("parquet", data_files=...)`` restores them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features

from .errors import UserError

DATA_ROOT_ENV = "LWISE_DATA"
CACHE_ENV = "LWISE_CACHE"


def data_root() -> Path:
    """Root of the stage outputs (``data/`` beside params.yaml, or ``$LWISE_DATA``)."""
    return Path(os.environ.get(DATA_ROOT_ENV, "data"))


def stage_dir(corpus: str, stage: str) -> Path:
    """``data/<corpus>/<stage>``: where a stage writes its table and side files."""
    return data_root() / corpus / stage


def cache_root() -> Path:
    """Scratch cache for finished shards, outside DVC outputs (``$LWISE_CACHE`` or ~/.cache)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lwise-build"
    return Path(os.environ.get(CACHE_ENV, default))


@contextlib.contextmanager
def staged_output(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success replace ``final`` with it.

    An interrupted or failed stage leaves the previous output (or nothing) in place, never a
    half-written one.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it owner-only; outputs are ordinary folders
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def shard_name(index: int, count: int, prefix: str = "data") -> str:
    return f"{prefix}-{index:05d}-of-{count:05d}.parquet"


def write_shard(rows: dict[str, list[Any]], features: Features, path: Path) -> None:
    """Encode columns with ``features`` (PIL/bytes -> Image structs) and write one Parquet file."""
    encoded = features.encode_batch(dict(rows))
    table = pa.Table.from_pydict(encoded, schema=features.arrow_schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=256, write_statistics=False)


def write_table(
    shards: Iterable[dict[str, list[Any]]], features: Features, out: Path, prefix: str = "data"
) -> list[Path]:
    """Write each column batch of ``shards`` as one Parquet shard in ``out`` (names know the count)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp_paths = []
    for i, rows in enumerate(shards):
        tmp = out / f".{prefix}-{i:05d}.parquet"
        write_shard(rows, features, tmp)
        tmp_paths.append(tmp)
    if not tmp_paths:  # an empty table still has a schema
        tmp = out / f".{prefix}-00000.parquet"
        write_shard({name: [] for name in features}, features, tmp)
        tmp_paths.append(tmp)
    final = []
    for i, tmp in enumerate(tmp_paths):
        target = out / shard_name(i, len(tmp_paths), prefix)
        tmp.rename(target)
        final.append(target)
    return final


def shard_paths(folder: Path, prefix: str = "data") -> list[Path]:
    """The Parquet shards of a table, in order; a missing table is a one-line error."""
    folder = Path(folder)
    paths = sorted(folder.glob(f"{prefix}-*-of-*.parquet"))
    if not paths:
        raise UserError(f"{folder}: no table here; run the stage that builds it first (dvc repro)")
    return paths


def read_features(folder: Path, prefix: str = "data") -> Features:
    """The ``datasets`` features stored with a table."""
    return Features.from_arrow_schema(pq.read_schema(shard_paths(folder, prefix)[0]))


def read_table(folder: Path, columns: list[str] | None = None, prefix: str = "data") -> pa.Table:
    """All shards of a table as one Arrow table (images stay encoded as PNG bytes)."""
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in shard_paths(folder, prefix))


def iter_shards(folder: Path, columns: list[str] | None = None, prefix: str = "data") -> Iterator[pa.Table]:
    """Shard by shard, so memory stays bounded by one shard."""
    for p in shard_paths(folder, prefix):
        yield pq.read_table(p, columns=columns)


def file_digest(path: Path, algo: str = "sha256") -> str:
    """Hex digest of a file's bytes."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def json_digest(obj: Any) -> str:
    """Stable hash of plain data (for cache keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def write_json(path: Path, obj: Any) -> None:
    """Deterministic, human-readable JSON (sorted keys, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n", encoding="utf-8")


class ShardCache:
    """Finished shards of a long stage, keyed by (stage, input content, model hash, params).

    A rerun after a crash, or after new images are added, only computes the missing keys.
    """

    def __init__(self, stage: str, root: Path | None = None):
        self.dir = (root or cache_root()) / stage

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.parquet"

    def get(self, key: str) -> pa.Table | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            return pq.read_table(p)
        except (OSError, pa.ArrowInvalid):  # a torn cache entry is just recomputed
            p.unlink(missing_ok=True)
            return None

    def put(self, key: str, table: pa.Table) -> None:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(p)
