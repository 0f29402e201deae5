"""The newcomer's project: the README's own-data steps and params, a fresh project folder with
the faces manifest, and checks that a built result is readable (plain Parquet, declared plots)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .lfw import write_manifest

ROOT = Path(__file__).resolve().parents[2]  # the repository


def readme_steps() -> tuple[dict, list[str]]:
    """The README's own-corpus params (the YAML block naming faces-robust) and its commands."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Your own data"):text.index("## Difficulty scores")]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    params = next(yaml.safe_load(body) for lang, body in blocks if lang == "yaml" and "faces-robust:" in body)
    commands = [line.split("#")[0].strip() for lang, body in blocks if lang == "bash" for line in body.splitlines()]
    return params, [c for c in commands if c.startswith(("lwise-build check", "dvc repro"))]


def sh(cmd: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    """Run a shell command in ``cwd``; with ``ok``, fail the test with its output unless it succeeds."""
    res = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True, env={**os.environ})
    if ok:
        assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def lwise(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m lwise_build args`` in ``cwd``, output captured."""
    return subprocess.run([sys.executable, "-m", "lwise_build", *args], cwd=cwd, capture_output=True, text=True)


def project(tmp_path: Path, params: dict) -> Path:
    """A fresh project: dvc.yaml, the package, .gitignore, params, the faces manifest, git + dvc."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(ROOT / name, proj)
    shutil.copytree(ROOT / "lwise_build", proj / "lwise_build", ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_manifest(proj / "data-raw" / "faces", "faces.csv")
    return proj


def with_readme_corpus() -> dict:
    """The default params.yaml with the README's corpus and models added (step 2)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    extra, _ = readme_steps()
    params["models"].update(extra["models"])
    params["corpora"].update(extra["corpora"])
    return params


def assert_plain_parquet(folder: Path, rows: int | None = None) -> None:
    """pandas, pyarrow.dataset and datasets all read the folder as one table."""
    import datasets
    import pandas as pd
    import pyarrow.dataset as ds

    n = len(pd.read_parquet(folder))
    assert ds.dataset(folder, format="parquet").count_rows() == n
    loaded = datasets.load_dataset("parquet", data_dir=str(folder), split="train",
                                   cache_dir=str(folder.parent.parent.parent / ".hf-cache"))
    assert loaded.num_rows == n and (rows is None or n == rows), folder


def declared_plots(corpus: str, models: list[str]) -> list[tuple[Path, str, str]]:
    """(path, x, y) of every plot dvc.yaml declares for ``corpus``, foreach filled in."""
    out = []
    for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values():
        keys = [(m, {"corpus": corpus}) for m in models] if "models" in str(stage.get("foreach")) else [(corpus, {})]
        for entry in stage["do"].get("plots", []):
            for path, props in entry.items():
                for key, item in keys:
                    filled = path.replace("${key}", key).replace("${item.corpus}", item.get("corpus", key))
                    out.append((Path(filled), props["x"], props["y"]))
    return out
