"""Ingest throughput: images/s and peak RSS on 5,000 synthetic 256-px JPEGs, 1 worker vs all cores.

    python benchmarks/bench_ingest.py [--images 5000]

Each configuration runs in a fresh process so peak RSS (parent + decoding workers) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image


def make_corpus(root: Path, n: int) -> None:
    """``n`` 256x256 JPEGs in 10 class folders (smooth noise so JPEG sizes are realistic)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"class{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((256, 256), Image.Resampling.BICUBIC).save(d / f"{i}.jpg", quality=90)


def one_run(folder: str, workers: int, work: str) -> None:
    """Child process: ingest once and print JSON with seconds and peak RSS (MiB)."""
    from lwise_build.device import configure_process

    configure_process()  # as `lwise-build ingest` runs
    from lwise_build.config.load import load_params
    from lwise_build.stages.ingest.stage import Ingest

    params = Path(work) / "params.yaml"
    params.write_text(yaml.safe_dump({"corpora": {"bench": {"ingest": {
        "source": f"imagefolder:{folder}", "image_size": 224, "workers": workers}}}}))
    os.environ["LWISE_DATA"] = str(Path(work) / "data")
    os.environ["LWISE_CACHE"] = str(Path(work) / "cache")  # its own unit cache: nothing reused
    t0 = time.perf_counter()
    Ingest(load_params(params), "bench").run()
    secs = time.perf_counter() - t0
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
           + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(json.dumps({"seconds": secs, "peak_rss_mib": rss}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        one_run(args.child[0], int(args.child[1]), args.child[2])
        return
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "corpus"
        make_corpus(folder, args.images)
        results = {}
        for workers in (1, cores):
            work = tempfile.mkdtemp(dir=tmp)
            out = subprocess.run([sys.executable, __file__, "--child", str(folder), str(workers), work],
                                 capture_output=True, text=True, check=True).stdout
            results[workers] = json.loads(out.strip().splitlines()[-1])
    base = results[1]["seconds"]
    print(f"ingest of {args.images} 256-px JPEGs -> 224-px canonical PNGs")
    for workers, r in results.items():
        print(f"  workers={workers:<3} {args.images / r['seconds']:8.0f} images/s   "
              f"peak RSS {r['peak_rss_mib']:7.0f} MiB   speed-up x{base / r['seconds']:.2f}")


if __name__ == "__main__":
    main()
