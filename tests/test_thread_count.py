"""The default build gives the same bytes whatever the machine's thread count (issue 23, item 1)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from lwise_build.config.load import parse_params
from lwise_build.stages.train.stage import Train

ROOT = Path(__file__).resolve().parents[1]


def lock_outputs(lock: Path) -> dict[str, str]:
    """path -> md5 of every stage output in a dvc.lock."""
    stages = yaml.safe_load(lock.read_text(encoding="utf-8"))["stages"]
    return {o["path"]: o["md5"] for s in stages.values() for o in s.get("outs") or ()}


def default_project(where: Path) -> Path:
    """A fresh git + DVC project holding this checkout's dvc.yaml, params.yaml and package."""
    where.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy(ROOT / name, where)
    shutil.copytree(ROOT / "lwise_build", where / "lwise_build", ignore=shutil.ignore_patterns("__pycache__"))
    for cmd in ("git init -q", "dvc init -q", "dvc config core.analytics false"):
        subprocess.run(cmd.split(), cwd=where, check=True, capture_output=True)
    return where


@pytest.mark.slow
def test_default_build_md5s_do_not_depend_on_the_thread_count(tmp_path: Path) -> None:
    """`dvc repro` of params.yaml with OMP_NUM_THREADS=1 and =2 (separate projects and caches,
    run side by side to halve the wall time): every output md5 in dvc.lock is equal."""
    runs = {}
    for threads in ("1", "2"):
        proj = default_project(tmp_path / f"threads-{threads}")
        env = {**{k: v for k, v in os.environ.items() if k != "LWISE_DATA"}, "OMP_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads, "LWISE_CACHE": str(tmp_path / f"cache-{threads}")}
        log = open(tmp_path / f"repro-{threads}.log", "w")  # noqa: SIM115 - closed below
        runs[threads] = (proj, log, subprocess.Popen(["dvc", "repro"], cwd=proj, env=env, stdout=log,
                                                     stderr=subprocess.STDOUT))
    for threads, (_, log, proc) in runs.items():
        proc.wait()
        log.close()
        assert proc.returncode == 0, (tmp_path / f"repro-{threads}.log").read_text()[-3000:]
    one, two = (lock_outputs(runs[t][0] / "dvc.lock") for t in ("1", "2"))
    assert len(one) > 30 and set(one) == set(two)
    assert {p: (one[p], two[p]) for p in one if one[p] != two[p]} == {}


def test_train_weights_do_not_depend_on_the_ambient_thread_count(tiny_images) -> None:
    """Trained under torch.set_num_threads(1) and (3): the same weights (the recipe's threads
    govern), the ambient count is restored, and config.json records what a rebuild must match."""
    model = {"arch": "smallcnn-tiny", "corpus": "toy", "in_channels": 1,
             "train": {"epochs": 1, "batch_size": 32, "optimizer": "adam", "eval_steps": 1, "threads": 2}}
    params = parse_params({"seed": 0, "device": "cpu", "models": {"m": model},
                           "corpora": {"toy": {"ingest": {"source": "builtin:digits", "image_size": 16}}}})
    weights, before = [], torch.get_num_threads()
    for ambient in (1, 3):
        torch.set_num_threads(ambient)
        folder = Train(params, "toy", "m").run()
        assert torch.get_num_threads() == ambient
        weights.append((folder / "model.safetensors").read_bytes())
    torch.set_num_threads(before)
    assert weights[0] == weights[1]
    built = json.loads((folder / "config.json").read_text())["built_with"]
    assert built == {"torch": torch.__version__, "machine": platform.machine(), "device": "cpu", "threads": 2,
                     "cpu_isa": torch.backends.cpu.get_cpu_capability()}
