"""Image folders to ingest, and byte snapshots of built output folders to compare builds."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

#: The classes (one non-ASCII, one CJK) and base colours of :func:`make_folder`.
COLORS = {"cat": (200, 30, 30), "dög": (30, 200, 30), "猫": (30, 30, 200)}
#: The outputs of an ingest + score + enhance + metamers build.
BUILD_OUTPUTS = ("images", "scores", "enhanced", "metamers", "metrics", "plots")


def save_img(path: Path, color, size=(40, 30), mode="RGB", fmt=None, **kw) -> Path:
    """A noisy image of ``color`` (noise seeded by the path) saved at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    arr = np.clip(np.array(color)[None, None] + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255)
    Image.fromarray(arr.astype(np.uint8)).convert(mode).save(path, format=fmt, **kw)
    return path


def make_folder(root: Path, per_class: int = 6, splits: bool = False) -> Path:
    """An image folder (``class/i.png``, or ``split/class/i.png``) of the :data:`COLORS` classes."""
    for c, color in COLORS.items():
        for i in range(per_class):
            sub = root / (["train", "val", "test"][i % 3] if splits else "") / c
            save_img(sub / f"{i}.png", (color[0] + i * 3, color[1], color[2]))
    return root


def snapshot(root: Path, corpus: str = "toy", outputs: Iterable[str] = BUILD_OUTPUTS) -> dict[str, bytes]:
    """Every file of the corpus's ``outputs`` under ``root/data``: relative path -> bytes."""
    data = root / "data" / corpus
    return {str(p.relative_to(data)): p.read_bytes() for d in outputs for p in sorted((data / d).rglob("*"))
            if p.is_file()}
