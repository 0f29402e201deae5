"""Benchmark: standard against PGD adversarial training, same model and data, same run.

Times the train stage's own epoch loop (``train.run_epoch``) for a standard recipe and an L2 PGD
recipe with ``--steps`` steps, interleaved, on synthetic grayscale images (training speed does
not depend on their content). Prints images/s for both, the measured cost ratio and the expected
ratio ``steps + 1`` (each PGD step is one forward+backward, on top of the training step's own).

    python benchmarks/bench_train.py [--arch smallcnn-tiny] [--n 512] [--size 32] [--steps 3]
                                     [--repeats 3] [--device auto] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics

from workloads import make_model, timed  # first: sets the process up as the CLI does

# isort: split
import torch

from lwise_build.config.model_params import AdversarialParams, TrainParams
from lwise_build.device import pick_device
from lwise_build.stages.train.stage import Split, optimiser, run_epoch


def time_epoch(arch: str, data: Split, tp: TrainParams, device: torch.device) -> float:
    """Seconds for one epoch of ``tp`` on ``data`` (after a one-batch warm-up)."""
    model = make_model(arch, device)
    opt, sched = optimiser(model, tp, 10 * len(data))
    gen = torch.Generator().manual_seed(0)
    run_epoch(model, Split(data.x[: tp.batch_size], data.y[: tp.batch_size]), tp, opt, sched, gen, device, "warm-up")
    return timed(lambda: run_epoch(model, data, tp, opt, sched, gen, device, "timed"), device)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="smallcnn-tiny")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    g = torch.Generator().manual_seed(1)
    data = Split(torch.randint(0, 256, (args.n, 1, args.size, args.size), generator=g, dtype=torch.uint8),
                 torch.randint(0, 10, (args.n,), generator=g))
    standard = TrainParams(epochs=1, batch_size=args.batch_size, optimizer="adam", lr=1e-3)
    pgd = TrainParams(epochs=1, batch_size=args.batch_size, optimizer="adam", lr=1e-3,
                      adversarial=AdversarialParams(norm="l2", eps=1.0, steps=args.steps))
    times: dict[str, list[float]] = {"standard": [], "pgd": []}
    for _ in range(args.repeats):  # interleaved, so load changes hit both alike
        times["standard"].append(time_epoch(args.arch, data, standard, device))
        times["pgd"].append(time_epoch(args.arch, data, pgd, device))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"device {device}, threads {torch.get_num_threads()}, arch {args.arch}, "
          f"{args.n} images of {args.size} px, batch {args.batch_size}, median of {args.repeats}")
    for k in ("standard", "pgd"):
        print(f"  {k:9s} training: {args.n / med[k]:8.1f} images/s  ({med[k]:.2f} s per epoch)")
    print(f"  PGD/standard cost ratio: {med['pgd'] / med['standard']:.2f} "
          f"(expected about steps + 1 = {args.steps + 1}; a little less, as attack steps skip weight gradients)")


if __name__ == "__main__":
    main()
