"""Difficulty scores: the ground-truth logit of each scoring model, and the ``score`` stage.

``score(model, images, labels)`` is what notebooks call; the stage (``lwise-build score <c>``)
(:mod:`.score_stage`) runs the same forward pass over ``data/<c>/images`` shard by shard.

Difficulty is ``1 - (L - min L) / (max L - min L)`` of the ground-truth logit ``L`` (0 easiest,
1 hardest), within each class (``difficulty``) or over the whole table (``difficulty_global``).
A class whose logits are all equal (e.g. a single image) gets 0.5.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import numpy as np
import torch

from .errors import UserError
from .images import decode_png

STATS = ("gt_logit", "pred", "prob", "margin")
COLUMNS = ("gt_logit", "difficulty", "difficulty_global", "pred", "prob", "margin")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


# ---------------------------------------------------------------- difficulty ---------------
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


# ---------------------------------------------------------------- targets ------------------
def map_targets(classes: Sequence[str], values: Sequence[Any], where: str) -> np.ndarray:
    """Model class index per row from class names (str) or indices (int); one-line error otherwise."""
    index = {str(c): i for i, c in enumerate(classes)}
    keys = [str(v) for v in values]
    lut = {}
    for key, v in dict(zip(keys, values, strict=True)).items():  # first occurrence order
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if not 0 <= int(v) < len(classes):
                raise UserError(f"{where}: class index {int(v)} is outside the model's {len(classes)} classes")
            lut[key] = int(v)
        elif key in index:
            lut[key] = index[key]
        else:
            raise UserError(f"{where}: label {key!r} is not a class of the model "
                            f"(map it with score.class_map or score.target_column)")
    return np.fromiter((lut[k] for k in keys), dtype=np.int64, count=len(keys))


# ---------------------------------------------------------------- batches ------------------
def _png_bytes(item: Any) -> bytes:
    return item["bytes"] if isinstance(item, dict) else item


def decode_batch(pngs: Sequence[Any]) -> torch.Tensor:
    """PNG bytes (or ``{"bytes": ...}`` structs) -> uint8 tensor (N, C, H, W)."""
    return torch.from_numpy(np.stack([decode_png(_png_bytes(p)) for p in pngs])).permute(0, 3, 1, 2)


class _Chunks(torch.utils.data.Dataset):
    """Batches of PNG bytes for DataLoader worker processes (each item is one decoded batch)."""

    def __init__(self, chunks: list[Sequence[Any]]):
        self.chunks = chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> torch.Tensor:
        return decode_batch(self.chunks[i])


def decoded_batches(pngs: Sequence[Any], batch_size: int, workers: int = 0,
                    pin: bool = False, depth: int = 3) -> Iterator[torch.Tensor]:
    """Decoded uint8 batches in order, decoding ahead of the consumer.

    ``workers`` > 0 decodes in that many processes (DataLoader); 0 in one background thread,
    which overlaps with compute because torch and zlib release the GIL.
    """
    chunks = [pngs[i:i + batch_size] for i in range(0, len(pngs), batch_size)]
    if workers > 0 and len(chunks) > 1:
        yield from torch.utils.data.DataLoader(
            _Chunks(chunks), batch_size=None, num_workers=min(workers, len(chunks)),
            prefetch_factor=depth, pin_memory=pin)
        return
    with ThreadPoolExecutor(1) as pool:
        it = iter(chunks)
        pending = deque(pool.submit(decode_batch, c) for c in islice(it, depth))
        while pending:
            batch = pending.popleft().result()
            for c in islice(it, 1):
                pending.append(pool.submit(decode_batch, c))
            yield batch.pin_memory() if pin else batch


def tensor_batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Slices of a float (N, C, H, W) tensor in [0, 1]."""
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size]


