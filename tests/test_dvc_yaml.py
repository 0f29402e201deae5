"""dvc.yaml lists, for every stage, every project module its command runs (derived from the
imports, tools/import_graph.py), so editing any of them makes ``dvc status`` report the stage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from import_graph import ROOT, STAGES, ImportGraph, covered


def code_deps(dvc: dict, stage: str) -> list[str]:
    return [d for d in dvc["stages"][stage]["do"]["deps"] if d.startswith("lwise_build")]


def missing(graph: ImportGraph, dvc: dict, stage: str) -> list[str]:
    deps = code_deps(dvc, stage)
    return sorted(p for p in graph.stage_files(stage) if not covered(p, deps))


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "resolve"])  # resolve always runs
def test_every_module_a_stage_runs_is_a_dep(stage: str) -> None:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert missing(ImportGraph(), dvc, stage) == [], "run `python tools/update_dvc_deps.py`"
    for dep in code_deps(dvc, stage):
        assert (ROOT / dep).exists(), f"{stage}: dep {dep} does not exist"


def test_a_removed_dep_is_reported() -> None:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    deps = dvc["stages"]["score"]["do"]["deps"]
    deps.remove("lwise_build/io/tables.py")
    assert missing(ImportGraph(), dvc, "score") == ["lwise_build/io/tables.py"]


def test_a_new_import_is_reported(tmp_path: Path) -> None:
    """A module that starts importing another module pulls that module into its stages' deps."""
    graph = ImportGraph()
    before = graph.stage_files("ingest")
    assert "lwise_build/io/figures.py" not in before
    graph.edges["lwise_build.stages.ingest.stage"].add("lwise_build.io.figures")
    assert "lwise_build/io/figures.py" in graph.stage_files("ingest")


def test_resolve_always_runs_and_every_stage_tracks_its_resolved_params() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["resolve"]["do"]["always_changed"] is True
    for name, stage in stages.items():
        if name != "resolve":
            deps = stage["do"]["deps"]
            assert any("/resolved/" in d for d in deps), name
            assert "params" not in stage["do"], f"{name}: params come through its resolved file"


def test_resolve_stays_light() -> None:
    """``resolve`` runs on every ``dvc repro``: its command must not load torch, datasets or scipy."""
    import subprocess
    import sys

    code = ("import sys, lwise_build.cli, lwise_build.stages.resolve.stage; "
            "print(sorted(m for m in ('torch', 'datasets', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
