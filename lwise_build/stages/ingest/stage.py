"""The ``ingest`` stage: raw source -> canonical images table ``data/<corpus>/images/``.

IO and decoding happen in one phase (parallel across cores), each source file's canonical PNG
cached by its content, so a rerun after adding images decodes only the new ones; rows are
assembled in a second phase once splits are known, one shard of PNGs in memory at a time. Bad
inputs are skipped, counted and listed in ``metrics/details/ingest.json``.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from datasets import ClassLabel, Features, Image, Value

from ... import console
from ...config.constants import SPLITS
from ...config.params import IngestParams
from ...errors import UserError, quote
from ...io.fingerprint import files_fingerprint
from ...io.images import BadImage, canonical_png, image_id
from ...io.sources import RawItem, content_of, entry_problem, load_source, readable_files
from ...io.sources import source_root as _root
from ...io.staging import write_json
from ...io.tables import has_table, read_table, write_table
from ...seeding import seeded_hex
from ..units import Item, UnitStage, chunks
from .spec import SPEC

DECODE_BATCH = 256  # raw items per cached pack
ERRORS_FILE = "ingest-errors.json"  # beside images/: the bad-input list of a run that failed on it


@dataclass(frozen=True)
class DecodeWork:
    """One source file to decode: its index in the source's items."""

    item: int


class Ingest(UnitStage, spec=SPEC):
    """``lwise-build ingest <corpus>``: the source's images, canonicalised, as ``data/<c>/images/``."""

    remote = False  # decodes in worker processes here; the source files are local

    def prepare(self) -> None:
        self.items = load_source(self.p, self.where)

    def write(self, tmp: Path) -> None:
        decoded = self._decode_all()
        kept, bad = _kept(self.items, decoded, self.p.shard_mb * 2**20)
        kept, dups = _dedupe(kept)
        report = _report(self.ctx.corpus, len(self.items), kept, bad, dups)
        _check_quality(report, self.p, self.where, self.out)
        _check_classes(kept, self.p, self.where)
        splits = assign_splits(kept, self.p, self.ctx.seed, self.where)
        moved = moved_splits(self.out, [k["id"] for k in kept], splits)
        if moved:  # never from added images: only changed fractions, seed or given splits move one
            console.warn(f"ingest {self.ctx.corpus}: {moved} images of the last build are now in another split "
                         f"({self.where}.splits or seed changed)")
        names = sorted_classes(k["label"] for k in kept)
        feats = _features(kept, names)
        write_table(_shard_rows(self, kept, splits, names, feats), feats, tmp)
        report["counts"] = _counts(kept, splits)
        self.report = report  # -> metrics/details/ingest.json (the table folder holds only shards)
        (self.out.parent / ERRORS_FILE).unlink(missing_ok=True)  # a failed run's list is stale now

    def _decode_all(self) -> dict[str, list]:
        """Every item's canonical image id and PNG size, or why it is bad; only content not seen
        before is decoded. Files are hashed from their bytes (not their stat) each time ingest
        runs, so a forced run sees any edit."""
        import PIL

        prefix = self.key_prefix(pillow=PIL.__version__)
        content, _ = files_fingerprint(_root(self.p), readable_files(self.items), reread=True)
        digests = [content_of(it, content) for it in self.items]
        self.keys = [None if d.startswith("bad:") else self.cache_key.key(prefix, content=d) for d in digests]
        workers = self.p.workers or os.cpu_count() or 1
        with _pool(workers) as self.pool:
            self.ensure([Item(k, DecodeWork(i)) for i, k in enumerate(self.keys) if k], "decode")
        good = [k for k in self.keys if k]
        found = self.lookup(good, ["id", "reason", "nbytes"]).to_pydict() if good else {}
        rows = zip(*(found.get(c, []) for c in ("id", "reason", "nbytes")), strict=True)
        cols = [next(rows) if k else (None, d[len("bad:"):], 0) for k, d in zip(self.keys, digests, strict=True)]
        return dict(zip(("id", "reason", "nbytes"), map(list, zip(*cols, strict=True)), strict=True))

    def batches(self, items: list[Item]) -> list[list[Item]]:
        return chunks(items, DECODE_BATCH)

    def compute(self, batch: list[Item]) -> pa.Table:
        """Decode and canonicalise a batch of raw items (in worker processes when there are several)."""
        p = self.p
        jobs = [(it.data, it.meta.get("_path", ""), p.image_size, p.grayscale)
                for it in (self.items[b.payload.item] for b in batch)]
        results = list(self.pool.map(_canonicalise_one, jobs, chunksize=16) if self.pool else map(_canonicalise_one, jobs))
        for b, (_, reason, io_fault) in zip(batch, results, strict=True):
            if io_fault:  # not the content's fault: never cache it under the content's key
                raise UserError(f"{self.items[b.payload.item].source}: changed while ingest read it ({reason}); rerun")
        pngs = [png for png, _, _ in results]
        return pa.table({"key": pa.array([it.key for it in batch], pa.string()), "png": pa.array(pngs, pa.binary()),
                         "id": pa.array([image_id(png) if png else None for png in pngs], pa.string()),
                         "reason": pa.array([reason for _, reason, _ in results], pa.string()),
                         "nbytes": pa.array([len(png) if png else 0 for png in pngs], pa.int64())})

    def metrics(self) -> dict[str, Any]:
        return self.report

    def headline(self, d: dict[str, Any]) -> dict[str, Any]:
        return {"images": d["images"], "skipped": d["skipped"]}  # per class and split: the details

    def summary(self) -> str:
        r = self.report
        computed = sum(c for _, _, c in self.counts)
        splits = ", ".join(f"{sum(c.get(s, 0) for c in r['counts'].values())} {s}" for s in SPLITS)
        return (f"{r['images']} images of {len(r['counts'])} classes ({splits}), {r['skipped']} skipped, "
                f"{r['duplicates_removed']} duplicates removed, {computed} decoded")


