"""Content fingerprints of source files, cheap to recompute: the stat first, bytes only where
it changed.

The ``resolve`` stage fingerprints a corpus's source on every ``dvc repro`` so DVC sees added,
edited and removed images (docs/architecture.md, "Sources and params"). A per-folder stat cache under
``$LWISE_CACHE/fingerprints/`` remembers each file's (size, mtime, ctime, inode, sha256), so an
unchanged folder of tens of thousands of files costs one ``stat`` per file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from .digests import file_digest, json_digest
from .paths import cache_root


class StatCache:
    """sha256 of files by their stat key, persisted per source root.

    The key is what an in-place edit cannot keep (as git's index and DVC do): size, mtime,
    ctime and inode. ``touch -r`` or a sync tool can restore a file's mtime, never its ctime.
    """

    def __init__(self, root: Path, reread: bool = False):
        key = json_digest(str(Path(root).resolve()))[:24]
        self.path = cache_root() / "fingerprints" / f"{key}.json"
        try:
            self.entries: dict[str, list] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}
        self.reread = reread  # read every file again (a forced ingest): trust no stat
        self.hashed = 0  # files read this time (the rest came from their stat)

    def digest(self, path: Path) -> str:
        """The file's sha256 (re-read only when its stat key changed); "" when missing,
        ``bad:unreadable (<why>)`` when it cannot be read."""
        try:
            st = path.stat()
        except OSError:
            return ""
        name, stamp = str(path), [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        known = self.entries.get(name)
        if known and known[:-1] == stamp and not self.reread:
            return known[-1]
        try:
            sha = file_digest(path)
        except OSError as exc:
            return f"bad:unreadable ({exc.strerror or type(exc).__name__})"
        self.entries[name] = [*stamp, sha]
        self.hashed += 1
        return sha

    def save(self, keep: Iterable[str]) -> None:
        """Write the cache back (atomically), keeping only the files still in the source."""
        wanted = set(keep)
        self.entries = {k: v for k, v in self.entries.items() if k in wanted}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.entries, separators=(",", ":")), encoding="utf-8")
        tmp.replace(self.path)


def files_fingerprint(root: Path, files: list[tuple[str, Path]], reread: bool = False) -> tuple[dict[str, str], int]:
    """``name -> sha256`` of ``files`` (name, path) under ``root``, and how many were read
    (``reread``: every one, refreshing the stat cache)."""
    cache = StatCache(root, reread)
    out = {name: cache.digest(path) for name, path in files}
    cache.save(str(path) for _, path in files)
    return out, cache.hashed
