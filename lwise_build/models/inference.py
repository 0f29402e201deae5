"""Batched inference: every stage's forward passes over images go through here.

PNG batches are decoded ahead of the model (a background thread, or worker processes on a GPU);
``forward_stats`` runs several models on each decoded batch once; ``logits`` and
``activations`` are the plain batched loops (no gradients, results on the CPU).

Every batch runs at the full batch size, the last one padded: at a fixed shape a sample's
numbers do not depend on the other samples, so results are exact per image whatever it was
batched with (what the unit cache relies on; docs/architecture.md, "Units and the cache").
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

from ..io.images import decode_png

#: Per-row statistics of :func:`forward_stats` (difficulty columns derive from them).
STATS = ("gt_logit", "pred", "prob", "margin")
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


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


def padded(x: torch.Tensor, size: int) -> torch.Tensor:
    """A copy of ``x`` with zero rows up to ``size`` rows, images in channels-last memory.

    Both matter: kernels differ with the batch shape and with the layout, and at one shape and
    one layout an image's numbers do not depend on the images beside it. Channels-last is the
    layout CPU and GPU convolutions run fastest in (docs/architecture.md, "Units and the cache").
    """
    fmt = torch.channels_last if x.dim() == 4 else torch.contiguous_format
    out = torch.empty((max(size, len(x)), *x.shape[1:]), dtype=x.dtype, device=x.device, memory_format=fmt)
    out[len(x):] = 0
    out[: len(x)] = x
    return out


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` (N, C, H, W) with NHWC strides, one channel included: ``contiguous(
    memory_format=...)`` leaves a one-channel tensor as it is, and convolutions then take their
    slower NCHW path (30% of a grayscale forward pass on a CPU)."""
    return torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last).copy_(x)


def forward_stats(models: Mapping[str, torch.nn.Module], batches: Iterable[torch.Tensor],
                  targets: Mapping[str, np.ndarray], device: torch.device, precision: str = "fp32",
                  progress: Any = None, batch_size: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Run every model on every batch (decoded once, shared); per model the :data:`STATS` arrays.

    Batches are uint8 (scaled by 1/255 on the device) or floats in [0, 1]; each is padded to
    ``batch_size`` rows (the fixed shape that makes results exact per image).
    """
    tgt = {k: torch.as_tensor(np.asarray(v, dtype=np.int64), device=device) for k, v in targets.items()}
    out: dict[str, dict[str, list[torch.Tensor]]] = {k: {s: [] for s in STATS} for k in models}
    cast = (torch.autocast(device.type, dtype=AUTOCAST[precision]) if precision in AUTOCAST
            else contextlib.nullcontext())
    start = 0
    with torch.inference_mode(), cast:
        for batch in batches:
            x = batch.to(device, non_blocking=True)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            n = len(x)
            x = padded(x, batch_size)
            for name, model in models.items():
                stats = _stats(model(x)[:n].float(), tgt[name][start:start + n])
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
    return forward_stats(models, batches, targets, device, resolve_precision(precision, device), progress,
                         batch_size)


def device_of(model: torch.nn.Module) -> torch.device:
    """Where a model's tensors live (buffers count: a Classifier always has mean/std)."""
    t = next(iter(model.buffers()), None)
    if t is None:
        t = next(iter(model.parameters()), None)
    return torch.device("cpu") if t is None else t.device


def logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The model's logits for ``x`` (batched, no grads), on the CPU."""
    dev = device_of(model)
    out = []
    with torch.inference_mode():
        for lo in range(0, len(x), batch_size):
            chunk = x[lo:lo + batch_size]
            out.append(model(padded(chunk, batch_size).to(dev))[: len(chunk)].cpu())
    return torch.cat(out) if out else torch.empty(0, getattr(model, "num_classes", 0))


def activations(model: Any, layer: str, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Flattened float64 activations at ``layer`` (N, D), the forward pass stopped there."""
    dev = device_of(model)
    out = []
    with torch.no_grad():
        for lo in range(0, len(x), batch_size):
            chunk = x[lo:lo + batch_size]
            acts = model.forward_to(padded(chunk, batch_size).to(dev), layer)[: len(chunk)]
            out.append(acts.flatten(1).double().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, 0))
