"""The default build gives the same bytes whatever the machine's thread count (issue 23, item 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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
