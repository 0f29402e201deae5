"""The Ray executor against the local one: same work (enhancing a digits corpus), images/s.

    python benchmarks/bench_ray.py [--images 1792] [--budgets 5 10 15 20] [--repeats 3]

Prints, in one run: the local executor at 1 and 2 torch threads, Ray with 1 actor and with 2
actors (one torch thread each), the scaling ratio 2 actors / 1 actor (goal >= 1.7 on 2 cores)
and Ray's throughput against local at equal cores (goal >= 0.85), and whether every run wrote
the same cached results. The machine's own ceiling comes with it: two independent
single-threaded processes, each enhancing half the images at once (what perfect scale-out on
these cores would give). Each figure is the median of ``--repeats`` rounds, the runs of a round
interleaved so that a noisy neighbour hurts all of them alike. Ray and the two processes are
shown end to end (start-up included: a fresh process imports torch and loads the model; the
local runs have both already) and after start-up (first batch begun to last batch done). The
default 1792 images are 14 whole batches of 128: a last, part-filled batch costs a full one and
would leave one actor working alone. Ray runs on 127.0.0.1 and is shut down at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import workloads  # noqa: F401  first: sets the process up as the CLI does

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402
from bench_incremental import params as corpus_params  # noqa: E402
from bench_incremental import write_digits  # noqa: E402

from lwise_build.config.load import parse_params  # noqa: E402
from lwise_build.config.schema import to_plain  # noqa: E402
from lwise_build.io.tables import shard_paths  # noqa: E402
from lwise_build.models.classifier import Classifier  # noqa: E402
from lwise_build.models.registry import create_net  # noqa: E402
from lwise_build.models.store import save_model  # noqa: E402
from lwise_build.stages.enhance.stage import Enhance  # noqa: E402
from lwise_build.stages.ingest.stage import Ingest  # noqa: E402


def params(raw: Path, budgets: list[float], actors: int):
    import json

    plain = json.loads(json.dumps(to_plain(corpus_params(raw, budgets)), default=str))
    plain["executor"] = {"kind": "ray", "ray": {"actors": actors, "threads_per_actor": 1}}
    return parse_params(plain)


def prepare(work: Path, n: int, budgets: list[float]) -> Path:
    """Ingest the digits once and save the guide; returns the data root."""
    raw = work / "raw"
    write_digits(raw, n)
    os.environ["LWISE_DATA"], os.environ["LWISE_CACHE"] = str(work / "data"), str(work / "cache-ingest")
    for seed, name in enumerate(("guide", "observer")):
        torch.manual_seed(seed)
        net, stages = create_net("smallcnn-tiny", 10, 1)
        save_model(Classifier(net, stages, [0.3], [0.3], [str(i) for i in range(10)], "smallcnn-tiny"),
                   work / "data" / "c" / "models" / name)
    Ingest(params(raw, budgets, 1), "c").run()
    return raw


def enhance_once(raw: Path, work: Path, budgets: list[float], executor: str, actors: int, tag: str,
                 part: slice = slice(None), threads: int = 1) -> tuple[float, float, bytes]:
    """Seconds to compute every image (of ``part``) at every budget into a fresh cache, the
    seconds after start-up (Ray: from the first batch begun to the last done; else the same),
    and a digest of the results. ``threads``: torch threads of this process (local executor)."""
    torch.set_num_threads(threads)
    os.environ["LWISE_DATA"], os.environ["LWISE_CACHE"] = str(work / "data"), str(work / f"cache-{tag}")
    stage = Enhance(params(raw, budgets, actors), "c", executor=executor)
    stage.prepare()
    rows = pq.read_table(shard_paths(work / "data" / "c" / "images")[0], columns=["id", "label", "split"])
    rows = rows.take(list(range(rows.num_rows))[part])
    start = time.perf_counter()
    items = stage.ensure_rows(rows, "guide", "bench")
    seconds = time.perf_counter() - start
    runs = stage.ray_units
    steady = max(r.ended for r in runs) - min(r.began for r in runs) if runs else seconds
    keys = [it.key for its in items.values() for it in its]
    return seconds, steady, hashlib.sha256(repr(stage.lookup(keys, ["image"]).column("image").to_pylist()).encode()).digest()


def half(raw: Path, work: Path, budgets: list[float], index: int, tag: str) -> tuple[float, float]:
    """One of two independent processes: the local executor, one thread, every other image;
    (when it finished, seconds of work after its start-up)."""
    steady = enhance_once(raw, work, budgets, "local", 1, f"{tag}-{index}", slice(index, None, 2))[0]
    return time.time(), steady


def two_processes(raw: Path, work: Path, budgets: list[float], tag: str) -> tuple[float, float]:
    """Seconds from starting both processes until both are done, and the slower one's seconds
    after its start-up."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    began = time.time()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        done = list(pool.map(half, [raw] * 2, [work] * 2, [budgets] * 2, [0, 1], [tag] * 2))
    return max(d for d, _ in done) - began, max(s for _, s in done)


