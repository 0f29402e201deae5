"""The metamers stage's pictures and plot table (``data/<c>/plots/metamers/``).

``recognisability.png``: the matrix of passing metamers judged correct, generator/layer x judge;
``recognisability.csv``: the same numbers for ``dvc plots`` (one bar per cell and judge); ``gallery.png``: one reference per
class and its metamer at every generator and layer.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...io import figures as fig
from ...io.images import decode_png, to_pngs


@dataclass(frozen=True)
class Synthesised:
    """The metamers stage's result: its rows, the judges' rates per cell and the references."""

    table: dict[str, list]  # the written rows, column -> values
    cells: dict[tuple[str, str], dict]  # (generator, layer) -> its judge rates (ops.metamer.judge_rates)
    judges: list[str]
    generators: list[str]
    refs: Any  # the references as the models see them, (N, C, H, W) floats
    ref_ids: list[str]
    ref_labels: np.ndarray


def figures(r: Synthesised, plots: Path, classes: list[str]) -> None:
    """recognisability.csv, recognisability.png and gallery.png into ``plots``."""
    cells = r.cells
    _write_csv(plots / "recognisability.csv", cells)
    names = list(dict.fromkeys([*r.judges, *r.generators]))
    mat = np.array([[np.nan if (v := c["recognisability"].get(j)) is None else v for j in names]
                    for c in cells.values()], dtype=float)
    rows = [f"{g} / {layer} ({c['pass_rate']:.0%} pass)" for (g, layer), c in cells.items()]
    fig.heatmap(mat, rows, names, plots / "recognisability.png", xlabel="judge", ylabel="generator / layer",
                title="Metamer recognisability (passing metamers judged correct)", missing="none passed")
    _gallery(r, list(cells), classes, plots / "gallery.png")


def _write_csv(path: Path, cells: dict[tuple[str, str], dict]) -> None:
    """One row per (generator, layer, judge); ``dvc plots`` draws a bar per row (x =
    recognisability, y = cell)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["cell", "generator", "layer", "layer_depth", "judge", "recognisability", "recognisability_all",
                "n_passing", "n"])
    for (g, layer), c in cells.items():
        for j, v in c["recognisability"].items():
            w.writerow([f"{g} {layer} / {j}", g, layer, c["layer_depth"], j, "" if v is None else f"{v:.6g}",
                        f"{c['recognisability_all'][j]:.6g}", c["n_passing"], c["n"]])
    path.write_text(buf.getvalue())


def _gallery(r: Synthesised, cells: list[tuple[str, str]], classes: list[str], path: Path) -> None:
    """One reference per class (up to 10): the reference, then its metamer per generator/layer."""
    first = {}
    for i, c in enumerate(r.ref_labels.tolist()):
        first.setdefault(c, i)
    picks = list(first.values())[:10]
    table = r.table
    at = {(r, g, layer): i for i, (r, g, layer) in
          enumerate(zip(table["reference_id"], table["generator"], table["layer"], strict=True))}
    refs = [_as_image(to_pngs(r.refs[i:i + 1])[0]) for i in picks]
    grid = [[refs[k], *[_as_image(table["metamer"][at[(r.ref_ids[i], g, layer)]]["bytes"])
                        for g, layer in cells]] for k, i in enumerate(picks)]
    fig.image_grid(np.asarray(grid), path, row_labels=[classes[r.ref_labels[i]] for i in picks],
                       col_labels=["reference", *[f"{g}\n{layer}" for g, layer in cells]],
                       title="Model metamers")


def _as_image(png: bytes) -> np.ndarray:
    """A stored PNG as a uint8 array for the figures (H, W) or (H, W, 3)."""
    arr = decode_png(png)
    return arr[..., 0] if arr.shape[-1] == 1 else arr
