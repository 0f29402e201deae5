"""Atomic output: a stage writes into a temporary folder that replaces the old output at the end.

An interrupted or failed stage leaves the previous output (or nothing) in place, never a
half-written one; JSON is written deterministically so rebuilds give identical DVC hashes.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import console
from ..errors import UserError


@contextlib.contextmanager
def staged_output(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it replaces ``final``.

    One run at a time per output: a lock file ``.<name>.lock`` beside it serialises concurrent
    runs (the second waits, then writes its own complete output). Under the lock, leftovers of a
    killed run (``.<name>.tmp-*``, ``.<name>.old``) are removed first.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(final):
        remove_leftovers(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it owner-only; outputs are ordinary folders
        try:
            with disk_errors(final, tmp):
                yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = final.with_name(f".{final.name}.old")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def output_lock(final: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``final`` (released when the process dies, however it dies)."""
    from filelock import FileLock, Timeout

    lock = FileLock(final.with_name(f".{final.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        console.info(f"{final}: another run is writing it; waiting for that run to finish")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def remove_leftovers(final: Path) -> None:
    """Delete what a killed run left beside ``final``: its temporary and old copies."""
    for left in [*final.parent.glob(f".{glob.escape(final.name)}.tmp-*"), final.with_name(f".{final.name}.old")]:
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)
        elif left.exists() or left.is_symlink():
            left.unlink(missing_ok=True)


@contextlib.contextmanager
def disk_errors(target: Path, written: Path | None = None, need: int = 0) -> Iterator[None]:
    """A full disk (or quota) while writing ``target`` becomes one line naming the folder and
    the space needed: ``need`` bytes, else more than what was ``written`` (a folder or file)
    before the disk filled up plus what is free."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise no_space(target, tree_size(written) if written is not None else 0, need) from None


def no_space(target: Path, written: int = 0, need: int = 0) -> UserError:
    """The one-line error for a full disk at ``target``: where, and how much space it needs."""
    folder = next((p for p in [Path(target), *Path(target).parents] if p.exists()), Path("."))
    free = shutil.disk_usage(folder).free
    if need:
        needed = f"{_mb(need)}, {_mb(free)} free"
    else:
        needed = f"more than {_mb(written + free)} free: {_mb(written)} written when the disk filled up"
    return UserError(f"{target}: no space left on the device of {folder} (it needs {needed}); "
                     "free some space (or point LWISE_CACHE / --out elsewhere) and rerun")


def tree_size(path: Path) -> int:
    """Bytes in a file or folder (0 when it is gone)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def write_json(path: Path, obj: Any) -> None:
    """Deterministic, human-readable JSON (sorted keys, trailing newline), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    text = json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n"
    try:
        with disk_errors(path):
            tmp.write_text(text, encoding="utf-8")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