def one_round(raw: Path, work: Path, budgets: list[float], r: int) -> dict[str, tuple[float, float, bytes]]:
    """Every configuration once, in an order that rotates from round to round."""
    runs: dict[str, Any] = {
        "local 1 thread": lambda: enhance_once(raw, work, budgets, "local", 1, f"l1-{r}"),
        "local 2 threads": lambda: enhance_once(raw, work, budgets, "local", 1, f"l2-{r}", threads=2),
        "ray 1 actor": lambda: enhance_once(raw, work, budgets, "ray", 1, f"r1-{r}"),
        "ray 2 actors": lambda: enhance_once(raw, work, budgets, "ray", 2, f"r2-{r}"),
        "2 local processes": lambda: (*two_processes(raw, work, budgets, f"p-{r}"), b""),
    }
    names = list(runs)
    names = names[r % len(names):] + names[: r % len(names)]
    return {name: runs[name]() for name in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1792)
    ap.add_argument("--budgets", type=float, nargs="+", default=[5.0, 10.0, 15.0, 20.0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.images < 1 or args.repeats < 1:
        ap.error("--images and --repeats must be at least 1")
    import ray

    batch = params(Path("raw"), args.budgets, 1).corpus("c").enhance.batch_size
    with tempfile.TemporaryDirectory(prefix="lwise-bench-ray-") as tmp:
        work = Path(tmp)
        raw = prepare(work, args.images, args.budgets)
        ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
        try:
            rounds = [one_round(raw, work, args.budgets, r) for r in range(args.repeats)]
        finally:
            ray.shutdown()
    report(rounds, args.images, batch)


def report(rounds: list[dict[str, tuple[float, float, bytes]]], n: int, batch: int) -> None:
    """Median images/s per configuration, end to end and after start-up, and the ratios."""
    end = {k: n / statistics.median(r[k][0] for r in rounds) for k in rounds[0]}
    after = {k: n / statistics.median(r[k][1] for r in rounds) for k in rounds[0]}
    print(f"{n} images, {math.ceil(n / batch)} batches of {batch}; median of {len(rounds)} round(s), images/s:")
    print(f"  {'':<46} {'end to end':>10} {'after start-up':>15}")
    for k in end:
        print(f"  {k:<46} {end[k]:10.1f} {after[k]:15.1f}")
    ratios = {"ceiling: 2 processes / local 1 thread": ("2 local processes", "local 1 thread"),
              "ray scaling: 2 actors / 1 actor (goal >= 1.7)": ("ray 2 actors", "ray 1 actor"),
              "ray / local at 1 core (goal >= 0.85)": ("ray 1 actor", "local 1 thread"),
              "ray / local at 2 cores (goal >= 0.85)": ("ray 2 actors", "local 2 threads")}
    for label, (top, bottom) in ratios.items():
        print(f"  {label:<46} {end[top] / end[bottom]:9.2f}x {after[top] / after[bottom]:14.2f}x")
    digests = {r[k][2] for r in rounds for k in r if r[k][2]}
    print(f"same results on every executor: {len(digests) == 1}")


if __name__ == "__main__":
    main()
