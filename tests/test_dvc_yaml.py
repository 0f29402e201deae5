"""dvc.yaml is generated from the stage specs (``python tools/dvc_yaml.py``) and lists, for every
stage, every project module its command runs (derived from the imports, tools/import_graph.py),
so editing any of them makes ``dvc status`` report the stage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dvc_yaml import generate, load_specs
from import_graph import ROOT, ImportGraph, covered

from lwise_build.stages.spec import DvcPath, StageSpec

SPECS = load_specs()
RUN = {s.name: s.stage.split(":")[0] for s in SPECS}  # DVC stage -> the module its command runs


def code_deps(dvc: dict, stage: str) -> list[str]:
    return [d for d in dvc["stages"][stage]["do"]["deps"] if d.startswith("lwise_build")]


def missing(graph: ImportGraph, dvc: dict, stage: str) -> list[str]:
    deps = code_deps(dvc, stage)
    return sorted(p for p in graph.stage_files(RUN[stage]) if not covered(p, deps))


def test_the_committed_dvc_yaml_is_the_generated_one() -> None:
    assert (ROOT / "dvc.yaml").read_text() == generate(SPECS, ImportGraph()), "run `python tools/dvc_yaml.py`"


@pytest.mark.parametrize("stage", [s.name for s in SPECS if not s.always_changed])  # resolve always runs
def test_every_module_a_stage_runs_is_a_dep(stage: str) -> None:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert missing(ImportGraph(), dvc, stage) == [], "run `python tools/dvc_yaml.py`"
    for dep in code_deps(dvc, stage):
        assert (ROOT / dep).exists(), f"{stage}: dep {dep} does not exist"


def test_a_removed_dep_is_reported() -> None:
    dvc = yaml.safe_load(generate(SPECS, ImportGraph()))
    deps = dvc["stages"]["score"]["do"]["deps"]
    deps.remove("lwise_build/io/tables.py")
    assert missing(ImportGraph(), dvc, "score") == ["lwise_build/io/tables.py"]


def test_a_new_import_is_reported(tmp_path: Path) -> None:
    """A module that starts importing another module pulls that module into its stages' deps."""
    graph = ImportGraph()
    before = graph.stage_files(RUN["ingest"])
    assert "lwise_build/io/figures.py" not in before
    graph.edges[RUN["ingest"]].add("lwise_build.io.figures")
    assert "lwise_build/io/figures.py" in graph.stage_files(RUN["ingest"])
    assert "lwise_build/io/figures.py" in generate(SPECS, graph).split("\n  # ")[2]  # the ingest block


def test_resolve_always_runs_and_every_stage_tracks_its_resolved_params() -> None:
    stages = yaml.safe_load(generate(SPECS, ImportGraph()))["stages"]
    assert stages["resolve"]["do"]["always_changed"] is True
    for spec in SPECS:
        if spec.name != "resolve":
            deps = stages[spec.name]["do"]["deps"]
            own = spec.resolved_name("{model}").replace("{model}", "${key}")
            assert any(d.endswith(f"/resolved/{own}") for d in deps), spec.name
            assert "params" not in stages[spec.name]["do"], f"{spec.name}: params come through its resolved file"


def test_the_declarations_read_back_from_the_yaml() -> None:
    """Notes become comments, ``cache: false`` and plot options become the path's mapping, and a
    value that YAML would misread (``: ``, a leading ``*``) is quoted."""
    spec = StageSpec(name="toy", output="toy", stage="lwise_build.stages.toy.stage:Toy", help="Toy.",
                     describe=lambda p, c: "", per="model", always_changed=True,
                     deps=(DvcPath("resolved/toy-{model}.json", note="its params"), "*odd"),
                     outs=(DvcPath("toy/{model}", cache=False),),
                     plots=(DvcPath("plots/toy.csv", plot=(("x", "step"), ("title", "loss: {model} # not a comment"))),))
    do = yaml.safe_load(generate((spec,), ImportGraph()))["stages"]["toy"]["do"]
    assert do == {
        "cmd": "lwise-build toy ${item.corpus} ${key}", "always_changed": True,
        "deps": ["data/${item.corpus}/resolved/toy-${key}.json", "data/${item.corpus}/*odd"],
        "outs": [{"data/${item.corpus}/toy/${key}": {"cache": False}}],
        "plots": [{"data/${item.corpus}/plots/toy.csv": {"x": "step", "title": "loss: ${key} # not a comment"}}],
    }


def test_resolve_stays_light() -> None:
    """``resolve`` runs on every ``dvc repro``: its command (and every spec) must not load torch,
    datasets or scipy."""
    import subprocess
    import sys

    code = ("import sys, lwise_build.cli, lwise_build.stages.resolve.stage, lwise_build.stages.registry; "
            "print(sorted(m for m in ('torch', 'datasets', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
