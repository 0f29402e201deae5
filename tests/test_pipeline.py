"""End to end: `dvc repro` builds every stage of a tiny digits project; a second repro does nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "seed": 0,
    "device": "cpu",
    "models": {
        name: {
            "arch": "smallcnn-tiny", "corpus": "digits", "in_channels": 1, "input_size": 16,
            "mean": [0.3], "std": [0.35],
            "train": {"epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 0.01, "eval_steps": 2,
                      **extra},
        }
        for name, extra in {
            "digits-robust": {"adversarial": {"norm": "l2", "eps": 0.5, "steps": 1}},
            "digits-standard": {},
        }.items()
    },
    "corpora": {
        "digits": {
            "ingest": {"source": "builtin:digits", "image_size": 16, "grayscale": True},
            "score": {"models": {"robust": "digits-robust", "standard": "digits-standard"}},
            "enhance": {"model": "digits-robust", "budgets": [0.5, 1], "observers": ["digits-standard"],
                        "metrics_sample": 40, "grid_images": 3},
            "curricula": {
                "lwise": {"preset": "lwise", "budgets": [1, 1, 0.5, 0.5, 0.5, 0.5],
                          "train_trials_per_class": 1, "test_trials_per_class": 1, "sequences": 2},
                "control": {"preset": "control", "train_trials_per_class": 1, "test_trials_per_class": 1,
                            "sequences": 2},
            },
            "metamers": {"generators": ["digits-robust", "digits-standard"], "per_class": 1,
                         "schedule": "test", "null_pairs": 20},
            "experiment": {"catch_per_block": 2},  # dvc needs every params section it tracks
            "export": {"repo_id": "test/digits", "version": "0.0.1"},
            "report": {"sample": 30},
        }
    },
}


def sh(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    res = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**os.environ})
    assert res.returncode == 0, f"{' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.mark.slow
def test_dvc_repro_builds_everything(tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(ROOT / "dvc.yaml", proj)
    shutil.copytree(ROOT / "lwise_build", proj / "lwise_build", ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "params.yaml").write_text(yaml.safe_dump(TINY))
    (proj / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    monkeypatch.setenv("LWISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LWISE_DATA", raising=False)
    sh("git", "init", "-q", cwd=proj)
    sh("dvc", "init", "-q", cwd=proj)
    sh("dvc", "config", "core.analytics", "false", cwd=proj)
    sh("dvc", "repro", cwd=proj)
    data = proj / "data" / "digits"
    for stage in ("images", "scores", "enhanced/eps=0.5", "enhanced/eps=1", "curricula", "metamers"):
        assert list((data / stage).glob("data-*.parquet")), stage
    assert (data / "hub" / "README.md").is_file() and (data / "report" / "index.html").is_file()
    assert (data / "experiment" / "index.html").is_file() and (data / "hub" / "experiment" / "index.html").is_file()
    metrics = sh("dvc", "metrics", "show", "--json", cwd=proj).stdout
    assert "robust" in metrics
    again = sh("dvc", "repro", cwd=proj)
    assert "didn't change" in again.stdout or "up to date" in again.stdout
    status = sh("dvc", "status", cwd=proj).stdout
    assert "up to date" in status or status.strip() == ""
