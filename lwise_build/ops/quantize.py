"""Storing enhanced images: on the uint8 grid and within budget *after* rounding.

Rounding each pixel to nearest can push a change just over its L2 budget; shrinking the change
slightly before rounding brings it back (docs/methods.md, "Enhancement").
"""

from __future__ import annotations

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
        cand = base + (delta * f).round()
        l2, linf = change_sizes(x0, cand / 255.0)
        fits = todo & ((linf if norm == "linf" else l2) <= eps)
        out[fits], todo = cand[fits], todo & ~fits
    out[todo] = (base + (delta * (1 - 1e-6)).trunc())[todo]
    return (out / 255.0).to(x.dtype)
