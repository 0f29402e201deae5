"""Stage tables: sharded Parquet keyed by ``id``, with ``datasets`` features in the schema.

Every stage writes its own table into ``data/<corpus>/<stage>/`` as
``data-00000-of-00003.parquet`` ...; the Hugging Face features (Image, ClassLabel) travel in the
Parquet schema metadata, so ``load_dataset("parquet", data_files=...)`` restores them. Readers go
shard by shard, so memory stays bounded by one shard.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import UserError

if TYPE_CHECKING:
    from datasets import Features

SHARD_GLOB = "-*-of-*.parquet"


def shard_name(index: int, count: int, prefix: str = "data") -> str:
    """``data-00002-of-00005.parquet``: the names know the count, like the Hub's."""
    return f"{prefix}-{index:05d}-of-{count:05d}.parquet"


def write_shard(rows: dict[str, list[Any]], features: Features, path: Path) -> None:
    """Encode columns with ``features`` (PIL/bytes -> Image structs) and write one Parquet file."""
    encoded = features.encode_batch(dict(rows))
    table = pa.Table.from_pydict(encoded, schema=features.arrow_schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=256, write_statistics=False)


def write_table(shards: Iterable[dict[str, list[Any]]], features: Features, out: Path,
                prefix: str = "data") -> list[Path]:
    """Write each column batch of ``shards`` as one Parquet shard in ``out``; an empty table
    still gets one shard with the schema."""
    out.mkdir(parents=True, exist_ok=True)
    tmp_paths = []
    for i, rows in enumerate(shards):
        tmp = out / f".{prefix}-{i:05d}.parquet"
        write_shard(rows, features, tmp)
        tmp_paths.append(tmp)
    if not tmp_paths:
        tmp = out / f".{prefix}-00000.parquet"
        write_shard({name: [] for name in features}, features, tmp)
        tmp_paths.append(tmp)
    final = []
    for i, tmp in enumerate(tmp_paths):
        target = out / shard_name(i, len(tmp_paths), prefix)
        tmp.rename(target)
        final.append(target)
    return final


def has_table(folder: Path | None, prefix: str = "data") -> bool:
    """Whether a stage table exists (a missing optional input just leaves its part out)."""
    return folder is not None and Path(folder).is_dir() and any(Path(folder).glob(prefix + SHARD_GLOB))


def shard_paths(folder: Path, prefix: str = "data") -> list[Path]:
    """The Parquet shards of a table, in order; a missing table is a one-line error."""
    paths = sorted(Path(folder).glob(prefix + SHARD_GLOB))
    if not paths:
        raise UserError(f"{folder}: no table here; run the stage that builds it first (dvc repro)")
    return paths


def read_features(folder: Path, prefix: str = "data") -> Features:
    """The ``datasets`` features stored with a table."""
    from datasets import Features

    return Features.from_arrow_schema(pq.read_schema(shard_paths(folder, prefix)[0]))


def column_names(folder: Path) -> list[str]:
    """The columns of a table (from the first shard's schema, no data read)."""
    return pq.read_schema(shard_paths(folder)[0]).names


def class_names(folder: Path) -> list[str]:
    """The ``label`` ClassLabel names of a table (the corpus's classes, in index order)."""
    return list(read_features(folder)["label"].names)


def shard_sizes(folder: Path) -> list[int]:
    """Rows per shard, from the Parquet footers."""
    return [pq.read_metadata(p).num_rows for p in shard_paths(folder)]


def read_table(folder: Path, columns: list[str] | None = None, prefix: str = "data") -> pa.Table:
    """All shards of a table as one Arrow table (images stay encoded as PNG bytes)."""
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in shard_paths(folder, prefix))


def iter_shards(folder: Path, columns: list[str] | None = None, prefix: str = "data") -> Iterator[pa.Table]:
    """Shard by shard, so memory stays bounded by one shard."""
    for p in shard_paths(folder, prefix):
        yield pq.read_table(p, columns=columns)


def rows_by_id(folder: Path, ids: Iterable[str], columns: list[str], key: str = "id") -> pa.Table:
    """The rows whose ``key`` is in ``ids`` (in table order), reading one shard at a time."""
    wanted = pa.array(sorted(set(ids)), type=pa.string())
    parts = [t.filter(pc.is_in(t[key], value_set=wanted)) for t in iter_shards(folder, columns)]
    return pa.concat_tables(parts)


def read_rows(path: Path, rows: list[int], columns: list[str]) -> pa.Table:
    """Rows ``rows`` (in that order) of one Parquet shard, reading only the row groups holding them.

    The row groups come from the Parquet footer (``pyarrow`` metadata); ``Dataset.take`` would
    decode every row group up to the last row asked for.
    """
    pf = pq.ParquetFile(path)
    ends = np.cumsum([pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
    groups = np.unique(np.searchsorted(ends, rows, side="right"))
    read = np.concatenate([np.empty(0, np.int64)] + [np.arange(ends[g - 1] if g else 0, ends[g]) for g in groups])
    table = pf.read_row_groups(groups.tolist(), columns=columns)
    return table.take(pa.array(np.searchsorted(read, rows), pa.int64()))


def png_bytes(table: pa.Table, column: str = "image") -> list[bytes]:
    """The PNG bytes of an Image struct column (no decoding)."""
    return table[column].combine_chunks().field("bytes").to_pylist()


def pngs_at(folder: Path, where: Sequence[tuple[str, int]], column: str = "image") -> list[bytes]:
    """PNG bytes at ``where`` ((shard file name, row) pairs) of a table, in that order, reading
    only the row groups that hold them."""
    by_shard: dict[str, list[int]] = {}
    for shard, row in where:
        by_shard.setdefault(shard, []).append(row)
    found: dict[tuple[str, int], bytes] = {}
    for shard, rows in by_shard.items():
        uniq = sorted(set(rows))
        found.update(zip(((shard, r) for r in uniq), png_bytes(read_rows(folder / shard, uniq, [column]), column),
                         strict=True))
    return [found[w] for w in where]


def pngs_by_id(folder: Path, ids: Iterable[str], column: str = "image", key: str = "id") -> dict[str, bytes]:
    """``id -> PNG bytes`` for ``ids`` from a table with an Image column."""
    t = rows_by_id(folder, ids, [key, column], key)
    return dict(zip(t[key].to_pylist(), png_bytes(t, column), strict=True))
