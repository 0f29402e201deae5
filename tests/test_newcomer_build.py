"""The README's "Your own data" steps, followed literally on scikit-image's lfw_subset, build the
corpus through DVC (only its stages), the result is readable (plot fields, headline metrics with
every null explained, plain Parquet tables) and publishes right after a git commit."""

from __future__ import annotations

import json

import pytest
from support.newcomer import (
    assert_plain_parquet,
    declared_plots,
    lwise,
    project,
    readme_steps,
    sh,
    with_readme_corpus,
)

from lwise_build.stages.base import unexplained_nulls


@pytest.mark.slow
def test_readme_steps_build_the_corpus_and_publish_after_a_commit(tmp_path, monkeypatch):
    monkeypatch.setenv("LWISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LWISE_DATA", raising=False)
    proj = project(tmp_path, with_readme_corpus())
    for cmd in ("git init -q -b main", "git config user.email t@t", "git config user.name t", "dvc init -q",
                "dvc config core.analytics false"):
        sh(cmd, proj)
    _, commands = readme_steps()
    for cmd in commands:  # literally the README's step 3
        sh(cmd, proj)
    data = proj / "data"
    assert sorted(p.name for p in data.iterdir()) == ["faces"]  # the digits default was not built
    faces = data / "faces"
    for table in ("images", "scores", "curricula", "metamers", *(f"enhanced/{p.name}" for p in (faces / "enhanced").iterdir())):
        assert_plain_parquet(faces / table)
    # plots: every declared x and y exists in every data file
    for path, x, y in declared_plots("faces", ["faces-robust", "faces-standard"]):
        files = [proj / path] if path.suffix else sorted((proj / path).glob("*.csv"))
        assert files, path
        for f in files:
            header = f.read_text().splitlines()[0].split(",")
            assert x in header and y in header, (f, x, y, header)
    # metrics: headline-sized rows, every null explained, details beside them
    for f in (faces / "metrics").rglob("*.json"):
        values = json.loads(f.read_text())
        assert unexplained_nulls(values) == [], f
        if "details" not in f.parts:
            assert len(values) <= 12 and all(not isinstance(v, (dict, list)) for v in values.values()), f
    robust = json.loads((faces / "metrics" / "score" / "robust.json").read_text())
    assert "beats_standard" in robust and "auc" in robust
    assert json.loads((faces / "metrics" / "details" / "score.json").read_text())["basis"] == "humans"
    width = max(len(line) for line in sh("dvc metrics show", proj).stdout.splitlines())
    assert width <= 200, width
    # publish after a commit: no extra repro, the exported folder does not record git
    sh("git add -A && git commit -q -m build", proj)
    bare = tmp_path / "remote.git"
    sh(f"git init -q --bare {bare}", proj)
    res = lwise("publish", "faces", "--to", str(bare), cwd=proj)
    assert res.returncode == 0 and "published my-lab/faces v0.1.0" in res.stdout, res.stderr
    head = sh("git rev-parse HEAD", proj).stdout.strip()
    pushed = json.loads(sh(f"git --git-dir={bare} show v0.1.0:provenance.json", proj).stdout)
    assert pushed["git"]["commit"] == head and pushed["git"]["dirty"] is False
    assert json.loads((faces / "hub" / "provenance.json").read_text())["git"] is None
    assert sh("git status --porcelain", proj).stdout == ""
    again = lwise("publish", "faces", "--to", str(bare), cwd=proj)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    print(f"\ndvc metrics show: {width} characters wide")


