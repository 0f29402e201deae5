"""End to end: `dvc repro` builds every stage of a tiny digits project; a second repro does nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
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
            "experiment": {"catch_per_block": 2},  # the jsPsych experiment of both curricula
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
    assert_hub_documents(data / "hub")
    metrics = sh("dvc", "metrics", "show", "--json", cwd=proj).stdout
    assert "robust" in metrics
    again = sh("dvc", "repro", cwd=proj)
    assert "didn't change" in again.stdout or "up to date" in again.stdout
    status = sh("dvc", "status", cwd=proj).stdout  # only the source/params snapshot, which always runs
    assert status.split() == ["resolve@digits:", "always", "changed"], status


def assert_hub_documents(hub: Path) -> None:
    """croissant.json: mlcroissant reads every record set and each equals its config's Parquet rows;
    the datasheet quotes the build's own reports; CITATION.cff is valid CFF 1.2.0."""
    from support.croissant_rows import croissant_records, parquet_records

    from lwise_build.hub.citation import validate_cff

    records, rows = croissant_records(hub), parquet_records(hub)
    assert set(records) == {"labels", *rows} and {"pairs-0.5", "pairs-1"} <= set(rows)
    for name, expected in rows.items():
        assert records[name] == expected, name
    card = (hub / "README.md").read_text()
    assert "Cleaning: of 1797 source files, 0 were unreadable and skipped and 0 exact duplicates dropped" in card
    assert "ROC-AUC of the gt logit for other models' correctness (observers), not humans: `robust` " in card
    validate_cff((hub / "CITATION.cff").read_text())


def make_project(tmp_path: Path, params: dict) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(ROOT / "dvc.yaml", proj)
    shutil.copytree(ROOT / "lwise_build", proj / "lwise_build", ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    (proj / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    sh("git", "init", "-q", cwd=proj)
    sh("dvc", "init", "-q", cwd=proj)
    sh("dvc", "config", "core.analytics", "false", cwd=proj)
    return proj


def ran(res: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", res.stdout))


@pytest.mark.slow
def test_source_changes_rebuild_ingest_and_optional_sections(tmp_path, monkeypatch):
    """An image folder corpus with only ingest + score builds; adding, editing and removing an
    image each show in `lwise-build status` and rebuild ingest; no change rebuilds nothing."""
    from support.folders import make_folder, save_img

    raw = make_folder(tmp_path / "raw", per_class=6)
    model = {"arch": "smallcnn-tiny", "corpus": "shapes", "input_size": 16,
             "train": {"epochs": 1, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "eval_steps": 1}}
    params = {"models": {"shapes-m": model},
              "corpora": {"shapes": {"ingest": {"source": f"imagefolder:{raw}", "image_size": 16,
                                                "splits": {"train": 0.5, "validation": 0.25, "test": 0.25}},
                                     "score": {"models": {"robust": "shapes-m"}}}}}
    monkeypatch.setenv("LWISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LWISE_DATA", raising=False)
    proj = make_project(tmp_path, params)
    first = sh("dvc", "repro", cwd=proj)
    assert {"ingest@shapes", "score@shapes", "export@shapes", "report@shapes"} <= ran(first)
    data = proj / "data" / "shapes"
    assert list((data / "scores").glob("data-*.parquet")) and (data / "hub" / "README.md").is_file()
    assert ran(sh("dvc", "repro", cwd=proj)) == {"resolve@shapes"}  # unchanged: nothing else runs

    def change(edit) -> None:
        edit()
        status = sh(sys.executable, "-m", "lwise_build", "status", cwd=proj).stdout
        assert "ingest@shapes" in status, status
        assert "ingest@shapes" in ran(sh("dvc", "repro", "ingest@shapes", cwd=proj))

    change(lambda: save_img(raw / "cat" / "extra.png", (10, 90, 10)))
    change(lambda: save_img(raw / "cat" / "0.png", (250, 250, 0), size=(44, 30)))
    change(lambda: (raw / "cat" / "extra.png").unlink())
    status = sh(sys.executable, "-m", "lwise_build", "status", cwd=proj).stdout
    assert "ingest@shapes" not in status
