"""Benchmark: real size. 224-px photos and a ResNet-50 imported from a robustness-library
checkpoint (random weights), its 1000-class head mapped onto 4 corpus classes by score.class_map.

Part 1, the stages' compute against bare-model references, in this process (medians of
interleaved rounds, so load changes hit every way alike):
  score     images/s from PNG bytes (the stage's path) vs a bare channels-last forward (goal >= 0.95)
  enhance   all budgets from one trajectory, and the stage's compute (trajectory and storing), vs
            one trajectory of the largest budget's steps at the same model, layout and batch
            (goal: all budgets <= 1.05x its time)
  metamers  batched synthesis vs plenoptic's Metamer one target at a time, equal steps, final loss
Part 2, the stages as `dvc repro` runs them, one process each on a generated project: wall time,
images/s, peak memory and how far above a process that only loaded the model (goal for metamers
at batch 16: <= 2 GB), kernel share of CPU time (goal < 10%), page faults.

    python benchmarks/bench_realsize.py [--images 32] [--batch 16] [--budgets 5 10 15 20]
        [--steps 10] [--layers layer1 layer4] [--null-pairs 500] [--rounds 3] [--arch resnet50]
        [--size 224] [--skip-compute] [--skip-stages] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from realsize import (  # first: sets the process up as the CLI does
    CLASS_MAP,
    bare_forward,
    one_trajectory,
    params_yaml,
    photo_folder,
    plenoptic_metamers,
    robustness_checkpoint,
)

# isort: split
import numpy as np
import torch
from workloads import make_images

from lwise_build.io.images import encode_png, to_tensor
from lwise_build.models.checkpoints import classifier_from_checkpoint
from lwise_build.models.inference import channels_last, score_pngs
from lwise_build.ops.enhance import enhance
from lwise_build.ops.metamer import metamers, normalised_distance, synthesis_model
from lwise_build.stages.enhance.stage import enhance_images

STAGES = [("resolve", []), ("ingest", []), ("train", ["robust"]), ("score", []), ("enhance", []), ("metamers", [])]
BASELINE = """import resource, sys
from lwise_build.device import configure_process
configure_process()
import lwise_build.stages.metamers.stage
from lwise_build.config.load import load_params
from lwise_build.models.store import load_named
load_named(load_params(sys.argv[1]), "robust")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def rounds(ways: dict, n: int, warm: bool = True) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds (this process, all threads) of each way over ``n`` interleaved
    rounds, after one warm-up call each unless ``warm`` is off (calls of many seconds need none).
    On a shared machine CPU time is the steadier measure: waiting for a core does not count."""
    for fn in ways.values() if warm else ():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in ways}
    cpu: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(n):
        for k, fn in ways.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - start)
            cpu[k].append(time.process_time() - start_cpu)
    return ({k: statistics.median(v) for k, v in wall.items()}, {k: statistics.median(v) for k, v in cpu.items()})


def compute_part(model, args: argparse.Namespace) -> dict[str, float]:
    """Part 1; returns the reference rates (images/s, metamers/s) for part 2's table."""
    b = args.batch
    x = make_images(args.images, args.size, 3)
    pngs = [encode_png((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)) for img in x]
    y = torch.tensor([int(list(CLASS_MAP.values())[i % 4]) for i in range(args.images)])
    xc = channels_last(to_tensor(pngs))
    t, c = rounds({"bare forward": lambda: bare_forward(model, xc, b),
                   "stage path": lambda: score_pngs({"m": model}, pngs, {"m": y.numpy()}, torch.device("cpu"),
                                                    batch_size=b, workers=0, precision="fp32")}, args.rounds)
    n = args.images
    print(f"score, {n} images, batch {b}: bare forward {n / t['bare forward']:.1f} images/s, stage path (PNG bytes "
          f"-> scores) {n / t['stage path']:.1f} images/s: {t['bare forward'] / t['stage path']:.3f} of it "
          f"(CPU time {c['bare forward'] / c['stage path']:.3f}; goal >= 0.95)")
    refs = {"score": n / t["bare forward"]}
    xe, ye, pe, top = xc[:b], y[:b], pngs[:b], max(args.budgets)
    ep = argparse.Namespace(objective="logit", step_size=0.5, norm="l2", steps=None, diverge_from=None, batch_size=b)
    one_trajectory(model, xe, ye, 0.5, b)  # warm-up: one step with a gradient (the calls below are long)
    t, c = rounds({"one trajectory": lambda: one_trajectory(model, xe, ye, top, b),
                   "largest budget alone": lambda: enhance(model, xe, ye, budgets=[top], batch_size=b),
                   "all budgets": lambda: enhance(model, xe, ye, budgets=args.budgets, batch_size=b),
                   "stage compute": lambda: enhance_images(ep, model, pe, ye.tolist(), args.budgets)},
                  args.rounds, warm=False)
    print(f"enhance, {len(xe)} images, budgets {args.budgets}, batch {b}: one trajectory of the largest budget "
          f"{len(xe) / t['one trajectory']:.2f} images/s")
    for way in ("largest budget alone", "all budgets", "stage compute"):
        print(f"  {way:20s} {len(xe) / t[way]:.2f} images/s: {t[way] / t['one trajectory']:.3f}x the trajectory's "
              f"time (CPU time {c[way] / c['one trajectory']:.3f}x)" + ("; goal <= 1.05" if way == "all budgets" else ""))
    refs["enhance"] = len(xe) / t["one trajectory"]
    refs["metamers"] = metamer_part(model, xc[:b], args)
    return refs


