"""Benchmark: metamers per second, batched over many references vs one reference at a time.

Same model, images, layer, seeds and steps for both (the reference code makes one metamer at a
time). The model is a randomly initialised digits-sized CNN (timing does not depend on training)
on synthetic smooth grayscale images at 32 px. Prints metamers/s for each (median of interleaved
repeats), the ratio (goal >= 5x), the mean final loss of each, and the max abs difference between
the two results. They are the same metamers mathematically (per-image losses, per-reference
noise seeds); float rounding differs between batch sizes and the optimisation amplifies it over
the steps, so the pixels drift apart while the losses stay equal.

On CPU it runs once with torch's default thread count and once with one thread: with several
threads, one-image steps pay thread start-up and synchronisation on every op (badly so on a
loaded machine), which batching amortises; with one thread the gain is only the per-op overhead.

    python benchmarks/bench_metamers.py [--arch smallcnn-tiny] [--layer fc] [--n 32] [--steps 20]
        [--size 32] [--repeats 3] [--device auto] [--threads N [N ...]]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lwise_build.device import pick_device
from lwise_build.metamer import metamers, normalised_distance
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


def measure(model: Classifier, layer: str, x: torch.Tensor, steps: int, repeats: int,
            device: torch.device) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Median seconds and the metamers of each way, interleaved so load changes hit both alike."""
    ids = [f"ref{i:05d}" for i in range(len(x))]
    kw = {"steps": steps, "schedule": "fast", "seed": 0}
    ways = {
        "one-at-a-time": lambda: torch.cat([metamers(model, layer, x[i:i + 1], ids=ids[i:i + 1], **kw)
                                            for i in range(len(x))]),
        "batched": lambda: metamers(model, layer, x, ids=ids, batch_size=len(x), **kw),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    outs: dict[str, torch.Tensor] = {}
    for _ in range(repeats):
        for name, fn in ways.items():
            sync(device)
            t0 = time.perf_counter()
            outs[name] = fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, outs


def report(model: Classifier, layer: str, x: torch.Tensor, args: argparse.Namespace, device: torch.device) -> None:
    secs, outs = measure(model, layer, x, args.steps, args.repeats, device)
    with torch.no_grad():
        ref = model.forward_to(x.to(device), layer)
        loss = {k: normalised_distance(model.forward_to(v.to(device), layer), ref).mean().item()
                for k, v in outs.items()}
    print(f"device {device}, threads {torch.get_num_threads()}, {args.arch} @ {args.size}px, layer {layer}, "
          f"{len(x)} references x {args.steps} steps, median of {args.repeats}")
    for name, t in secs.items():
        print(f"  {name:14s} {len(x) / t:8.2f} metamers/s  ({t:.2f} s, mean final loss {loss[name]:.4f})")
    print(f"  ratio batched / one-at-a-time: {secs['one-at-a-time'] / secs['batched']:.1f}x (goal >= 5x)")
    diff = (outs["batched"] - outs["one-at-a-time"]).abs().max().item()
    print(f"  max |batched - one-at-a-time| = {diff:.2e} (rounding, amplified over the steps)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="smallcnn-tiny")
    ap.add_argument("--layer", default="fc")
    ap.add_argument("--n", type=int, default=32, help="references")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="CPU thread counts to run (default: torch's default, then 1 if that is more)")
    args = ap.parse_args()
    device = pick_device(args.device)
    model, x = make_model(args.arch, device), make_images(args.n, args.size)
    default = torch.get_num_threads()
    for threads in args.threads or ([default, 1] if default > 1 and device.type == "cpu" else [default]):
        torch.set_num_threads(threads)
        report(model, args.layer, x, args, device)


if __name__ == "__main__":
    main()