# ---------------------------------------------------------------- phase 1: decode -------------
def _canonicalise_one(args: tuple[bytes | None, str, int, bool]) -> tuple[bytes | None, str, bool]:
    """Worker: (bytes or None, path, size, grayscale) -> (canonical PNG, "", False), or (None,
    reason, whether the file rather than its content failed: it went away or cannot be read)."""
    data, path, size, gray = args
    try:
        if data is None:
            problem = entry_problem(Path(path)) if path else "file not found"
            if problem:
                return None, problem, True
            data = Path(path).read_bytes()
        return canonical_png(data, size, gray), "", False
    except BadImage as exc:
        return None, str(exc), False
    except OSError as exc:
        return None, f"unreadable file ({exc.strerror or type(exc).__name__})", True
    except ValueError as exc:  # anything else the decoders raise on hostile input
        return None, f"unreadable image ({exc})", False


def _kept(items: list[RawItem], cols: dict[str, list], budget: int) -> tuple[list[dict], list[dict]]:
    """Kept and bad items in source order; kept ones are numbered into output shards of about
    ``budget`` bytes of PNG."""
    kept, bad, used, shard = [], [], 0, 0
    for n, item in enumerate(items):
        if cols["id"][n] is None:
            bad.append({"source": item.source, "label": item.label, "reason": cols["reason"][n]})
            continue
        meta = {k: v for k, v in item.meta.items() if not k.startswith("_")}
        kept.append({"id": cols["id"][n], "label": item.label, "split": item.split, "source": item.source,
                     "meta": meta, "shard": shard, "item": n})
        used += cols["nbytes"][n]
        if used >= budget:
            used, shard = 0, shard + 1
    return kept, bad


class _pool:
    """A process pool when ``workers > 1``, else nothing (plain map in this process)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProcessPoolExecutor | None:
        if self.workers > 1:
            self.executor = ProcessPoolExecutor(self.workers)
        return self.executor

    def __exit__(self, *exc: Any) -> None:
        if self.executor:
            self.executor.shutdown(cancel_futures=True)


# ---------------------------------------------------------------- checks ----------------------
def _dedupe(kept: list[dict]) -> tuple[list[dict], list[dict]]:
    """Drop exact duplicates (same canonical pixels); the same image with two labels is an error."""
    first: dict[str, dict] = {}
    out, dups = [], []
    for k in kept:
        seen = first.get(k["id"])
        if seen is None:
            first[k["id"]] = k
            out.append(k)
        elif seen["label"] != k["label"]:
            raise UserError(
                f"{k['source']}: same image as {seen['source']} but labelled {quote(k['label'])} vs "
                f"{quote(seen['label'])}; fix the labels"
            )
        else:
            dups.append({"source": k["source"], "duplicate_of": seen["source"], "id": k["id"]})
    return out, dups


def _report(corpus: str, total: int, kept: list[dict], bad: list[dict], dups: list[dict]) -> dict:
    reasons = Counter(b["reason"].split(" (")[0] for b in bad)
    return {"corpus": corpus, "inputs": total, "images": len(kept), "skipped": len(bad),
            "skipped_by_reason": dict(sorted(reasons.items())), "skipped_files": bad,
            "duplicates_removed": len(dups), "duplicates": dups}


def _check_quality(report: dict, p: IngestParams, where: str, out: Path) -> None:
    frac = report["skipped"] / max(1, report["inputs"])
    if frac > p.max_bad_fraction:
        errors = out.parent / ERRORS_FILE
        write_json(errors, report)
        first = report["skipped_files"][0]
        raise UserError(
            f"{report['skipped']} of {report['inputs']} images unreadable ({frac:.1%} > "
            f"{where}.max_bad_fraction {p.max_bad_fraction:g}); e.g. {first['source']}: "
            f"{first['reason']}; all listed in {errors}"
        )


def _check_classes(kept: list[dict], p: IngestParams, where: str) -> None:
    per_class = Counter(k["label"] for k in kept)
    small = sorted((n, c) for c, n in per_class.items() if n < p.min_per_class)
    if small:
        n, c = small[0]
        raise UserError(f"class {quote(c)} has {n} usable images, fewer than {where}.min_per_class "
                        f"({p.min_per_class})")


def sorted_classes(labels: Any) -> list[str]:
    """Sorted class names; numeric names sort numerically ("2" before "10")."""
    uniq = set(labels)
    return sorted(uniq, key=lambda s: (0, float(s), s) if _is_number(s) else (1, 0.0, s))


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- splits ----------------------
def assign_splits(kept: list[dict], p: IngestParams, seed: int, where: str = "ingest") -> list[str]:
    """The source's own splits when every item has one, else each image's own seeded draw.

    An image's split depends only on its id (with ``group_by``: its group's value, so no group
    spans two splits), the seed and the fractions, so adding images never moves an old one
    (docs/methods.md, "Splits"); per class the fractions hold on average, not exactly.
    """
    given = [k["split"] for k in kept]
    if all(s is not None for s in given):
        return given
    if any(s is not None for s in given):
        raise UserError(f"{where}: some images have a split and some do not; give all or none")
    fracs = [p.splits.train, p.splits.validation, p.splits.test]
    return [split_of(_split_unit(k, p.splits.group_by, where), fracs, seed) for k in kept]


def _split_unit(k: dict, group_by: str | None, where: str) -> str:
    """What an image's split is drawn for: its id, or ``g:<value>`` of its ``group_by`` column."""
    if not group_by:
        return k["id"]
    if group_by not in k["meta"]:
        have = ", ".join(sorted(k["meta"])) or "none: image folders and builtin corpora have no metadata"
        raise UserError(f"{where}.splits.group_by: no metadata column {quote(group_by)} (columns: {have})")
    return f"g:{k['meta'][group_by]}"