def metamer_part(model, x: torch.Tensor, args: argparse.Namespace) -> float:
    """Batched synthesis vs plenoptic at equal steps, per layer; returns plenoptic's metamers/s."""
    ids, fast, rate = [f"ref{i:04d}" for i in range(len(x))], synthesis_model(model), float("nan")
    for layer in args.layers:
        ways = {"batched": lambda layer=layer: metamers(fast, layer, x, ids, steps=args.steps, schedule="test",
                                                         batch_size=args.batch)}
        external = plenoptic_metamers(model, layer, x, ids, args.steps)
        if external is not None:
            ways["plenoptic"] = external
        (t, c), outs = rounds(ways, args.rounds), {k: fn() for k, fn in ways.items()}
        with torch.no_grad():
            target = model.forward_to(x, layer)
            loss = {k: normalised_distance(model.forward_to(v, layer), target).mean().item() for k, v in outs.items()}
        line = (f"metamers at {layer}, {len(x)} references x {args.steps} steps: batched {len(x) / t['batched']:.2f} "
                f"metamers/s (final loss {loss['batched']:.4f})")
        if "plenoptic" in t:
            rate = len(x) / t["plenoptic"]
            line += (f", plenoptic one at a time {rate:.2f} metamers/s (final loss {loss['plenoptic']:.4f}): "
                     f"{t['plenoptic'] / t['batched']:.1f}x (CPU time {c['plenoptic'] / c['batched']:.1f}x)")
        print(line if "plenoptic" in t else line + "; plenoptic is not installed (pip install 'lwise-build[bench]')")
    return rate


#: Runs a command and prints its wall time and resource usage as JSON. A small process without torch
#: launches each stage, so a stage's peak RSS is its own (a child forked from this process would
#: count this process's memory from before its exec).
LAUNCH = """import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
err = proc.stderr.read()
_, status, u = os.wait4(proc.pid, 0)
print(json.dumps({"wall": time.perf_counter() - start, "rc": os.waitstatus_to_exitcode(status), "err": err[-2000:],
                  "maxrss_kb": u.ru_maxrss, "utime": u.ru_utime, "stime": u.ru_stime, "minflt": u.ru_minflt}))
"""


