"""scikit-image's ``lfw_subset`` (100 faces, 100 non-faces, 25x25 grayscale photographs) laid out
the two ways a newcomer brings a corpus: class folders, and a CSV manifest with a group column
(``subject``) and a human-accuracy column. Shipped with scikit-image: nothing is downloaded."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def lfw_arrays() -> tuple[np.ndarray, list[str]]:
    """The 200 photographs as uint8 (N, 25, 25) and their labels (faces first)."""
    from skimage.data import lfw_subset

    images = np.round(lfw_subset() * 255).astype(np.uint8)
    return images, ["face"] * 100 + ["nonface"] * 100


def write_folder(root: Path) -> Path:
    """``root/face/*.png`` and ``root/nonface/*.png``."""
    from PIL import Image

    images, labels = lfw_arrays()
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / label / f"{i:03d}.png")
    return root


def write_manifest(root: Path, name: str = "lfw.csv") -> Path:
    """``root/<name>`` with path, label, subject (4 images each) and human_accuracy columns."""
    write_folder(root / "images")
    _, labels = lfw_arrays()
    rng = np.random.default_rng(0)
    path = root / name
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "subject", "human_accuracy"])
        for i, label in enumerate(labels):
            w.writerow([f"images/{label}/{i:03d}.png", label, f"s{i // 4:02d}", f"{rng.uniform(0.4, 1.0):.3f}"])
    return path
