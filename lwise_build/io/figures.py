"""Figures: one piece of code draws each picture for ``dvc plots``, the Hub card and the report.

Stages save PNGs into ``data/<corpus>/plots/<stage>/``; export and report embed those same files.
PNGs are written without timestamps so rebuilds are byte-identical; every figure uses matplotlib's
constrained layout so titles, labels and ticks never overlap (tests/test_figures.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "lwise"})
    return plt


def save(fig, path: Path) -> Path:
    """Save deterministically (no date metadata) and close."""
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    return path


def histograms(groups: Mapping[str, np.ndarray], path: Path, *, title: str, xlabel: str, bins: int = 20) -> Path:
    """Small-multiple histograms, one panel per group (e.g. difficulty per class)."""
    plt = _plt()
    n = max(1, len(groups))
    cols = min(5, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.8 * rows + 0.6), squeeze=False, sharex=True,
                             layout="constrained")
    for ax, (name, values) in zip(axes.flat, groups.items(), strict=False):
        ax.hist(np.asarray(values, dtype=float), bins=bins, range=(0, 1) if xlabel.endswith("[0,1]") else None,
                color="#4c72b0")
        ax.set_title(str(name), fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.supxlabel(xlabel)
    fig.suptitle(title)
    return save(fig, path)


def lines(x: Sequence[float], series: Mapping[str, Sequence[float]], path: Path, *, title: str,
          xlabel: str, ylabel: str, logx: bool = False) -> Path:
    """One line per series over a shared x (e.g. logit gain vs budget per guide); a log x axis is
    labelled at the x values themselves (the budgets), not at powers of two."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3), layout="constrained")
    for name, ys in series.items():
        ax.plot(list(x), list(ys), marker="o", label=str(name))
    if logx:  # a log axis is labelled at the x values (budgets), not at powers of two
        ax.set_xscale("log", base=2)
        ax.minorticks_off()
        if len(x) <= 12:
            ax.set_xticks(list(x), [f"{v:g}" for v in x])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(series) > 1:
        ax.legend(fontsize=7)
    return save(fig, path)


def scatter(x: np.ndarray, y: np.ndarray, path: Path, *, title: str, xlabel: str, ylabel: str) -> Path:
    """A scatter plot (e.g. robust logit vs observer accuracy)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    ax.scatter(np.asarray(x), np.asarray(y), s=6, alpha=0.6)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return save(fig, path)


def image_grid(images: np.ndarray, path: Path, *, row_labels: Sequence[str] = (),
               col_labels: Sequence[str] = (), title: str = "", gap: int = 2) -> Path:
    """A grid of uint8 images shaped (rows, cols, H, W[, C]) with optional labels, drawn as one
    mosaic (one image in one axes: a few times faster than a subplot per cell)."""
    plt = _plt()
    rows, cols, h, w = images.shape[:4]
    mosaic = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, *images.shape[4:]), 255, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            mosaic[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = images[r, c]
    fig, ax = plt.subplots(figsize=(1.1 * cols + 0.6, 1.1 * rows + 0.8), layout="constrained")
    ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    centre = [(w - 1) / 2 + c * (w + gap) for c in range(cols)], [(h - 1) / 2 + r * (h + gap) for r in range(rows)]
    ax.set_xticks(centre[0][: len(col_labels)], [str(label) for label in col_labels[:cols]], fontsize=7)
    ax.set_yticks(centre[1][: len(row_labels)], [str(label) for label in row_labels[:rows]], fontsize=7)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def heatmap(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], path: Path, *, title: str,
            xlabel: str = "", ylabel: str = "", missing: str = "n/a") -> Path:
    """A labelled matrix with values printed (e.g. metamer recognisability: generator/layer x
    judge); a NaN cell says ``missing`` instead of staying blank."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 2.5, 0.35 * len(rows) + 1.2), layout="constrained")
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
    for (i, j), v in np.ndenumerate(matrix):
        ok = np.isfinite(v)
        ax.text(j, i, f"{v:.2f}" if ok else missing, ha="center", va="center", fontsize=6,
                color=("w" if v < 0.6 else "k") if ok else "0.4")
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return save(fig, path)


def line_panels(x: Sequence[float], panels: Mapping[str, Mapping[str, Sequence[float]]], path: Path, *,
                title: str, xlabel: str) -> Path:
    """Side-by-side line panels over a shared x, one per quantity (series may be shorter than x)."""
    plt = _plt()
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False, layout="constrained")
    for ax, (ylabel, series) in zip(axes.flat, panels.items(), strict=False):
        for name, ys in series.items():
            ax.plot(list(x)[: len(ys)], list(ys), marker="o", label=str(name))
        ax.set(xlabel=xlabel, ylabel=ylabel)
    if any(len(s) > 1 for s in panels.values()):
        axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    return save(fig, path)


def image_rows(rows: Sequence[Sequence[np.ndarray]], path: Path, *, row_labels: Sequence[str] = (),
               title: str = "", gap: int = 2) -> Path:
    """Rows of same-size uint8 images (H, W[, C]), each drawn as one strip (e.g. a block's trials)."""
    plt = _plt()
    h, w = rows[0][0].shape[:2]
    width = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.45 * width + 1.6, 0.5 * len(rows) + 0.6), squeeze=False,
                             layout="constrained")
    for r, (ax, row) in enumerate(zip(axes[:, 0], rows, strict=True)):
        strip = np.full((h, width * (w + gap) - gap, *row[0].shape[2:]), 255, dtype=np.uint8)
        for i, img in enumerate(row):
            strip[:, i * (w + gap): i * (w + gap) + w] = img
        ax.imshow(strip, cmap="gray" if strip.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if r < len(row_labels):
            ax.set_ylabel(str(row_labels[r]), rotation=0, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title)
    return save(fig, path)
