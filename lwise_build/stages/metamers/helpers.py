"""The metamers stage's small helpers: its layers, its seeded references, where images are, and
deterministic GPU kernels."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from ...errors import UserError
from ...io.tables import shard_paths
from ...seeding import seeded_hex


@contextlib.contextmanager
def deterministic_gpu(device: torch.device) -> Iterator[None]:
    """cuDNN's deterministic kernels on a GPU, so rebuilds give the same pixels."""
    if device.type == "cpu":
        yield
        return
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


def generator_layers(model: Any, wanted: Sequence[str] | None, where: str) -> list[str]:
    """The generator's layers to use (all its stages by default); unknown names are errors."""
    stages = model.layers()
    if not stages:
        raise UserError(f"{where}: this model has no named stages to stop at (arch {model.arch!r})")
    for name in wanted or ():
        if name not in stages:
            raise UserError(f"{where}: unknown layer {name!r} (stages: {', '.join(stages)})")
    return sorted(wanted, key=stages.index) if wanted else stages


def locations(folder: Path, ids: Sequence[str]) -> list[tuple[str, int]]:
    """(shard file name, row) of each of ``ids`` in a table (reading only its id column)."""
    where = {}
    wanted = set(ids)
    for path in shard_paths(folder):
        for row, i in enumerate(pq.read_table(path, columns=["id"]).column("id").to_pylist()):
            if i in wanted:
                where[i] = (path.name, row)
    return [where[i] for i in ids]


def select_references(ids: Sequence[str], labels: np.ndarray, mask: np.ndarray, per_class: int,
                      seed: int) -> list[int]:
    """``per_class`` rows per class among ``mask``, ranked by a hash of (seed, id): order-free."""
    out: list[int] = []
    for c in sorted(set(labels[mask].tolist())):
        rows = list(np.flatnonzero(mask & (labels == c)))
        out += sorted(rows, key=lambda i: seeded_hex(seed, ids[i]))[:per_class]
    return out
