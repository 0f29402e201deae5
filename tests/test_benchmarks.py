"""Every benchmark runs end to end on a tiny workload and prints its headline figure."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

TINY = {
    "bench_metamers.py": (["--n", "2", "--steps", "2", "--repeats", "1", "--threads", "1"],
                          "ratio, each at its best thread count"),
    "bench_enhance.py": (["--n", "2", "--size", "16", "--repeats", "1", "--threads", "1"],
                         "time ratio shared/independent"),
    "bench_train.py": (["--n", "16", "--size", "16", "--batch-size", "8", "--steps", "1", "--repeats", "1",
                        "--threads", "1"], "PGD/standard cost ratio"),
    "bench_score.py": (["--n", "16", "--batch", "8", "--repeats", "1", "--workers", "0"],
                       "ratio scoring / model-only"),
    "bench_ingest.py": (["--images", "12"], "workers=1"),
    "bench_ray.py": (["--images", "80", "--budgets", "0.5", "--repeats", "1"], "same results on every executor: True"),
    "bench_fingerprint.py": (["--files", "30"], "no-op dvc repro:"),
    "bench_incremental.py": (["--images", "60", "--add", "0.1", "--budgets", "0.5"],
                             "outputs byte-identical to a clean build: True"),
    "bench_realsize.py": (["--images", "16", "--arch", "resnet18", "--size", "64", "--budgets", "0.5", "1",
                           "--steps", "2", "--layers", "layer1", "--null-pairs", "6", "--rounds", "1"],
                          "a process that only loaded the model peaked at"),
}


def test_every_benchmark_is_listed():
    assert sorted(TINY) == sorted(p.name for p in BENCHMARKS.glob("bench_*.py"))


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_and_reports(script, tmp_path):
    args, headline = TINY[script]
    run = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert headline in run.stdout, run.stdout
    if script == "bench_metamers.py":  # the external reference, or a one-line skip without it
        have = importlib.util.find_spec("plenoptic") is not None
        assert ("plenoptic Metamer (Adam, one target at a time)" if have else "plenoptic is not installed") in run.stdout
