"""Every figure of io/figures.py is laid out without overlaps: no two text boxes intersect.

Each figure function is rendered with small and crowded inputs (the shapes the stages produce:
1-2 rows of a grid up to 10 classes x 13 columns, long model names); the figure is drawn (the
layout engine runs on draw) and the window extents of all visible text are compared pairwise.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from lwise_build.io import figures

RNG = np.random.default_rng(0)
NAMES = ["digits-robust / block1", "digits-standard / avgpool", "lfw-robust / fc"]


def _cases():
    imgs = lambda r, c, s=25: RNG.integers(0, 255, (r, c, s, s), dtype=np.uint8)  # noqa: E731
    yield "histograms-2", figures.histograms, dict(groups={"face": RNG.random(50), "nonface": RNG.random(50)},
                                                   title="robust: difficulty within class",
                                                   xlabel="difficulty (0 easiest, 1 hardest) [0,1]")
    yield "histograms-10", figures.histograms, dict(groups={str(i): RNG.random(80) for i in range(10)},
                                                    title="robust: difficulty within class",
                                                    xlabel="difficulty (0 easiest, 1 hardest) [0,1]")
    yield "lines", figures.lines, dict(x=[0.25, 0.5, 1, 2, 4, 8], series={"digits-robust": RNG.random(6),
                                       "digits-standard": RNG.random(6)}, title="gt-logit gain of each guide",
                                       xlabel="L2 budget", ylabel="mean gt-logit gain", logx=True)
    yield "lines-imagenet", figures.lines, dict(x=[5, 10, 15, 20], series={"imagenet-robust": RNG.random(4)},
                                                title="gt-logit gain of each guide", xlabel="L2 budget",
                                                ylabel="mean gt-logit gain", logx=True)
    yield "scatter", figures.scatter, dict(x=RNG.random(40), y=RNG.random(40), title="robust gt logit vs human accuracy",
                                           xlabel="robust_gt_logit", ylabel="human accuracy")
    for rows in (1, 2, 10):
        cols = ["reference", *[f"{n.split(' / ')[0]}\n{n.split(' / ')[1]}" for n in NAMES * 4]]
        yield f"gallery-{rows}", figures.image_grid, dict(images=imgs(rows, len(cols)), row_labels=["nonface"] * rows,
                                                          col_labels=cols, title="Model metamers")
        yield f"grid-{rows}", figures.image_grid, dict(images=imgs(rows, 7, 32), row_labels=["face"] * rows,
                                                       col_labels=["original", *[f"eps={b:g}" for b in (0.25, 0.5, 1, 2, 4, 8)]],
                                                       title="enhanced by digits-robust")
    for n in (2, 12):
        matrix = RNG.random((n, 3))
        matrix[-1] = np.nan  # a cell where no metamer passed
        yield f"heatmap-{n}", figures.heatmap, dict(matrix=matrix, rows=[f"{NAMES[i % 3]} (50% pass)" for i in range(n)],
                                                    cols=["digits-robust", "digits-standard", "digits-blur"],
                                                    path=None, title="Metamer recognisability (passing metamers judged correct)",
                                                    xlabel="judge", ylabel="generator / layer", missing="none passed")
    yield "line_panels", figures.line_panels, dict(x=range(1, 11), panels={
        "mean budget (L2)": {"lwise": RNG.random(10), "control": RNG.random(10), "lwise_shuffled": RNG.random(10)},
        "mean difficulty quantile (0 = easiest)": {"lwise": RNG.random(10)}}, title="lfw: curriculum schedules", xlabel="block")
    yield "image_rows", figures.image_rows, dict(rows=[list(imgs(1, 8)[0]) for _ in range(10)],
                                                 row_labels=[f"block {b} train, eps={b:g}" for b in range(10)],
                                                 title="lfw: lwise, sequence 0")


CASES = list(_cases())


def _drawn_ticks(axis, lo: float, hi: float) -> list:
    lo, hi = min(lo, hi), max(lo, hi)
    return [label for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi for label in (t.label1, t.label2)]


def _texts(fig):
    """(text, window extent) of every text matplotlib draws: figure titles and labels, axes
    titles and labels, tick labels inside the view, annotations and legend entries."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [*fig.texts, *(t for t in (fig._suptitle, fig._supxlabel, fig._supylabel) if t is not None)]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        if ax.axison:
            texts += [ax.xaxis.label, ax.yaxis.label, *_drawn_ticks(ax.xaxis, *ax.get_xlim()),
                      *_drawn_ticks(ax.yaxis, *ax.get_ylim())]
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
    unique = list({id(t): t for t in texts}.values())
    return [(t.get_text(), t.get_window_extent(renderer)) for t in unique if t.get_visible() and t.get_text().strip()]


@pytest.mark.parametrize("name,fn,kwargs", CASES, ids=[c[0] for c in CASES])
def test_no_two_text_boxes_overlap(name, fn, kwargs, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, path: drawn.append(fig) or path)
    kwargs = {**kwargs, "path": tmp_path / "f.png"}
    fn(**kwargs)
    (fig,) = drawn
    texts = _texts(fig)
    assert len(texts) >= 3
    clashes = [(a, b) for (a, ea), (b, eb) in combinations(texts, 2) if _overlap(ea, eb) > 1.0]
    assert clashes == [], f"{name}: overlapping text {clashes[:3]}"


def _overlap(a, b) -> float:
    """Area (px^2) of the intersection of two boxes."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, w) * max(0.0, h)


def test_saved_pngs_are_deterministic(tmp_path):
    name, fn, kwargs = CASES[0]
    a = fn(**{**kwargs, "path": tmp_path / "a.png"})
    b = fn(**{**kwargs, "path": tmp_path / "b.png"})
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("budgets", [[5, 10, 15, 20], [0.25, 0.5, 1, 2, 4, 8]])
def test_budget_axis_ticks_are_the_budgets(budgets, tmp_path, monkeypatch):
    """A log budget axis is labelled at the budgets themselves, not at powers of two (2^3 and
    2^4 on a 5-20 axis)."""
    captured = {}
    monkeypatch.setattr(figures, "save", lambda fig, path: captured.setdefault("fig", fig))
    figures.lines(budgets, {"g": RNG.random(len(budgets))}, tmp_path / "x.png", title="t", xlabel="b", ylabel="y",
                  logx=True)
    ax = captured["fig"].axes[0]
    captured["fig"].canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    assert labels == [f"{b:g}" for b in budgets]
