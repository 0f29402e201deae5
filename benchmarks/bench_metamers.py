"""Benchmark: metamers per second, batched over many references vs one reference at a time, and
against the field's library, plenoptic.

Same model, images, layer, seeds and steps for both (the reference code makes one metamer at a
time); both prepare the synthesis copy of the model once, so the ratio is the gain of batching. The model is a randomly initialised digits-sized CNN (timing does not depend on training)
on synthetic smooth grayscale images at 32 px.

The external reference is plenoptic's ``Metamer`` (``pip install 'lwise-build[bench]'``), one
synthesis object per target as plenoptic is used: the same synthesis copy of the model truncated at
the same layer, the same loss (normalised activation distance, no range penalty), the same initial
noise and number of steps, with plenoptic's own optimiser (Adam, lr 0.01); its final loss is
measured on the metamer clamped to [0, 1], as it would be stored. Without plenoptic that part is
skipped with a one-line message. Prints metamers/s for each (median of interleaved
repeats, with the CPU time each took: on a shared machine the steadier figure), the ratio (goal >= 5x), the mean final loss of each, and the max abs difference between
the two results. They are the same metamers mathematically (per-image losses, per-reference
noise seeds); float rounding differs between batch sizes and the optimisation amplifies it over
the steps, so the pixels drift apart while the losses stay equal.

On CPU each way runs with torch's default thread count and with one thread, all interleaved;
the headline ratio takes each way at its best thread count, so one-at-a-time is not judged by
a thread count that suits it badly (one-image steps pay thread synchronisation on every op).
The process is set up as the CLI sets it for every stage (``workloads``).

    python benchmarks/bench_metamers.py [--arch smallcnn-tiny] [--layer fc] [--n 32] [--steps 20]
        [--size 32] [--repeats 5] [--device auto] [--threads N [N ...]]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import warnings

from workloads import make_images, make_model, timed  # first: sets the process up as the CLI does

# isort: split
import torch

from lwise_build.device import pick_device
from lwise_build.models.classifier import Classifier
from lwise_build.ops.metamer import (
    init_noise_images,
    metamers,
    normalised_distance,
    synthesis_model,
)

CPU: dict[tuple[str, int], float] = {}  # median CPU seconds (this process) of each (way, threads)
PLENOPTIC_MISSING = "plenoptic is not installed (pip install 'lwise-build[bench]'): skipping the external reference"


def plenoptic_way(model: Classifier, layer: str, x: torch.Tensor, ids: list[str], steps: int):
    """One plenoptic ``Metamer`` per reference; None when plenoptic is not installed."""
    try:
        import plenoptic as po
    except ImportError:
        return None
    synth = sys.modules[po.Metamer.__module__]  # no progress bar per synthesis (it would be timed)
    synth.tqdm = functools.partial(synth.tqdm, disable=True)

    class Truncated(torch.nn.Module):
        """The model's forward pass stopped at ``layer``: what plenoptic matches."""

        def __init__(self, net: Classifier):
            super().__init__()
            self.net = net

        def forward(self, img: torch.Tensor) -> torch.Tensor:
            return self.net.forward_to(img, layer)

    def loss(rep: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return normalised_distance(rep, target).sum()

    device = next(iter(model.buffers())).device

    def run(n: int = len(x), n_steps: int = steps) -> torch.Tensor:
        truncated = Truncated(synthesis_model(model)).eval()  # prepared once, as for the other ways
        po.remove_grad(truncated)
        out = []
        for i in range(n):
            met = po.Metamer(x[i:i + 1].to(device), truncated, loss_function=loss, penalty_lambda=0.0)
            met.setup(initial_image=init_noise_images(x.shape[1:], ids[i:i + 1], 0, 0.05).to(device))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                met.synthesize(max_iter=n_steps, stop_criterion=0.0, stop_iters_to_check=n_steps + 1)
            out.append(met.metamer.detach().clamp(0, 1).cpu())
        return torch.cat(out)

    run(1, 1)  # plenoptic's one-time set-up cost (about a second) stays out of the timing
    return run


def measure(model: Classifier, layer: str, x: torch.Tensor, args: argparse.Namespace,
            thread_counts: list[int]) -> tuple[dict[tuple[str, int], float], dict[str, torch.Tensor]]:
    """Median seconds of each (way, threads), all interleaved in every repeat so load changes hit
    them alike, and the metamers of each way."""
    device = next(iter(model.buffers())).device
    ids = [f"ref{i:05d}" for i in range(len(x))]
    kw = {"steps": args.steps, "schedule": "fast", "seed": 0}

    def one_at_a_time() -> torch.Tensor:  # a batch of one, unpadded: as the reference code runs
        fast = synthesis_model(model)  # prepared once, not per image
        return torch.cat([metamers(fast, layer, x[i:i + 1], ids=ids[i:i + 1], batch_size=1, **kw)
                          for i in range(len(x))])

    def batched() -> torch.Tensor:
        return metamers(synthesis_model(model), layer, x, ids=ids, batch_size=len(x), **kw)

    ways = {"one-at-a-time": one_at_a_time, "batched": batched}
    external = plenoptic_way(model, layer, x, ids, args.steps)
    if external is not None:
        ways["plenoptic"] = external
    times: dict[tuple[str, int], list[float]] = {(w, t): [] for w in ways for t in thread_counts}
    cpu: dict[tuple[str, int], list[float]] = {k: [] for k in times}
    outs: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        for way, threads in times:
            torch.set_num_threads(threads)
            start = time.process_time()
            seconds, outs[way] = timed(ways[way], device)
            times[way, threads].append(seconds)
            cpu[way, threads].append(time.process_time() - start)
    CPU.update({k: statistics.median(v) for k, v in cpu.items()})
    return {k: statistics.median(v) for k, v in times.items()}, outs


def report(model: Classifier, layer: str, x: torch.Tensor, args: argparse.Namespace,
           thread_counts: list[int]) -> None:
    device = next(iter(model.buffers())).device
    secs, outs = measure(model, layer, x, args, thread_counts)
    with torch.no_grad():
        ref = model.forward_to(x.to(device), layer)
        loss = {k: normalised_distance(model.forward_to(v.to(device), layer), ref).mean().item()
                for k, v in outs.items()}
    print(f"device {device}, {args.arch} @ {args.size}px, layer {layer}, "
          f"{len(x)} references x {args.steps} steps, median of {args.repeats}")
    for (way, threads), t in secs.items():
        print(f"  {way:14s} {threads} thread(s) {len(x) / t:8.2f} metamers/s  ({t:.2f} s, CPU {CPU[way, threads]:.2f} s, "
              f"mean final loss {loss[way]:.4f})")
    for threads in thread_counts:
        ratio = secs["one-at-a-time", threads] / secs["batched", threads]
        print(f"  ratio batched / one-at-a-time, {threads} thread(s): {ratio:.1f}x")
    best = {w: min(t for (way, _), t in secs.items() if way == w) for w in outs}
    print(f"  ratio, each at its best thread count: {best['one-at-a-time'] / best['batched']:.1f}x (goal >= 5x)")
    if "plenoptic" in best:
        print(f"  plenoptic Metamer (Adam, one target at a time): {len(x) / best['plenoptic']:.2f} metamers/s, "
              f"mean final loss {loss['plenoptic']:.4f}; lwise-build batched {len(x) / best['batched']:.2f} "
              f"metamers/s, mean final loss {loss['batched']:.4f} ({best['plenoptic'] / best['batched']:.1f}x faster)")
        cpu = {w: min(t for (way, _), t in CPU.items() if way == w) for w in outs}
        print(f"  in CPU time (each at its best; steadier on a shared machine): plenoptic / batched "
              f"{cpu['plenoptic'] / cpu['batched']:.1f}x")
    else:
        print(f"  {PLENOPTIC_MISSING}")
    diff = (outs["batched"] - outs["one-at-a-time"]).abs().max().item()
    print(f"  max |batched - one-at-a-time| = {diff:.2e} (rounding, amplified over the steps)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="smallcnn-tiny")
    ap.add_argument("--layer", default="fc")
    ap.add_argument("--n", type=int, default=32, help="references")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=1, help="3 for torchvision architectures")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="CPU thread counts to run (default: torch's default, then 1 if that is more)")
    args = ap.parse_args()
    device = pick_device(args.device)
    model, x = make_model(args.arch, device, args.channels), make_images(args.n, args.size, args.channels)
    default = torch.get_num_threads()
    report(model, args.layer, x, args,
           args.threads or ([default, 1] if default > 1 and device.type == "cpu" else [default]))


if __name__ == "__main__":
    main()
