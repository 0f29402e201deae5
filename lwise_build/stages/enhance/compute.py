"""The enhance stage's per-batch work: enhance canonical PNGs and store each budget's images
within the budget after rounding (:mod:`~lwise_build.ops.quantize`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ...io.images import to_pngs, to_tensor
from ...models.inference import logits
from ...ops.enhance import enhance, objective_value
from ...ops.quantize import best_within_rows, change_sizes


def enhance_images(ep: Any, guide: Any, pngs: list[bytes], targets: list[int], budgets: Sequence[float],
                   on_step: Any = None) -> dict[float, dict[str, list]]:
    """Enhance canonical PNGs towards ``targets`` (guide head indices) at ``budgets``: per budget
    the stored PNG, the gt logit before and after, and the L2 / Linf size of the stored change.
    ``on_step(1)`` after every step of the shared trajectory (progress)."""
    x0 = to_tensor(pngs)
    y = torch.tensor(targets, dtype=torch.long)
    out = enhance(guide, x0, y, budgets=budgets, objective=ep.objective, step_size=ep.step_size, norm=ep.norm,
                  steps=ep.steps, diverge_from=ep.diverge_from, batch_size=ep.batch_size, on_step=on_step)
    z0 = logits(guide, x0, ep.batch_size)
    before = z0.gather(1, y[:, None])[:, 0].double()
    base = objective_value(guide, z0, y, ep.objective, ep.diverge_from)
    result = {}
    for b in budgets:
        stored, after = store_budget(guide, x0, out[b], y, b, base, before, ep)
        l2, linf = change_sizes(x0, stored)
        result[b] = {"image": to_pngs(stored), "gt_logit_before": before.tolist(),
                     "gt_logit_after": after.tolist(), "l2": l2.tolist(), "linf": linf.tolist()}
    return result


def store_budget(guide: Any, x0: torch.Tensor, x: torch.Tensor, y: torch.Tensor, b: float,
                 base: torch.Tensor, before: torch.Tensor, ep: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The stored images of budget ``b`` and their gt logits: the best rounded candidate within
    the budget, never scoring below the original on the guide's objective (then the original).

    The logits of the rounded images come from the pass that judged them (at a fixed batch shape
    an image's logits do not depend on its companions); only replaced rows are run again."""
    seen: list[torch.Tensor] = []

    def score(xs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        z = logits(guide, xs, ep.batch_size)
        seen.append(z)
        return objective_value(guide, z, y[rows], ep.objective, ep.diverge_from)

    stored, replaced = best_within_rows(x0, x, b, ep.norm, score, base)
    z = seen[0].clone()
    if len(replaced):
        z[replaced] = logits(guide, stored[replaced], ep.batch_size)
    worse = objective_value(guide, z, y, ep.objective, ep.diverge_from) < base
    stored[worse] = x0[worse]
    after = z.gather(1, y[:, None])[:, 0].double()
    same = (stored == x0).flatten(1).all(1)
    after[same] = before[same]  # the original's own logit, not a re-computation in another batch
    return stored, after
