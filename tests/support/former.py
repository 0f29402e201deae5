"""What lwise-build computed by hand before it used a library (scipy, scikit-learn, statsmodels,
pyarrow, PIL, huggingface_hub): kept only as the references the library versions are tested
equal to (same definitions, same inputs)."""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
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


def read_rows(path: Path, rows: list[int], columns: list[str]) -> pa.Table:
    """io.tables.read_rows by bisect over the row groups' first rows."""
    pf = pq.ParquetFile(path)
    starts, n = [], 0
    for g in range(pf.num_row_groups):
        starts.append(n)
        n += pf.metadata.row_group(g).num_rows
    groups = sorted({bisect.bisect_right(starts, r) - 1 for r in rows})
    table = pf.read_row_groups(groups, columns=columns)
    offset = {g: sum(pf.metadata.row_group(h).num_rows for h in groups[:i]) for i, g in enumerate(groups)}
    local = [offset[bisect.bisect_right(starts, r) - 1] + r - starts[bisect.bisect_right(starts, r) - 1] for r in rows]
    return table.take(pa.array(local, pa.int64()))


def card_header(ctx) -> dict:
    """hub.card.header with the features' YAML from the private ``Features._to_yaml_list``."""
    from lwise_build.hub.card import size_category

    ep = ctx.params.corpus(ctx.corpus).export
    images = next((c.total for c in ctx.configs if c.name == "default"), 0)
    return {
        "pretty_name": ctx.meta.title,
        "license": ep.license,
        "version": ctx.meta.version,
        "tags": list(ep.tags),
        "task_categories": ["image-classification"],
        "size_categories": [size_category(images)],
        "configs": [{"config_name": c.name, "data_files": c.data_files(), **({"default": True} if c.name == "default" else {})}
                    for c in ctx.configs],
        "dataset_info": [{"config_name": c.name, "features": c.features._to_yaml_list(),
                          "download_size": c.nbytes} for c in ctx.configs],
    }


def small(pngs: dict[str, bytes]) -> bool:
    """report's tiny-image test from the PNG header's width field (bytes 16:20)."""
    first = next(iter(pngs.values()), b"")
    return len(first) > 24 and int.from_bytes(first[16:20], "big") < 96


def cached_tags(cache: Path, repo: str) -> dict[str, str]:
    """hub.pull.cached_tags from the cache layout: ``datasets--org--name/refs/<tag>`` files."""
    refs = cache / f"datasets--{repo.replace('/', '--')}" / "refs"
    if not refs.is_dir():
        return {}
    return {p.name: p.read_text().strip() for p in refs.iterdir() if p.is_file() and p.name.startswith("v")}


def lr_factor(schedule: str, total_steps: int):
    """train's LambdaLR factor per step (the schedule the train stage uses today)."""
    import math

    def factor(step: int) -> float:
        t = step / max(1, total_steps)
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * t))
        if schedule == "step":
            return 0.1 ** ((t >= 0.5) + (t >= 0.75))
        return 1.0

    return factor
