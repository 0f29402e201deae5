"""Image sources: turn ``corpora.<name>.ingest.source`` into a list of raw items.

Schemes: ``builtin:digits`` (scikit-learn's bundled digits), ``imagefolder:<dir>`` (class
folders, optionally under split folders), ``manifest:<csv|parquet>`` (path, label, optional split
and metadata), ``hf:<dataset id or local path>`` (through ``datasets``).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import console
from ..config.params import IngestParams
from ..errors import UserError, quote
from .digests import bytes_digest, json_digest
from .fingerprint import files_fingerprint
from .manifest import column_problem, public_names, read_manifest
from .paths import public_path

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
                 "validation": "validation", "dev": "validation", "test": "test", "testing": "test"}
IGNORED_FILES = {"thumbs.db", "desktop.ini", "icon\r"}


@dataclass
class RawItem:
    """One input image before canonicalisation: bytes in memory, or a path read by a worker."""

    source: str
    label: str
    split: str | None = None
    data: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def load_source(p: IngestParams, where: str) -> list[RawItem]:
    """List every raw item of a source, in a deterministic order."""
    scheme, _, rest = p.source.partition(":")
    loaders = {"builtin": _builtin, "imagefolder": _imagefolder, "manifest": _manifest, "hf": _hf}
    items = loaders[scheme](rest, p, f"{where}.source")
    if not items:
        raise UserError(f"{where}.source: {p.source!r} has no images")
    return items


def fingerprint(p: IngestParams, where: str) -> dict[str, Any]:
    """What ingest's output depends on in the source, as a small summary (for the ``resolve``
    stage): every item's name, label, split, metadata and content hash. Files are read only when
    their size or mtime changed since the last time (:mod:`.fingerprint`)."""
    scheme, _, rest = p.source.partition(":")
    if scheme == "hf" and not _local_hf(rest):
        return {"source": p.source, "hf_split": p.hf_split, "revision": _hf_revision(rest, p, where)}
    items = load_source(p, where)
    digests, read = files_fingerprint(source_root(p), readable_files(items))
    rows = [[it.source, it.label, it.split, content_of(it, digests),
             {k: v for k, v in sorted(it.meta.items()) if not k.startswith("_")}] for it in items]
    console.info(f"{where}.source: {len(items)} items, {read} files read (the rest unchanged since last time)")
    return {"source": p.source, "items": len(items), "digest": json_digest(rows)}


def readable_files(items: list[RawItem]) -> list[tuple[str, Path]]:
    """(name, path) of the items that are files to read (not in memory, not a bad entry)."""
    return [(it.source, Path(it.meta["_path"])) for it in items
            if it.data is None and it.meta.get("_path") and not it.meta.get("_bad")]


def content_of(item: RawItem, digests: dict[str, str]) -> str:
    """The item's content hash, or ``bad:<why>`` for an entry that is not a readable file (so a
    dangling link that becomes a folder, or gets its content, changes the fingerprint)."""
    if item.data is not None:
        return bytes_digest(item.data)
    problem = item.meta.get("_bad")
    return f"bad:{problem}" if problem else digests.get(item.source) or "bad:file not found"


def source_root(p: IngestParams) -> Path:
    """The folder whose stat cache holds a source's files (the image folder, or the manifest's)."""
    scheme, _, rest = p.source.partition(":")
    path = Path(rest).expanduser()
    return path.parent if scheme == "manifest" else path


def _local_hf(name: str) -> bool:
    return Path(name).is_dir() and (Path(name) / "dataset_dict.json").exists()


def _hf_revision(name: str, p: IngestParams, where: str) -> str:
    """The commit of a Hub dataset (a pinned ``hf_revision`` as given, else resolved now)."""
    import re

    if p.hf_revision and re.fullmatch(r"[0-9a-f]{40}", p.hf_revision):
        return p.hf_revision
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(name, revision=p.hf_revision).sha or "unresolved"
    except Exception as exc:  # noqa: BLE001 - offline, unreachable, not found: say so, go on
        console.warn(f"{where}.source: cannot resolve the revision of {name!r} ({type(exc).__name__}); "
                     f"pin {where}.hf_revision so a new upstream version is noticed")
        return p.hf_revision or "unresolved"


def normalize_split(name: str, where: str) -> str:
    """Map split names (val, valid, dev, ...) to train / validation / test."""
    split = SPLIT_ALIASES.get(str(name).strip().lower())
    if split is None:
        raise UserError(f"{where}: unknown split {quote(name)} (use train, validation or test)")
    return split


# ---------------------------------------------------------------- builtin ---------------------
def _builtin(name: str, p: IngestParams, where: str) -> list[RawItem]:  # noqa: ARG001 - a reader's signature
    if name != "digits":
        raise UserError(f"{where}: unknown builtin corpus {name!r} (known: digits)")
    from sklearn.datasets import load_digits

    from .images import encode_png

    digits = load_digits()
    arrays = np.clip(np.round(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return [
        RawItem(source=f"sklearn-digits:{i}", label=str(int(t)), data=encode_png(a))
        for i, (a, t) in enumerate(zip(arrays, digits.target, strict=False))
    ]


# ---------------------------------------------------------------- image folder ----------------
def _imagefolder(root: str, p: IngestParams, where: str) -> list[RawItem]:  # noqa: ARG001 - a reader's signature
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(f"{where}: folder {str(base)!r} not found")
    children = [c for c in sorted(base.iterdir()) if c.is_dir() and not c.name.startswith(".")]
    split_dirs = [c for c in children if c.name.lower() in SPLIT_ALIASES]
    if split_dirs and len(split_dirs) == len(children):
        items = []
        for sdir in split_dirs:
            items += _class_folders(sdir, normalize_split(sdir.name, where), base)
        return items
    return _class_folders(base, None, base)


def _class_folders(folder: Path, split: str | None, base: Path) -> list[RawItem]:
    items = []
    for cdir in sorted(c for c in folder.iterdir() if not c.name.startswith(".")):
        if not cdir.is_dir():
            if cdir.is_symlink():  # a class folder whose target is missing (or loops): say so
                items.append(_entry(cdir, cdir.name, split, base, entry_problem(cdir)))
            continue
        for path, problem in _walk(cdir, frozenset({cdir.resolve()})):
            items.append(_entry(path, cdir.name, split, base, problem))
    return items


def _entry(path: Path, label: str, split: str | None, base: Path, problem: str | None) -> RawItem:
    meta = {"_path": str(path), **({"_bad": problem} if problem else {})}
    return RawItem(source=path.relative_to(base).as_posix(), label=label, split=split, meta=meta)


def _walk(folder: Path, seen: frozenset[Path]) -> Iterator[tuple[Path, str | None]]:
    """Every non-folder entry under ``folder`` in sorted path order, with why it is not a
    readable file (None when it is); folders are entered, symlinked ones too unless they loop."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        yield folder, f"unreadable folder ({exc.strerror})"
        return
    for name in names:
        path = folder / name
        if path.is_dir():
            real = path.resolve()
            if real in seen:
                yield path, "symlink loop (a folder that contains itself)"
            else:
                yield from _walk(path, seen | {real})
        elif not _ignored(path):
            yield path, entry_problem(path)


