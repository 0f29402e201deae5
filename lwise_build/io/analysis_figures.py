"""The analysis figures: accuracy per condition with intervals, learning curves, calibration.

Drawn with :mod:`.figures`' deterministic settings (no timestamps, same style) for ``analyze``
(docs/methods.md, "Experiments and analysis").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .figures import _plt, save


def interval_bars(names: Sequence[str], means: Sequence[float], lows: Sequence[float], highs: Sequence[float],
                  path: Path, *, title: str, ylabel: str, reference: float | None = None,
                  reference_label: str = "") -> Path:
    """One bar per group with its confidence interval (e.g. test accuracy per condition)."""
    plt = _plt()
    m, lo, hi = (np.asarray(v, dtype=float) for v in (means, lows, highs))
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2.2, 3))
    err = np.nan_to_num(np.stack([m - lo, hi - m]), nan=0.0)
    ax.bar(range(len(names)), m, yerr=err, capsize=4, color="#4c72b0", alpha=0.85)
    ax.set_xticks(range(len(names)), [str(n) for n in names], rotation=20, ha="right")
    if reference is not None:
        ax.axhline(reference, color="#888", linestyle="--", linewidth=1, label=reference_label)
        ax.legend(fontsize=7, loc="lower right")
    ax.set(title=title, ylabel=ylabel, ylim=(0, 1.02))
    return save(fig, path)


def fitted_curve(points: tuple[np.ndarray, np.ndarray, np.ndarray], curve: tuple[np.ndarray, np.ndarray],
                 path: Path, *, title: str, xlabel: str, ylabel: str) -> Path:
    """Binned observations (x, y, count: marker area) with a fitted curve (e.g. a calibration)."""
    plt = _plt()
    x, y, n = points
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.scatter(x, y, s=12 + 60 * np.asarray(n) / max(1, int(np.max(n))), color="#4c72b0", label="observed (bins)")
    ax.plot(curve[0], curve[1], color="#c44e52", label="logistic fit")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.02))
    ax.legend(fontsize=7)
    return save(fig, path)


def block_curves(blocks: Sequence[int], series: Mapping[str, Sequence[float]], path: Path, *, title: str,
                 ylabel: str) -> Path:
    """One line per condition over the blocks (a learning curve), a tick at every block."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3))
    for name, ys in series.items():
        ax.plot(list(blocks), list(ys), marker="o", label=str(name))
    ax.set_xticks(list(blocks))
    ax.set(title=title, xlabel="block", ylabel=ylabel, ylim=(0, 1.02))
    ax.legend(fontsize=7)
    return save(fig, path)
