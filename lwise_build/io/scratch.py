"""Scratch rows on disk: fixed-width rows written once and read back by index, for data computed
once that does not fit in memory (a metamer null's activations at an early layer of a large model).

The file is anonymous (unlinked at creation, so a crash leaves nothing behind) under
``$LWISE_CACHE/scratch``. Plain reads and writes, not a memory map: the rows live in the page
cache, which the kernel can evict, and never count in the process's resident memory.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .paths import cache_root


class ScratchRows:
    """Rows of ``width`` values of one dtype in an anonymous scratch file (append, then take)."""

    def __init__(self, width: int, dtype: np.dtype | type = np.float32):
        folder = cache_root() / "scratch"
        folder.mkdir(parents=True, exist_ok=True)
        self.file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (closed by close or __exit__)
        self.width, self.dtype = int(width), np.dtype(dtype)
        self.row_bytes, self.count = self.width * self.dtype.itemsize, 0

    def append(self, rows: np.ndarray) -> None:
        """Add rows ``(n, width)`` at the end (converted to the store's dtype)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype).reshape(-1, self.width)
        self.file.seek(self.count * self.row_bytes)
        self.file.write(rows.tobytes())
        self.count += len(rows)

    def take(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (in that order); consecutive indices are read in one call."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((len(idx), self.width), dtype=self.dtype)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.count):
            raise IndexError(f"scratch rows: index out of range 0..{self.count - 1}")
        fd, k = self.file.fileno(), 0
        while k < len(idx):
            run = 1
            while k + run < len(idx) and idx[k + run] == idx[k] + run:
                run += 1
            view = memoryview(out[k:k + run]).cast("B")
            got = os.preadv(fd, [view], int(idx[k]) * self.row_bytes)
            if got != len(view):
                raise OSError(f"scratch rows: short read ({got} of {len(view)} bytes)")
            k += run
        return out

    def nbytes(self) -> int:
        return self.count * self.row_bytes

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> ScratchRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
