"""Manifest files (``manifest:<csv|parquet>``): reading them, checking their columns, and the
names their image paths get in the dataset (docs/params.md, "ingest")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config.params import IngestParams
from ..errors import UserError, quote


def public_names(paths: list[Any], manifest: Path) -> list[str]:
    """Each row's image as the images table (and so every export) names it: a relative path as
    written; an absolute one relative to the common folder of the absolute ones, so no machine's
    folders are published. Two files under one name are an error."""
    full = [Path(str(v)).expanduser() if v is not None else None for v in paths]
    absolute = [str(f.parent) for f in full if f is not None and f.is_absolute()]
    root = os.path.commonpath(absolute) if absolute else ""
    names = [str(v) if f is None or not f.is_absolute() else Path(os.path.relpath(f, root)).as_posix()
             for v, f in zip(paths, full, strict=True)]
    first: dict[str, str] = {}
    for name, f in zip(names, full, strict=True):
        if f is not None and first.setdefault(name, str(f)) != str(f):
            raise UserError(f"manifest {manifest}: {quote(first[name])} and {quote(str(f))} would both be named "
                            f"{quote(name)} in the dataset; give image paths relative to the manifest's folder")
    return names


def manifest_columns(file: Path, where: str) -> list[str]:
    """A manifest's column names, reading only its header (CSV) or schema (Parquet)."""
    import pyarrow as pa

    try:
        if file.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(file).names
        import pyarrow.csv as pacsv

        with pacsv.open_csv(file) as reader:
            return reader.schema.names
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{where}: cannot read manifest {str(file)!r} ({str(exc).splitlines()[0]})") from None


def column_problem(p: IngestParams, columns: list[str], section: str, what: str) -> str | None:
    """Why ``columns`` lack the image or label column (naming the key and a likely column)."""
    for key in ("image_column", "label_column"):
        col = getattr(p, key)
        if col not in columns:
            guess = _likely_column(key, columns)
            hint = f"; set {key}: {guess}" if guess else ""
            return f"{section}.{key}: {what} has no column {col!r} (columns: {', '.join(columns)}){hint}"
    return None


def _likely_column(key: str, columns: list[str]) -> str | None:
    """The column a manifest most likely meant for ``key`` (e.g. ``path`` for the image)."""
    import difflib

    names = {"image_column": ("image", "path", "file", "filename", "filepath", "image_path", "img"),
             "label_column": ("label", "class", "category", "target", "dx", "y")}[key]
    lower = {c.lower(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    close = difflib.get_close_matches(names[0], columns, n=1)
    return close[0] if close else None


def read_manifest(file: Path) -> Any:
    """The whole manifest as a pyarrow table (CSV or Parquet); unreadable is one line."""
    import pyarrow as pa

    try:
        if file.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(file)
        import pyarrow.csv as pacsv

        return pacsv.read_csv(file)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{file}: cannot read manifest ({str(exc).splitlines()[0]})") from None
