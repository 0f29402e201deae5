"""Scoring throughput from PNG bytes (the stage's per-shard path) vs model-only forward on tensors.

Both sides use the same model, batch size, device and precision, measured in the same run,
alternating, best of ``--repeats``. Goal: ratio >= 0.85 (decoding hidden behind compute).

    python benchmarks/bench_score.py                       # smallcnn, 1 x 32 x 32 (digits-like)
    python benchmarks/bench_score.py --arch resnet18 --size 64 --channels 3
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext

from workloads import make_model, timed  # first: sets the process up as the CLI does

# isort: split
import numpy as np
import torch

from lwise_build.device import pick_device
from lwise_build.io.images import encode_png, to_tensor
from lwise_build.models.inference import AUTOCAST, default_workers, resolve_precision, score_pngs


def make_pngs(n: int, size: int, channels: int, seed: int = 0) -> list[bytes]:
    """Smooth random images (like natural ones, PNG-compressible), encoded as canonical PNGs."""
    rng = np.random.default_rng(seed)
    low = rng.random((n, size // 4, size // 4, channels))
    arr = np.repeat(np.repeat(low, 4, axis=1), 4, axis=2) + 0.1 * rng.random((n, size, size, channels))
    arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8)
    return [encode_png(a[..., 0] if channels == 1 else a) for a in arr]


def model_only(model: torch.nn.Module, x: torch.Tensor, batch: int, device: torch.device, precision: str) -> float:
    """Images/s of ``model(x)`` over pre-made device tensors, same autocast as scoring."""
    cast = torch.autocast(device.type, dtype=AUTOCAST[precision]) if precision in AUTOCAST else nullcontext()

    def forward() -> None:
        with torch.inference_mode(), cast:
            for i in range(0, len(x), batch):
                model(x[i:i + batch])

    return len(x) / timed(forward, device)[0]


def scoring(model: torch.nn.Module, pngs: list[bytes], batch: int, device: torch.device,
            workers: int, precision: str) -> float:
    """Images/s of the stage path: PNG bytes -> decoded batches (prefetched) -> forward stats."""
    targets = {"m": np.zeros(len(pngs), dtype=np.int64)}
    seconds, _ = timed(lambda: score_pngs({"m": model}, pngs, targets, device, batch_size=batch,
                                          workers=workers, precision=precision), device)
    return len(pngs) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="smallcnn")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--workers", type=int, default=None, help="decoding processes (default: as the stage)")
    args = ap.parse_args()

    device = pick_device(args.device)
    precision = resolve_precision(args.precision, device)
    workers = default_workers(device) if args.workers is None else args.workers
    model = make_model(args.arch, device, args.channels).eval().requires_grad_(False)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model.to(memory_format=fmt)
    pngs = make_pngs(args.n, args.size, args.channels)
    x = to_tensor(pngs).to(device).contiguous(memory_format=fmt)
    model_only(model, x[: args.batch * 2], args.batch, device, precision)  # warm-up
    ref, got = [], []
    for _ in range(args.repeats):
        ref.append(model_only(model, x, args.batch, device, precision))
        got.append(scoring(model, pngs, args.batch, device, workers, precision))
    print(f"model {args.arch} at {args.channels}x{args.size}x{args.size}, batch {args.batch}, {args.n} images, "
          f"device {device}, precision {precision}, decode workers {workers}, torch threads {torch.get_num_threads()}")
    print(f"model-only forward (pre-made tensors): {max(ref):9.1f} img/s  (runs: {', '.join(f'{r:.0f}' for r in ref)})")
    print(f"scoring from PNG bytes (stage path):   {max(got):9.1f} img/s  (runs: {', '.join(f'{g:.0f}' for g in got)})")
    print(f"ratio scoring / model-only: {max(got) / max(ref):.3f}  (goal >= 0.85)")


if __name__ == "__main__":
    main()
