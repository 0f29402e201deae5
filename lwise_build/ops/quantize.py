"""Storing enhanced images: on the uint8 grid and within budget *after* rounding.

Rounding each pixel to nearest can push a change just over its L2 budget; shrinking the change
slightly before rounding brings it back (docs/methods.md, "Enhancement"). Rounding can also undo
a tiny gain: :func:`best_within` stores the best rounded candidate by the guide's objective, and
the original where no candidate beats it, so a stored image is never harder than the original.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: Shrink factors tried when rounding to uint8 pushes an image over its budget.
SHRINK = (1.0, 0.999, 0.995, 0.99, 0.98, 0.95, 0.9)


def _levels(x: Tensor) -> Tensor:
    return (x.double() * 255.0).round()


def change_sizes(x0: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image (L2, Linf) of the change between two uint8-grid batches, in [0, 1] pixel units."""
    d = (_levels(x) - _levels(x0)).flatten(1) / 255.0
    return d.norm(dim=1), (d.abs().amax(1) if d.shape[1] else torch.zeros(len(d), dtype=d.dtype))


def quantize_within(x0: Tensor, x: Tensor, eps: float, norm: str) -> Tensor:
    """``x`` on the uint8 grid and within ``eps`` of ``x0`` (itself on the grid) after rounding.

    Round to nearest; an image that rounding pushes over its budget is retried with its change
    shrunk by each factor in :data:`SHRINK`, and finally truncated towards ``x0`` (always inside).
    """
    base = _levels(x0)
    delta = x.double() * 255.0 - base
    out, todo = base.clone(), torch.ones(len(x), dtype=torch.bool, device=x.device)
    for f in SHRINK:
        if not todo.any():
            break  # every image fits already (the usual case after the first factor)
        cand = base + (delta * f).round()
        l2, linf = change_sizes(x0, cand / 255.0)
        fits = todo & ((linf if norm == "linf" else l2) <= eps)
        out[fits], todo = cand[fits], todo & ~fits
    out[todo] = (base + (delta * (1 - 1e-6)).trunc())[todo]
    return (out / 255.0).to(x.dtype)


def candidates_within(x0: Tensor, x: Tensor, eps: float, norm: str) -> list[tuple[Tensor, Tensor]]:
    """Every rounded version of ``x`` this module considers, as (images, fits budget) pairs: the
    change shrunk by each factor in :data:`SHRINK`, then truncated towards ``x0`` (always fits)."""
    base = _levels(x0)
    delta = x.double() * 255.0 - base
    out = []
    for f in SHRINK:
        cand = base + (delta * f).round()
        l2, linf = change_sizes(x0, cand / 255.0)
        out.append(((cand / 255.0).to(x.dtype), (linf if norm == "linf" else l2) <= eps))
    trunc = base + (delta * (1 - 1e-6)).trunc()
    out.append(((trunc / 255.0).to(x.dtype), torch.ones(len(x), dtype=torch.bool, device=x.device)))
    return out


Score = Callable[[Tensor, Tensor], Tensor]  # (images, their row indices) -> objective, higher better


def best_within(x0: Tensor, x: Tensor, eps: float, norm: str, score: Score, base: Tensor) -> Tensor:
    """:func:`quantize_within`, except that an image whose rounded change scores below the
    original (``base``, the objective of ``x0``) gets the best-scoring fitting candidate instead,
    or ``x0`` itself when none beats it. Only those few images are scored again."""
    return best_within_rows(x0, x, eps, norm, score, base)[0]


def best_within_rows(x0: Tensor, x: Tensor, eps: float, norm: str, score: Score,
                     base: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`best_within` and the indices of the rows it replaced (the rest are
    :func:`quantize_within`'s, which ``score`` saw first, all rows at once)."""
    stored = quantize_within(x0, x, eps, norm)
    rows = torch.arange(len(x), device=x.device)
    worse = rows[score(stored, rows) < base]
    if not len(worse):
        return stored, worse
    best, best_score = x0[worse].clone(), base[worse].clone()
    for cand, fits in candidates_within(x0[worse], x[worse], eps, norm):
        got = score(cand, worse)
        better = fits & (got > best_score)
        best[better], best_score[better] = cand[better], got[better]
    stored[worse] = best
    return stored, worse


def surviving_fraction(x0: Tensor, x: Tensor, x0_shown: Tensor, x_shown: Tensor) -> Tensor:
    """Per image, the part of the change ``d = x - x0`` still there after a lossy encoding:
    ``<x_shown - x0_shown, d> / |d|^2`` (1 intact, 0 erased; 0 where there is no change).

    ``*_shown`` are the encoded-and-decoded images a participant sees (e.g. JPEG at quality 75).
    """
    d = (x.double() - x0.double()).flatten(1)
    seen = (x_shown.double() - x0_shown.double()).flatten(1)
    size = (d * d).sum(1)
    return torch.where(size > 0, (seen * d).sum(1) / size.clamp_min(1e-300), torch.zeros_like(size))
