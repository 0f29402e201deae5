"""The Ray executor against the local one: same work (enhancing a digits corpus), images/s.

    python benchmarks/bench_ray.py [--images 1797] [--budgets 5 10 15 20]

Prints, in one run: the local executor at 1 and 2 torch threads, Ray with 1 actor and with 2
actors (one torch thread each), the scaling ratio 2 actors / 1 actor (goal >= 1.7 on 2 cores)
and Ray's throughput against local at equal cores (goal >= 0.85), and whether all four wrote
the same cached results. The machine's own ceiling for the same work comes with it: two
independent single-threaded processes, each enhancing half the images at once (what perfect
scale-out on these cores would give). Ray runs on 127.0.0.1 and is shut down at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

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
from lwise_build.stages.enhance import Enhance  # noqa: E402
from lwise_build.stages.ingest import Ingest  # noqa: E402


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
                 part: slice = slice(None)) -> tuple[float, bytes]:
    """Seconds to compute every image (of ``part``) at every budget into a fresh cache, and a
    digest of the results."""
    os.environ["LWISE_DATA"], os.environ["LWISE_CACHE"] = str(work / "data"), str(work / f"cache-{tag}")
    stage = Enhance(params(raw, budgets, actors), "c", executor=executor)
    stage.prepare()
    rows = pq.read_table(shard_paths(work / "data" / "c" / "images")[0], columns=["id", "label", "split"])
    rows = rows.take(list(range(rows.num_rows))[part])
    start = time.perf_counter()
    items = stage.ensure_rows(rows, "guide", "bench")
    seconds = time.perf_counter() - start
    keys = [it.key for its in items.values() for it in its]
    return seconds, stage.lookup(keys, ["image"]).column("image").to_pylist().__repr__().encode()


def half(raw: Path, work: Path, budgets: list[float], index: int) -> float:
    """One of two independent processes: the local executor, one thread, every other image."""
    torch.set_num_threads(1)
    return enhance_once(raw, work, budgets, "local", 1, f"p{index}", slice(index, None, 2))[0]


def two_processes(raw: Path, work: Path, budgets: list[float]) -> float:
    """Seconds until both halves are done when run at once (each timed without its start-up)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        return max(pool.map(half, [raw, raw], [work, work], [budgets, budgets], [0, 1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1797)
    ap.add_argument("--budgets", type=float, nargs="+", default=[5.0, 10.0, 15.0, 20.0])
    args = ap.parse_args()
    import ray

    with tempfile.TemporaryDirectory(prefix="lwise-bench-ray-") as tmp:
        work = Path(tmp)
        raw = prepare(work, args.images, args.budgets)
        runs = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs[f"local {threads} thread(s)"] = enhance_once(raw, work, args.budgets, "local", 1, f"l{threads}")
        ceiling = two_processes(raw, work, args.budgets)
        ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
        try:
            for actors in (1, 2):
                runs[f"ray {actors} actor(s)"] = enhance_once(raw, work, args.budgets, "ray", actors, f"r{actors}")
        finally:
            ray.shutdown()
    n = args.images
    for name, (secs, _) in runs.items():
        print(f"  {name:<20} {secs:7.2f} s  {n / secs:8.1f} images/s")
    print(f"  {'2 local processes':<20} {ceiling:7.2f} s  {n / ceiling:8.1f} images/s  (half each, at once)")
    rate = {k: n / v[0] for k, v in runs.items()}
    print(f"this machine's ceiling, 2 processes / 1: {n / ceiling / rate['local 1 thread(s)']:.2f}x")
    print(f"ray scaling 2 actors / 1 actor: {rate['ray 2 actor(s)'] / rate['ray 1 actor(s)']:.2f}x (goal >= 1.7)")
    print(f"ray / local at 1 core: {rate['ray 1 actor(s)'] / rate['local 1 thread(s)']:.2f}; "
          f"at 2 cores: {rate['ray 2 actor(s)'] / rate['local 2 thread(s)']:.2f} (goal >= 0.85)")
    print(f"same results on every executor: {len({d for _, d in runs.values()}) == 1}")


if __name__ == "__main__":
    main()