# ---------------------------------------------------------------- forward ------------------
def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` = bf16 autocast on CUDA (fp32 elsewhere); explicit choices only apply on CUDA."""
    if device.type != "cuda":
        return "fp32"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def default_workers(device: torch.device) -> int:
    """Decoding processes when not configured: several on a GPU (it outruns one decoder), none on CPU."""
    return min(8, max(1, (os.cpu_count() or 2) - 1)) if device.type == "cuda" else 0


def _stats(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """gt logit, argmax, softmax of the target and margin over the best other class, per row."""
    t = target[:, None]
    gt = logits.gather(1, t)[:, 0]
    others = logits.scatter(1, t, float("-inf")).amax(1) if logits.shape[1] > 1 else torch.full_like(gt, float("-inf"))
    return {"gt_logit": gt, "pred": logits.argmax(1), "prob": logits.softmax(1).gather(1, t)[:, 0],
            "margin": gt - others}


def forward_stats(models: Mapping[str, torch.nn.Module], batches: Iterable[torch.Tensor],
                  targets: Mapping[str, np.ndarray], device: torch.device, precision: str = "fp32",
                  progress: Any = None) -> dict[str, dict[str, np.ndarray]]:
    """Run every model on every batch (decoded once, shared); per model the :data:`STATS` arrays.

    Batches are uint8 (scaled by 1/255 on the device) or floats in [0, 1].
    """
    tgt = {k: torch.as_tensor(np.asarray(v, dtype=np.int64), device=device) for k, v in targets.items()}
    out: dict[str, dict[str, list[torch.Tensor]]] = {k: {s: [] for s in STATS} for k in models}
    cast = (torch.autocast(device.type, dtype=_AUTOCAST[precision]) if precision in _AUTOCAST
            else contextlib.nullcontext())
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    start = 0
    with torch.inference_mode(), cast:
        for batch in batches:
            x = batch.to(device, non_blocking=True)
            x = (x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()).contiguous(memory_format=fmt)
            n = len(x)
            for name, model in models.items():
                stats = _stats(model(x).float(), tgt[name][start:start + n])
                for s in STATS:
                    out[name][s].append(stats[s])
            start += n
            if progress is not None:
                progress.update(n)
    return {k: _to_numpy(v) for k, v in out.items()}


def _to_numpy(parts: dict[str, list[torch.Tensor]]) -> dict[str, np.ndarray]:
    dtype = {"pred": np.int64}
    return {s: (torch.cat(v).cpu().numpy() if v else np.zeros(0)).astype(dtype.get(s, np.float32))
            for s, v in parts.items()}


def score_pngs(models: Mapping[str, torch.nn.Module], pngs: Sequence[Any], targets: Mapping[str, np.ndarray],
               device: torch.device, *, batch_size: int = 256, workers: int | None = None,
               precision: str = "auto", progress: Any = None) -> dict[str, dict[str, np.ndarray]]:
    """Forward stats of every model over canonical PNGs, decoding ahead (the stage's per-shard path)."""
    w = default_workers(device) if workers is None else workers
    batches = decoded_batches(pngs, batch_size, w, pin=device.type == "cuda")
    return forward_stats(models, batches, targets, device, resolve_precision(precision, device), progress)


def with_difficulty(stats: Mapping[str, np.ndarray], groups: np.ndarray) -> dict[str, np.ndarray]:
    """The public column set (:data:`COLUMNS`) from forward stats and per-row class groups."""
    return {"gt_logit": stats["gt_logit"], "difficulty": difficulty(stats["gt_logit"], groups),
            "difficulty_global": difficulty(stats["gt_logit"]), "pred": stats["pred"],
            "prob": stats["prob"], "margin": stats["margin"]}


# ---------------------------------------------------------------- public API ---------------
def score(model: torch.nn.Module, images: torch.Tensor | Iterable[Any], labels: Sequence[Any], *,
          batch_size: int = 256, device: str | torch.device | None = None,
          targets: Sequence[int] | None = None, precision: str = "auto",
          workers: int | None = None) -> dict[str, np.ndarray]:
    """Difficulty columns of ``images`` under ``model`` (a :class:`~.models.Classifier`).

    ``images``: a float tensor (N, C, H, W) in [0, 1], or canonical PNG bytes (or image structs
    from a table). ``labels``: class names or model class indices; difficulty is min-maxed within
    each label. ``targets``: model class indices to score instead (e.g. the fine class when
    ``labels`` are superclasses). ``device``: default the model's. Returns arrays ``gt_logit``,
    ``difficulty``, ``difficulty_global``, ``pred`` (model class index), ``prob``, ``margin``.
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev).eval()
    labels = np.asarray(labels)
    targets = _api_targets(getattr(model, "classes", None), labels, targets)
    items = images if isinstance(images, torch.Tensor) else list(images)
    if not len(items) == len(labels) == len(targets):
        raise UserError(f"score: {len(items)} images, {len(labels)} labels and {len(targets)} targets")
    if isinstance(items, torch.Tensor):
        stats = forward_stats({"m": model}, tensor_batches(items, batch_size), {"m": targets}, dev,
                              resolve_precision(precision, dev))["m"]
    else:
        stats = score_pngs({"m": model}, items, {"m": targets}, dev, batch_size=batch_size,
                           workers=workers, precision=precision)["m"]
    return with_difficulty(stats, labels)


def _api_targets(classes: Sequence[str] | None, labels: np.ndarray, targets: Sequence[int] | None) -> np.ndarray:
    """Explicit targets, else labels as model class indices or names (through ``classes``)."""
    if targets is not None:
        values: list[Any] = [int(t) for t in targets]
    elif classes is None and labels.dtype.kind not in "iu":
        raise UserError("score: labels are names but the model has no `classes`; pass targets")
    else:
        values = labels.tolist()
    if classes is None:
        return np.asarray(values, dtype=np.int64)
    return map_targets(classes, values, "score")


def run(params: Any, corpus: str) -> None:
    """The ``score`` stage (``lwise-build score <corpus>``); see :mod:`.score_stage`."""
    from .score_stage import run as run_stage

    run_stage(params, corpus)
