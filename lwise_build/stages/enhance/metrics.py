"""The enhance stage's metrics (``metrics/details/enhance.json``): per budget the gain and change
sizes, and on a seeded sample whether the change transfers to observer models and survives JPEG."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ...io.images import png_to_jpeg, to_tensor
from ...io.paths import budget_dir
from ...io.tables import png_bytes
from ...models.inference import logits
from ...ops.classmap import forced_choice
from ...ops.quantize import surviving_fraction
from ...seeding import seeded_hex


@dataclass(frozen=True)
class Judge:
    """A model judging images by forced choice over the corpus's classes (its choice groups:
    scoring's class mapping)."""

    model: Any
    groups: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Measured:
    """The enhance stage's measurements: what its metrics and figures show."""

    guide: str
    budgets: list[float]
    observers: list[str]
    sample: pa.Table  # the seeded sample's rows with their original images
    per_guide: dict[str, dict[float, pa.Table]]  # guide -> budget -> its enhanced sample rows
    transfer: dict[str, dict]  # guide -> eps=<b> -> gain and guide/observer accuracy (:func:`judge`)
    stats: dict[str, dict]  # eps=<b> -> gain and change sizes over every image (:func:`budget_stats`)
    images: int  # images enhanced
    jpeg: dict | None  # :func:`jpeg_survival` when the stimuli are JPEG


def sample(shards: Iterable[pa.Table], light: pa.Table, seed: int, per_split: int) -> pa.Table:
    """Up to ``per_split`` images per split of ``light`` (id, split), by seeded hash of the id
    (order independent): their rows of ``shards`` (the enhanced splits' rows with the image)."""
    ids, splits = light.column("id").to_pylist(), light.column("split").to_pylist()
    ranked = sorted((s, seeded_hex(seed, i), i) for i, s in zip(ids, splits, strict=True))
    chosen, seen = [], Counter()
    for s, _, i in ranked:
        seen[s] += 1
        if seen[s] <= per_split:
            chosen.append(i)
    return _pick(list(shards), pa.table({"id": chosen}))


def judge(sample: pa.Table, guide: Judge, observers: dict[str, Judge], x0: torch.Tensor,
          per_b: dict[float, pa.Table], budgets: Sequence[float], batch_size: int) -> dict:
    """Per budget (0 = original): mean gain and guide/observer accuracy on the sample, per split."""
    labels = np.asarray(sample.column("label").to_pylist(), dtype=np.int64)
    splits = np.asarray(sample.column("split").to_pylist(), dtype=object)
    out = {}
    for b in [0.0, *budgets]:
        t = per_b.get(b)
        x = x0 if t is None else to_tensor(t.column("image").to_pylist())
        gain = 0.0 if t is None else mean_or_zero(np.asarray(t.column("gt_logit_after")) - np.asarray(t.column("gt_logit_before")))
        acc = {name: accuracy(o, x, labels, splits, batch_size) for name, o in observers.items()}
        out[budget_dir(b)] = {"mean_gain": gain, "guide_accuracy": accuracy(guide, x, labels, splits, batch_size),
                              "observers": acc}
    return out


def jpeg_survival(guide: Any, sample: pa.Table, y: torch.Tensor, x0: torch.Tensor, picked: dict[float, pa.Table],
                  quality: int, batch_size: int) -> dict:
    """Per budget on the sample (targets ``y``): the fraction of the stored change that survives
    JPEG at ``quality`` (as the stimuli are exported), and the guide's mean logit gain on JPEG
    stimuli against PNG ones."""
    j0 = to_tensor([png_to_jpeg(p, quality) for p in png_bytes(sample)])
    before = np.asarray(gt_logits(guide, j0, y, batch_size))
    out = {}
    for b, t in picked.items():
        pngs = t.column("image").to_pylist()
        x, jx = to_tensor(pngs), to_tensor([png_to_jpeg(p, quality) for p in pngs])
        gain_png = np.asarray(t.column("gt_logit_after")) - np.asarray(t.column("gt_logit_before"))
        out[budget_dir(b)] = {
            "surviving_fraction": mean_or_zero(surviving_fraction(x0, x, j0, jx).numpy()),
            "mean_gain_jpeg": mean_or_zero(np.asarray(gt_logits(guide, jx, y, batch_size)) - before),
            "mean_gain_png": mean_or_zero(gain_png)}
    return {"quality": quality, "images": len(y), "budgets": out}


def accuracy(judge: Judge, x: torch.Tensor, labels: np.ndarray, splits: np.ndarray, batch_size: int) -> dict:
    """Accuracy over the sample and per split: the judge's forced choice over the corpus's
    classes (the plain argmax when its head is the corpus's classes)."""
    choice = forced_choice(logits(judge.model, x, batch_size).numpy(), judge.groups)
    hit = choice == labels
    return {"all": mean_or_zero(hit), **{s: mean_or_zero(hit[splits == s]) for s in sorted(set(splits))}}


def gt_logits(model: Any, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> list[float]:
    """The model's ground-truth logit per image."""
    return logits(model, x, batch_size).gather(1, y[:, None])[:, 0].double().tolist()


def budget_stats(t: pa.Table, b: float, norm: str) -> dict:
    """Mean gain, change sizes and whether every stored image is within budget ``b``."""
    gain = np.asarray(t.column("gt_logit_after")) - np.asarray(t.column("gt_logit_before"))
    l2, linf = np.asarray(t.column("l2")), np.asarray(t.column("linf"))
    size = linf if norm == "linf" else l2
    return {"mean_gain": mean_or_zero(gain), "mean_l2": mean_or_zero(l2), "max_l2": float(l2.max(initial=0.0)),
            "max_linf": float(linf.max(initial=0.0)), "within_budget": bool((size <= b).all())}


def mean_or_zero(a: Any) -> float:
    return float(np.mean(a)) if len(a) else 0.0


def _pick(parts: Sequence[pa.Table], sample: pa.Table) -> pa.Table:
    """The rows of ``parts`` whose ids are in ``sample``, in the sample's order."""
    ids = sample.column("id")
    sub = pa.concat_tables(p.filter(pc.is_in(p.column("id"), value_set=ids)) for p in parts)
    pos = {i: n for n, i in enumerate(sub.column("id").to_pylist())}
    return sub.take(pa.array([pos[i] for i in ids.to_pylist()], pa.int64()))
