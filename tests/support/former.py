"""The statistics lwise-build computed by hand before it used scipy, scikit-learn and statsmodels:
kept here only as the reference the library versions are tested equal to (same definitions)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

NAN = float("nan")


def pearson(x, y) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return NAN
    xc, yc = x - x.mean(), y - y.mean()
    denom = np.sqrt((xc * xc).sum() * (yc * yc).sum())
    return float(np.clip((xc * yc).sum() / denom, -1.0, 1.0)) if denom > 0 else NAN


def spearman(x, y) -> float:
    return pearson(rankdata(x), rankdata(y))


def _weights(correct, weight):
    c = np.asarray(correct, dtype=np.float64)
    w = np.ones_like(c) if weight is None else np.asarray(weight, dtype=np.float64)
    return w * c, w * (1.0 - c)


def roc_auc(score, correct, weight=None) -> float:
    pos, neg = _weights(correct, weight)
    score = np.asarray(score, dtype=np.float64)
    if pos.sum() <= 0 or neg.sum() <= 0:
        return NAN
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
    pos_g, neg_g = np.bincount(group, weights=pos[order]), np.bincount(group, weights=neg[order])
    neg_below = np.cumsum(neg_g) - neg_g
    return float((pos_g * (neg_below + 0.5 * neg_g)).sum() / (pos.sum() * neg.sum()))


def fit_logistic(x, correct, weight=None, c: float = 1.0, iters: int = 50) -> tuple[float, float]:
    pos, neg = _weights(correct, weight)
    x = np.asarray(x, dtype=np.float64)
    w, theta = pos + neg, np.zeros(2)
    design = np.stack([x, np.ones_like(x)], axis=1)
    ridge = np.diag([1.0 / c, 0.0])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (w * p - pos) + ridge @ theta
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + ridge + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def bootstrap(stat, groups, n: int, ci: float, rng) -> tuple[float, float, float]:
    groups = [np.asarray(g, dtype=np.float64) for g in groups]
    point = float(stat(*[g[None, :] for g in groups])[0])
    draws = stat(*[g[rng.integers(0, len(g), size=(n, len(g)))] for g in groups])
    draws = draws[np.isfinite(draws)]
    lo, hi = np.quantile(draws, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return point, float(lo), float(hi)


def row_pearson(a, b) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=1) / np.where(denom > 0, denom, 1), 0.0)
