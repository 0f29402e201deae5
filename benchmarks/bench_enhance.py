"""Benchmark: every budget from one shared trajectory vs one independent run per budget.

Same model and images for both, budgets {0.25, 0.5, 1, 2, 4, 8} (L2, step 0.5, default steps).
The model is a randomly initialised ``smallcnn`` (no training needed to time it; the trajectory
length depends only on the budgets) on synthetic smooth RGB images at 64 px. Prints wall time
for each (median of interleaved repeats), the ratio (goal <= 0.55), the images pushed through
forward+backward and forward-only for each (a machine-independent cost), and the max abs
difference between the two results.

    python benchmarks/bench_enhance.py [--n 32] [--size 64] [--repeats 3] [--device auto] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from workloads import make_images, make_model, timed  # first: sets the process up as the CLI does

# isort: split
import torch

from lwise_build.device import pick_device
from lwise_build.ops.enhance import enhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.reference import enhance_reference  # noqa: E402 - the tests' reference loop

BUDGETS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]


class Counter:
    """Counts images through the model with and without autograd (forward pre-hook)."""

    def __init__(self, model: torch.nn.Module):
        self.grad = self.plain = 0
        model.register_forward_pre_hook(self.hook)

    def hook(self, _module, args) -> None:
        if torch.is_grad_enabled():
            self.grad += len(args[0])
        else:
            self.plain += len(args[0])

    def take(self) -> tuple[int, int]:
        out = (self.grad, self.plain)
        self.grad = self.plain = 0
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="images")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    ap.add_argument("--arch", default="smallcnn")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model, x = make_model(args.arch, device, 3), make_images(args.n, args.size, 3).to(device)
    y = torch.arange(args.n, device=device) % 10
    counter = Counter(model)
    kw = dict(budgets=BUDGETS, step_size=0.5, norm="l2", batch_size=args.batch_size)
    runs = {"shared": lambda: enhance(model, x, y, **kw), "independent": lambda: enhance_reference(model, x, y, **kw)}
    for fn in runs.values():  # warm-up (allocator, kernels)
        fn()
    counter.take()
    times: dict[str, list[float]] = {k: [] for k in runs}
    counts, results = {}, {}
    for _ in range(args.repeats):  # interleaved, so load changes hit both alike
        for name, fn in runs.items():
            dt, results[name] = timed(fn, device)
            times[name].append(dt)
            counts[name] = counter.take()
    diff = max(float((results["shared"][b] - results["independent"][b]).abs().max()) for b in BUDGETS)
    print(f"device={device} arch={args.arch} (random init) images={args.n}x3x{args.size}x{args.size} "
          f"budgets={BUDGETS} step=0.5 repeats={args.repeats} threads={torch.get_num_threads()}")
    for name in runs:
        g, p = counts[name]
        print(f"{name:>12}: median {statistics.median(times[name]):8.3f} s  min {min(times[name]):8.3f} s  "
              f"images fwd+bwd {g:6d}  fwd-only {p:5d}")
    ratio = statistics.median(times["shared"]) / statistics.median(times["independent"])
    best = min(times["shared"]) / min(times["independent"])
    (gs, ps), (gi, pi) = counts["shared"], counts["independent"]
    work = (3 * gs + ps) / (3 * gi + pi)  # a backward costs about two forwards
    print(f"time ratio shared/independent: {ratio:.3f} (median), {best:.3f} (min); goal <= 0.55")
    print(f"work ratio (3*fwd+bwd + fwd images): {work:.3f}")
    print(f"max abs difference: {diff:.3g}")


if __name__ == "__main__":
    main()
