"""The enhance stage's pictures and plot table (``data/<c>/plots/enhance/``).

``grid.png`` (and ``grid_<guide>.png`` per compare guide): example images by budget;
``gain_vs_budget.png``: mean gt-logit gain per guide; ``observer_accuracy.png``: does the change
transfer to observer models; ``gain-<guide>.csv`` the same numbers for ``dvc plots``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

from ...io import figures as fig
from ...io.images import decode_png
from ...io.paths import budget_dir
from ...io.tables import png_bytes
from .metrics import Measured


def figures(m: Measured, plots: Path, norm: str, classes: list[str], grid_images: int) -> None:
    """Every picture of the stage plus ``gain-<guide>.csv`` into ``plots``."""
    bs, transfer = m.budgets, m.transfer
    rows = _grid_rows(m.sample, grid_images)
    for g, per_b in m.per_guide.items():
        _grid(m, per_b, rows, classes, plots / ("grid.png" if g == m.guide else f"grid_{g}.png"), g)
    series = {g: [t[budget_dir(b)]["mean_gain"] for b in bs] for g, t in transfer.items()}
    fig.lines(bs, series, plots / "gain_vs_budget.png", title="gt-logit gain of each guide",
              xlabel=f"{norm.upper()} budget", ylabel="mean gt-logit gain", logx=True)
    acc = {f"{o} on {g}-enhanced": [t[budget_dir(b)]["observers"][o]["all"] for b in [0.0, *bs]]
           for g, t in transfer.items() for o in m.observers}
    if acc:
        fig.lines([0.0, *bs], acc, plots / "observer_accuracy.png", title="observer accuracy (sample)",
                  xlabel="budget (0 = original)", ylabel="accuracy")
    write_gain_csvs(plots, transfer, bs, list(m.observers))


def _grid(m: Measured, per_b: dict[float, pa.Table], rows: list[int], classes: list[str], path: Path,
          guide: str) -> None:
    """Example images (``rows`` of the sample) x [original, each budget] (columns)."""
    originals = png_bytes(m.sample)
    grid = np.asarray([[decode_png(originals[r])]
                       + [decode_png(per_b[b].column("image")[r].as_py()) for b in m.budgets] for r in rows])
    fig.image_grid(grid[..., 0] if grid.shape[-1] == 1 else grid, path,
                   row_labels=[classes[m.sample.column("label")[r].as_py()] for r in rows],
                   col_labels=["original"] + [budget_dir(b) for b in m.budgets], title=f"enhanced by {guide}")


def _grid_rows(sample: pa.Table, n: int) -> list[int]:
    """Up to ``n`` example rows of the sample for the grid: test split first, classes in turn."""
    splits, labels = sample.column("split").to_pylist(), sample.column("label").to_pylist()
    turn, seen = {}, Counter()
    for r in sorted(range(len(splits)), key=lambda r: (splits[r] != "test", r)):
        turn[r], seen[labels[r]] = (seen[labels[r]], labels[r]), seen[labels[r]] + 1
    return sorted(turn, key=turn.__getitem__)[:n]


def write_gain_csvs(folder: Path, transfer: dict[str, dict], budgets: list[float], observers: list[str]) -> None:
    """``gain-<guide>.csv`` per guide for ``dvc plots`` (x = budget, y = mean_gain: one series
    per guide): budget, mean_gain, then guide and observer accuracy on the sample."""
    header = ["budget", "guide", "mean_gain", "guide_accuracy", *[f"acc_{o.replace('-', '_')}" for o in observers]]
    for g, t in transfer.items():
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for b in [0.0, *budgets]:
            m = t[budget_dir(b)]
            accs = [m["guide_accuracy"]["all"], *[m["observers"][o]["all"] for o in observers]]
            w.writerow([f"{b:g}", g, f"{m['mean_gain']:.6g}", *[f"{a:.6g}" for a in accs]])
        (folder / f"gain-{g.replace('/', '_')}.csv").write_text(buf.getvalue())