def entry_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file, in a few words (None when it is one): a
    dangling symlink (e.g. DVC or git-annex content not fetched), a loop, a folder, a pipe."""
    try:
        st = path.stat()  # follows symlinks: one that resolves to a readable image is fine
    except FileNotFoundError:
        return "dangling symlink (its target is missing)" if path.is_symlink() else "file not found"
    except OSError as exc:
        return "symlink loop" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a pipe, socket or device)"
    if not os.access(path, os.R_OK):
        return "unreadable (permission denied)"
    return None


def _ignored(path: Path) -> bool:
    """Hidden files and OS droppings (.DS_Store, Thumbs.db) are not inputs."""
    return path.name.startswith(".") or path.name.lower() in IGNORED_FILES


# ---------------------------------------------------------------- manifest --------------------
def _manifest(path: str, p: IngestParams, where: str) -> list[RawItem]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"{where}: manifest {str(file)!r} not found")
    table = read_manifest(file)
    columns = table.column_names
    problem = column_problem(p, columns, where.removesuffix(".source"), f"manifest {file}")
    if problem:
        raise UserError(problem)
    rows = table.to_pylist()
    has_split = p.split_column in columns
    meta_cols = [c for c in columns if c not in (p.image_column, p.label_column, p.split_column)]
    names = public_names([row[p.image_column] for row in rows], file)
    items = []
    for i, (row, name) in enumerate(zip(rows, names, strict=True)):
        rel = row[p.image_column]
        target = (file.parent / Path(str(rel)).expanduser()) if rel is not None else None
        split = normalize_split(row[p.split_column], f"{file} row {i + 2}") if has_split else None
        problem = entry_problem(target) if target is not None else "no image path in the manifest"
        items.append(RawItem(
            source=name, label=str(row[p.label_column]), split=split,
            meta={"_path": str(target) if target else "", **({"_bad": problem} if problem else {}),
                  **{c: row[c] for c in meta_cols}},
        ))
    return items


# ---------------------------------------------------------------- Hugging Face -----------------
def _hf(name: str, p: IngestParams, where: str) -> list[RawItem]:
    import datasets

    try:
        if _local_hf(name):
            dsd = datasets.load_from_disk(name)
        else:
            dsd = datasets.load_dataset(name, split=p.hf_split, revision=p.hf_revision)
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise UserError(f"{where}: cannot load Hugging Face dataset {name!r} ({str(exc).splitlines()[0]})") from None
    if isinstance(dsd, datasets.Dataset):
        dsd = datasets.DatasetDict({p.hf_split or "train": dsd})
    items = []
    for split_name, ds in dsd.items():
        items += _hf_split(ds, normalize_split(split_name, f"{where} split"), p, name, where.removesuffix(".source"))
    return items


def _hf_split(ds, split: str, p: IngestParams, name: str, where: str) -> list[RawItem]:
    import datasets

    problem = column_problem(p, ds.column_names, where, f"hf:{name}")
    if problem:
        raise UserError(problem)
    label_feat = ds.features[p.label_column]
    ds = ds.cast_column(p.image_column, datasets.Image(decode=False))
    meta_cols = [c for c in ds.column_names if c not in (p.image_column, p.label_column)]
    items = []
    for i, row in enumerate(ds):
        img = row[p.image_column] or {}
        data = img.get("bytes")
        if data is None and img.get("path"):
            data = Path(img["path"]).read_bytes()
        label = row[p.label_column]
        if isinstance(label_feat, datasets.ClassLabel):
            label = label_feat.int2str(label)
        items.append(RawItem(source=f"{public_path(name)}/{split}/{i}", label=str(label), split=split,
                             data=data or b"", meta={c: row[c] for c in meta_cols}))
    return items