def split_of(unit: str, fracs: list[float], seed: int) -> str:
    """The split of one unit: a uniform draw in [0, 1) from (seed, unit) against the cumulative
    fractions (train, validation, test)."""
    u = int(seeded_hex(seed, "split", unit)[:13], 16) / 16**13
    edge = 0.0
    for name, frac in zip(SPLITS, fracs, strict=True):
        edge += frac
        if u < edge:
            return name
    return next(n for n, f in zip(SPLITS[::-1], fracs[::-1], strict=True) if f > 0)  # rounding at 1.0


def moved_splits(old: Path, ids: list[str], splits: list[str]) -> int:
    """How many images of the previous images table at ``old`` are now in another split."""
    if not has_table(old):
        return 0
    table = read_table(old, columns=["id", "split"])
    before = dict(zip(table["id"].to_pylist(), table["split"].to_pylist(), strict=True))
    return sum(1 for i, s in zip(ids, splits, strict=True) if before.get(i, s) != s)


# ---------------------------------------------------------------- phase 2: rows ---------------
def _features(kept: list[dict], names: list[str]) -> Features:
    feats = {"id": Value("string"), "image": Image(), "label": ClassLabel(names=names),
             "split": Value("string"), "source": Value("string")}
    for col in sorted({c for k in kept for c in k["meta"]}):
        values = [k["meta"].get(col) for k in kept if k["meta"].get(col) is not None]
        numeric = values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        feats[col] = Value("float64" if numeric else "string")
    return Features(feats)


def _shard_rows(st: Ingest, kept: list[dict], splits: list[str], names: list[str],
                feats: Features) -> Iterator[dict[str, list[Any]]]:
    """The table's shards, their PNGs read from the cache one shard at a time."""
    index = {n: i for i, n in enumerate(names)}
    meta_cols = [c for c in feats if c not in ("id", "image", "label", "split", "source")]
    by_shard: dict[int, list[int]] = defaultdict(list)
    for i, k in enumerate(kept):
        by_shard[k["shard"]].append(i)
    for s in sorted(by_shard):
        rows = [kept[i] for i in by_shard[s]]
        pngs = st.lookup([st.keys[r["item"]] for r in rows], ["png"]).column("png").to_pylist()
        yield {
            "id": [r["id"] for r in rows],
            "image": [{"bytes": png, "path": None} for png in pngs],
            "label": [index[r["label"]] for r in rows],
            "split": [splits[i] for i in by_shard[s]],
            "source": [r["source"] for r in rows],
            **{c: [_meta_value(r["meta"].get(c), feats[c]) for r in rows] for c in meta_cols},
        }


def _meta_value(v: Any, feat: Value) -> Any:
    if v is None:
        return None
    return float(v) if feat.dtype == "float64" else str(v)


def _counts(kept: list[dict], splits: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for k, s in zip(kept, splits, strict=False):
        counts[k["label"]][s] += 1
    return {label: dict(sorted(c.items())) for label, c in sorted(counts.items())}
