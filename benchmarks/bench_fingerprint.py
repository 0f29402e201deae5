"""What does a no-op `dvc repro` cost over a large image folder, now that DVC sees the source?

    python benchmarks/bench_fingerprint.py [--files 10000] [--size 64]

Writes ``--files`` PNGs into class folders, builds a project whose one corpus is that folder
(`imagefolder:`, ingest only), runs `dvc repro` once, then times a second, no-op `dvc repro`
(the `resolve` stage re-fingerprints the folder from its stat cache, nothing else runs). The
reference, measured in the same run, is the fingerprint with a cold stat cache: every file read
and hashed, as a naive snapshot stage would do on every run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def write_folder(folder: Path, n: int, size: int) -> None:
    """``n`` noisy RGB PNGs of ``size`` px in 10 class folders (incompressible, like photos)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        path = folder / f"class{i % 10}" / f"{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, compress_level=1)


def make_project(proj: Path, raw: Path) -> None:
    """The repository's pipeline over one image-folder corpus that declares only ``ingest``."""
    proj.mkdir()
    shutil.copy(ROOT / "dvc.yaml", proj)
    shutil.copytree(ROOT / "lwise_build", proj / "lwise_build", ignore=shutil.ignore_patterns("__pycache__"))
    corpus = {"ingest": {"source": f"imagefolder:{raw}", "image_size": 16}}
    (proj / "params.yaml").write_text(yaml.safe_dump({"device": "cpu", "models": {}, "corpora": {"big": corpus}}))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        run(cmd, proj)


def run(cmd: list[str], cwd: Path) -> float:
    """Seconds ``cmd`` takes (it must succeed)."""
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lwise-bench-fp-") as tmp:
        work = Path(tmp)
        os.environ["LWISE_CACHE"] = str(work / "cache")
        os.environ.pop("LWISE_DATA", None)
        write_folder(work / "raw", args.files, args.size)
        make_project(work / "proj", work / "raw")
        first = run(["dvc", "repro"], work / "proj")
        noop = min(run(["dvc", "repro"], work / "proj") for _ in range(2))
        resolve = [sys.executable, "-m", "lwise_build", "resolve", "big"]
        warm = min(run(resolve, work / "proj") for _ in range(2))
        shutil.rmtree(work / "cache" / "fingerprints")
        cold = run(resolve, work / "proj")
        megabytes = sum(p.stat().st_size for p in (work / "raw").rglob("*.png")) / 2**20
    print(f"image folder: {args.files} PNGs of {args.size} px ({megabytes:.0f} MiB); first dvc repro {first:.1f} s")
    print(f"no-op dvc repro: {noop:.2f} s")
    print(f"resolve (fingerprint + resolved params): stat cache {warm:.2f} s, cold (every file hashed) {cold:.2f} s")
    print(f"ratio no-op fingerprint / hashing every file: {warm / cold:.3f}")


if __name__ == "__main__":
    main()