def run_child(cmd: list[str], env: dict, cwd: Path) -> dict:
    """Run ``cmd`` from a small launcher process: its wall seconds, peak RSS, CPU times, faults."""
    out = subprocess.run([sys.executable, "-c", LAUNCH, *cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"launcher failed: {out.stderr.strip()[-500:]}")
    got = json.loads(out.stdout)
    if got["rc"]:
        raise SystemExit(f"{' '.join(cmd[1:])} failed ({got['rc']}): {got['err'].strip().splitlines()[-1:]}")
    return got


def stage_part(root: Path, args: argparse.Namespace, refs: dict[str, float]) -> None:
    """Part 2: the generated project built stage by stage, one process each, as dvc repro runs them."""
    ckpt = robustness_checkpoint(root / "checkpoints" / f"{args.arch}_l2_3.pt", args.arch)
    photo_folder(root / "raw", max(2, args.images // len(CLASS_MAP)), args.size)
    params = root / "params.yaml"
    params.write_text(params_yaml(root / "raw", ckpt, arch=args.arch, size=args.size, batch=args.batch,
                                  budgets=args.budgets, layers=args.layers, steps=args.steps,
                                  null_pairs=args.null_pairs))
    env = {**os.environ, "LWISE_CACHE": str(root / "cache"), "LWISE_DATA": str(root / "data")}
    print(f"stages, one process each ({os.cpu_count()} cores); 'above model': peak minus that of a process that "
          "only imported the stage and loaded the model")
    print(f"  {'stage':9s} {'wall s':>7s} {'items/s':>8s} {'bare ref/s':>10s} {'peak MB':>8s} {'above model':>11s} "
          f"{'kernel':>6s} {'faults':>9s}")
    images = len([p for p in (root / "raw").rglob("*.jpg")])
    items, model_kb = {"score": images, "enhance": images, "metamers": len(CLASS_MAP) * len(args.layers)}, 0
    for stage, extra in STAGES:
        if stage == "score":  # the model is built: measure what loading it costs
            model_kb = run_child([sys.executable, "-c", BASELINE, str(params)], env, root)["maxrss_kb"]
        u = run_child([sys.executable, "-m", "lwise_build", stage, "photos", *extra, "--params", str(params),
                       "--out", str(root / "data")], env, root)
        wall, cpu = u["wall"], u["utime"] + u["stime"]
        rate = f"{items[stage] / wall:8.2f}" if stage in items else f"{'':8s}"
        ref = f"{refs[stage]:10.2f}" if stage in refs else f"{'':10s}"
        above = f"{(u['maxrss_kb'] - model_kb) / 1024:8.0f} MB" if model_kb else f"{'':11s}"
        print(f"  {stage:9s} {wall:7.1f} {rate} {ref} {u['maxrss_kb'] / 1024:8.0f} {above} "
              f"{u['stime'] / max(cpu, 1e-9):6.1%} {u['minflt']:9d}")
    print(f"  (a process that only loaded the model peaked at {model_kb / 1024:.0f} MB; items: images for score and "
          "enhance, metamers for metamers; bare ref: forward, one trajectory of the largest budget, plenoptic at "
          "equal steps, from part 1)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32, help="images, at least 16 (part 1: score; part 2: the corpus)")
    ap.add_argument("--batch", type=int, default=16, help="every stage's batch size (enhance and metamers: one batch in part 1)")
    ap.add_argument("--budgets", type=float, nargs="+", default=[5.0, 10.0, 15.0, 20.0])
    ap.add_argument("--steps", type=int, default=10, help="metamer synthesis steps")
    ap.add_argument("--layers", nargs="+", default=["layer1", "layer4"], help="metamer layers")
    ap.add_argument("--null-pairs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--skip-compute", action="store_true", help="only part 2 (the stages)")
    ap.add_argument("--skip-stages", action="store_true", help="only part 1 (compute vs references)")
    ap.add_argument("--out", type=Path, default=None, help="keep the generated project here")
    args = ap.parse_args()
    if args.images < 16 or args.batch < 16 or args.rounds < 1:
        ap.error("--images and --batch must be at least 16 (every split needs images; the stages' smallest "
                 "batch), --rounds at least 1")
    print(f"{args.arch} at {args.size} px (random weights, robustness-library checkpoint, 1000-class head mapped "
          f"onto {len(CLASS_MAP)} classes), cpu, {torch.get_num_threads()} torch threads")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        refs = {}
        if not args.skip_compute:
            ckpt = robustness_checkpoint(root / "part1.pt", args.arch)
            model = classifier_from_checkpoint(str(ckpt), args.arch, num_classes=1000).eval().requires_grad_(False)
            refs = compute_part(model, args)
        if not args.skip_stages:
            stage_part(root, args, refs)


if __name__ == "__main__":
    main()
