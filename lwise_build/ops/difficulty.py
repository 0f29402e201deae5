"""Difficulty from the ground-truth logit: pure and vectorised (docs/methods.md, "Difficulty").

Difficulty is ``1 - (L - min L) / (max L - min L)`` of the ground-truth logit ``L``, in [0, 1]
with 0 the easiest image: within each class (``difficulty``) or over the whole table
(``difficulty_global``). A class whose logits are all equal (e.g. a single image) gets 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: The public score columns, per scoring alias ``<alias>_<column>``.
COLUMNS = ("gt_logit", "difficulty", "difficulty_global", "pred", "prob", "margin")


def difficulty(logits: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """``1 - min-max(logits)`` within each group (whole array if None); constant groups get 0.5."""
    z = np.asarray(logits, dtype=np.float32).astype(np.float64)
    inv = np.zeros(len(z), dtype=np.int64) if groups is None else np.unique(groups, return_inverse=True)[1]
    k = int(inv.max()) + 1 if len(z) else 0
    lo, hi = np.full(k, np.inf), np.full(k, -np.inf)
    np.minimum.at(lo, inv, z)
    np.maximum.at(hi, inv, z)
    span = (hi - lo)[inv]
    out = np.full(len(z), 0.5)
    ok = span > 0
    out[ok] = 1.0 - (z[ok] - lo[inv][ok]) / span[ok]
    return out.astype(np.float32)


def with_difficulty(stats: Mapping[str, np.ndarray], groups: np.ndarray) -> dict[str, np.ndarray]:
    """The public column set (:data:`COLUMNS`) from forward stats and per-row class groups."""
    return {"gt_logit": stats["gt_logit"], "difficulty": difficulty(stats["gt_logit"], groups),
            "difficulty_global": difficulty(stats["gt_logit"]), "pred": stats["pred"],
            "prob": stats["prob"], "margin": stats["margin"]}
