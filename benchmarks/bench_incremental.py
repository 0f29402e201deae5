"""Incremental builds: after adding 5% images, what do score and enhance cost, and do the outputs
equal a clean build of the final corpus?

    python benchmarks/bench_incremental.py [--images 1797] [--add 0.05] [--budgets 5 10 15 20]

The corpus is scikit-learn's digits written as an image folder (32 px), scored and enhanced by
fixed (imported) models, so nothing but the new images changes. Prints the stage time ratios
incremental / first build (goal: enhance <= 0.15) and whether every output byte matches a clean
build in a fresh cache.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
import torch  # noqa: E402
import workloads  # noqa: F401  first: sets the process up as the CLI does
from PIL import Image  # noqa: E402

from lwise_build.config.load import parse_params  # noqa: E402
from lwise_build.models.classifier import Classifier  # noqa: E402
from lwise_build.models.registry import create_net  # noqa: E402
from lwise_build.models.store import save_model  # noqa: E402
from lwise_build.stages.enhance.stage import Enhance  # noqa: E402
from lwise_build.stages.ingest.stage import Ingest  # noqa: E402
from lwise_build.stages.score.stage import Score  # noqa: E402

OUTPUTS = ("scores", "enhanced", "metrics")


def write_digits(folder: Path, n: int) -> list[Path]:
    """The first ``n`` digits as 8-bit PNGs in class folders; returns their paths."""
    from sklearn.datasets import load_digits

    d = load_digits()
    paths = []
    for i in range(min(n, len(d.target))):
        path = folder / str(d.target[i]) / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(d.images[i] * 255 / 16).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def params(raw: Path, budgets: list[float]):
    model = {"arch": "smallcnn-tiny", "corpus": "c", "in_channels": 1, "checkpoint": "imported.safetensors"}
    corpus = {"ingest": {"source": f"imagefolder:{raw}", "image_size": 32, "grayscale": True},
              "score": {"models": {"robust": "guide", "standard": "observer"}},
              "enhance": {"model": "guide", "budgets": budgets, "observers": ["observer"], "metrics_sample": 50}}
    return parse_params({"seed": 0, "device": "cpu", "corpora": {"c": corpus},
                         "models": {"guide": model, "observer": dict(model)}})


def build(root: Path, raw: Path, budgets: list[float]) -> dict[str, float]:
    """Ingest, score and enhance into ``root`` (its own data and cache); seconds per stage."""
    os.environ["LWISE_DATA"], os.environ["LWISE_CACHE"] = str(root / "data"), str(root / "cache")
    for seed, name in enumerate(("guide", "observer")):
        folder = root / "data" / "c" / "models" / name
        if not folder.is_dir():
            torch.manual_seed(seed)
            net, stages = create_net("smallcnn-tiny", 10, 1)
            save_model(Classifier(net, stages, [0.3], [0.3], [str(i) for i in range(10)], "smallcnn-tiny"), folder)
    out = {}
    for cls in (Ingest, Score, Enhance):
        t0 = time.perf_counter()
        cls(params(raw, budgets), "c").run()
        out[cls.name] = time.perf_counter() - t0
    return out


def snapshot(root: Path) -> dict[str, bytes]:
    data = root / "data" / "c"
    return {str(p.relative_to(data)): p.read_bytes() for d in OUTPUTS for p in sorted((data / d).rglob("*"))
            if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1797)
    ap.add_argument("--add", type=float, default=0.05, help="fraction of images added for the rebuild")
    ap.add_argument("--budgets", type=float, nargs="+", default=[5.0, 10.0, 15.0, 20.0])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lwise-bench-inc-") as tmp:
        work, raw = Path(tmp), Path(tmp) / "raw"
        paths = write_digits(raw, args.images)
        held = paths[:: max(1, round(1 / args.add))]  # spread over classes
        kept = {p: p.read_bytes() for p in held}
        for p in held:
            p.unlink()
        first = build(work / "inc", raw, args.budgets)
        for p, data in kept.items():
            p.write_bytes(data)
        again = build(work / "inc", raw, args.budgets)
        build(work / "clean", raw, args.budgets)
        inc, ref = snapshot(work / "inc"), snapshot(work / "clean")
        same = sorted(inc) == sorted(ref) and all(inc[k] == ref[k] for k in ref)
    n0 = len(paths) - len(held)
    print(f"corpus: {n0} images, then +{len(held)} ({len(held) / n0:.1%}); budgets {args.budgets}")
    for stage in ("ingest", "score", "enhance"):
        print(f"  {stage:<8} first {first[stage]:7.2f} s   incremental {again[stage]:6.2f} s   "
              f"ratio {again[stage] / first[stage]:.3f}")
    print(f"enhance ratio incremental/first: {again['enhance'] / first['enhance']:.3f} (goal <= 0.15)")
    print(f"score ratio incremental/first: {again['score'] / first['score']:.3f}")
    print(f"outputs byte-identical to a clean build: {same}")


if __name__ == "__main__":
    main()
