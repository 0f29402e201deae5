"""Benchmark: metamers per second, batched over many references vs one reference at a time.

Same model, images, layer, seeds and steps for both (the reference code makes one metamer at a
time). The model is a randomly initialised digits-sized CNN (timing does not depend on training)
on synthetic smooth grayscale images at 32 px. Prints metamers/s for each (median of interleaved
repeats), the ratio (goal >= 5x) and the max abs difference between the two results (they are
the same metamers: per-image losses and per-reference noise seeds).

    python benchmarks/bench_metamers.py [--arch smallcnn-tiny] [--layer fc] [--n 64] [--steps 40]
        [--size 32] [--repeats 3] [--device auto] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lwise_build.device import pick_device
from lwise_build.metamer import metamers
from lwise_build.models import Classifier, create_net


def make_model(arch: str, device: torch.device) -> Classifier:
    torch.manual_seed(0)
    net, stages = create_net(arch, 10, 1)
    model = Classifier(net, stages, [0.3], [0.35], [str(i) for i in range(10)], arch).to(device)
    return model.requires_grad_(False)


def make_images(n: int, size: int) -> torch.Tensor:
    """Smooth random images (blurred noise) on the uint8 grid, like stored images."""
    g = torch.Generator().manual_seed(1)
    x = F.avg_pool2d(torch.rand(n, 1, size + 6, size + 6, generator=g), 7, stride=1)
    lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    return ((x - lo) / (hi - lo) * 255).round() / 255


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="smallcnn-tiny")
    ap.add_argument("--layer", default="fc")
    ap.add_argument("--n", type=int, default=64, help="references")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model, x = make_model(args.arch, device), make_images(args.n, args.size)
    ids = [f"ref{i:05d}" for i in range(args.n)]
    kw = {"steps": args.steps, "schedule": "fast", "seed": 0}

    def batched() -> torch.Tensor:
        return metamers(model, args.layer, x, ids=ids, batch_size=args.n, **kw)

    def one_at_a_time() -> torch.Tensor:
        return torch.cat([metamers(model, args.layer, x[i:i + 1], ids=ids[i:i + 1], **kw) for i in range(args.n)])

    times: dict[str, list[float]] = {"batched": [], "one-at-a-time": []}
    outs: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):  # interleaved, so load changes hit both alike
        for name, fn in (("one-at-a-time", one_at_a_time), ("batched", batched)):
            sync(device)
            t0 = time.perf_counter()
            outs[name] = fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    rate = {k: args.n / statistics.median(v) for k, v in times.items()}
    diff = (outs["batched"] - outs["one-at-a-time"]).abs().max().item()
    print(f"device {device}, threads {torch.get_num_threads()}, {args.arch} @ {args.size}px, layer {args.layer}, "
          f"{args.n} references x {args.steps} steps, median of {args.repeats}")
    for name in ("one-at-a-time", "batched"):
        print(f"  {name:14s} {rate[name]:8.2f} metamers/s  ({statistics.median(times[name]):.2f} s)")
    print(f"  ratio batched / one-at-a-time: {rate['batched'] / rate['one-at-a-time']:.1f}x (goal >= 5x)")
    print(f"  max |batched - one-at-a-time| = {diff:.2e}")


if __name__ == "__main__":
    main()
