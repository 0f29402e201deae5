"""Shared fixtures: an isolated data/cache root and a tiny images table like ingest writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.tables import TINY_CLASSES, write_images_table

#: Fixtures shared by several test files: the git ``project`` and the exported ``built`` tiny build.
pytest_plugins = ["support.hub_server"]


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point stage outputs (LWISE_DATA) and the shard cache (LWISE_CACHE) into tmp_path."""
    root = tmp_path / "data"
    monkeypatch.setenv("LWISE_DATA", str(root))
    monkeypatch.setenv("LWISE_CACHE", str(tmp_path / "cache"))
    return root


@pytest.fixture
def tiny_images(data_root: Path):
    """A 3-class, 8-px-per-class-pattern grayscale corpus of 60 images at data/toy/images."""
    rng = np.random.default_rng(0)
    n_per, size, names = 20, 16, list(TINY_CLASSES)
    arrays, labels, splits = [], [], []
    yy, xx = np.mgrid[:size, :size]
    for c in range(3):
        for i in range(n_per):
            base = [(xx == 8), ((yy - 8) ** 2 + (xx - 8) ** 2 < 9),
                    np.abs(np.hypot(yy - 8, xx - 8) - 5) < 1.2][c].astype(float)
            img = np.clip(base * (0.6 + 0.4 * rng.random()) + 0.15 * rng.random((size, size)), 0, 1)
            arrays.append((img * 255).astype(np.uint8))
            labels.append(c)
            splits.append(["train", "train", "train", "validation", "test"][i % 5])
    ids = write_images_table(data_root / "toy" / "images", np.stack(arrays), labels, splits, names)
    return {"root": data_root, "ids": ids, "labels": labels, "splits": splits, "classes": names}


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny test tensors run fastest (and steadiest on shared CI cores) on one thread."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright (skipped, or failed in CI, when either is missing)."""
    from support.headless import CHROMIUM, launch, skip_or_fail

    missing = None if Path(CHROMIUM).exists() else "chromium not installed (apt-get install -y chromium)"
    try:
        from playwright import sync_api
    except ImportError:
        missing = missing or "pip package playwright not installed"
    if missing:
        skip_or_fail(missing)
    with sync_api.sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()
