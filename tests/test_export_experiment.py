"""Export with the experiment folder (a downloadable artefact) and a calibration from ``analyze``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from datasets import load_dataset
from support.hub_tiny import CORPUS, REPO, make_tiny_build, tiny_params

from lwise_build.errors import UserError
from lwise_build.hub import pull
from lwise_build.io.digests import file_digest
from lwise_build.io.tables import read_table
from lwise_build.stages.experiment.stage import Experiment
from lwise_build.stages.export.spec import resolved
from lwise_build.stages.export.stage import Export

CALIBRATION = {"score": "robust_gt_logit", "slope": 1.25, "intercept": -0.5, "lr_auc_in_sample": 0.71,
               "lr_auc_cv": 0.69, "conditions": ["control"], "trials": 480, "participants": 12, "folds": 5,
               "responses_sha256": "ab" * 32, "experiment_builds": ["0123456789abcdef"], "fits": {}}


@pytest.fixture
def with_experiment(tiny_images, data_root: Path) -> Path:
    make_tiny_build(data_root)
    Experiment(tiny_params(), CORPUS).run()
    return data_root


def test_export_carries_the_experiment_and_the_calibration(with_experiment: Path, tmp_path: Path) -> None:
    plain = Export(tiny_params(), CORPUS).run()
    assert (plain / "experiment" / "index.html").is_file()
    text = (plain / "README.md").read_text()
    assert "## Run the experiment" in text and "--config experiment" in text and "Calibrated" not in text
    prov = json.loads((plain / "provenance.json").read_text())
    assert "experiment/index.html" in prov["artefacts"]["experiment"] and "experiment" not in prov["configs"]
    ds = load_dataset(str(plain), "default", cache_dir=str(tmp_path / "c1"))
    assert "predicted_accuracy" not in ds["train"].column_names  # no analysis, no column

    before = resolved(tiny_params(), CORPUS)
    assert "calibration_sha256" not in before  # the resolved params dvc tracks: as without analyze
    (with_experiment / CORPUS / "analysis").mkdir()
    (with_experiment / CORPUS / "analysis" / "calibration.json").write_text(json.dumps(CALIBRATION))
    assert resolved(tiny_params(), CORPUS) == {**before, "calibration_sha256": file_digest(
        with_experiment / CORPUS / "analysis" / "calibration.json")}  # so dvc repro reruns export
    folder = Export(tiny_params(), CORPUS).run()
    rows = load_dataset(str(folder), "default", cache_dir=str(tmp_path / "c2"))["train"].to_list()
    scores = {r["id"]: r["robust_gt_logit"] for r in read_table(with_experiment / CORPUS / "scores").to_pylist()}
    for r in rows:
        want = 1 / (1 + math.exp(-(1.25 * scores[r["id"]] - 0.5)))
        assert r["predicted_accuracy"] == pytest.approx(want, rel=1e-12)
    text = (folder / "README.md").read_text()
    assert "### Calibrated difficulty" in text and "480 natural-image test trials of 12 participants" in text
    assert "`predicted_accuracy` | Value(float64) | predicted human accuracy" in text
    assert json.loads((folder / "analysis" / "calibration.json").read_text()) == CALIBRATION


def test_bad_calibration_is_one_line_error(with_experiment: Path) -> None:
    (with_experiment / CORPUS / "analysis").mkdir()
    path = with_experiment / CORPUS / "analysis" / "calibration.json"
    path.write_text(json.dumps({**CALIBRATION, "score": "nope_gt_logit"}))
    with pytest.raises(UserError, match="maps score 'nope_gt_logit', which the scores table lacks"):
        Export(tiny_params(), CORPUS).run()
    path.write_text("{}")
    with pytest.raises(UserError, match="not a calibration"):
        Export(tiny_params(), CORPUS).run()


def test_pull_the_experiment_artefact(with_experiment: Path, tmp_path: Path, monkeypatch) -> None:
    folder = Export(tiny_params(), CORPUS).run()
    monkeypatch.setattr(pull, "resolve", lambda repo, tag: "f" * 40)
    monkeypatch.setattr(pull, "download_metadata", lambda repo, tag, sha: folder)
    monkeypatch.setattr(pull, "download", lambda repo, tag, sha, patterns: folder)
    got = pull.pull(REPO, "0.1.0", config="experiment", out=str(tmp_path / "study"))
    assert (tmp_path / "study" / "experiment" / "index.html").is_file()
    assert all(f.startswith("experiment/") or f in ("README.md", "CITATION.cff") for f in got.files)
    assert any("index.html to run it" in line for line in got.lines())


def test_opt_in_responses_config_carries_the_deidentified_trials(with_experiment: Path, tmp_path: Path) -> None:
    from support.experiment_tiny import fake_session

    from lwise_build.stages.analyze.stage import Analyze

    with pytest.raises(UserError, match=r"export.responses: .*psychds/data/study-toy_data.csv does not exist; "
                                        r"run `lwise-build analyze toy"):
        Export(tiny_params(responses=True), CORPUS).run()
    folder = tmp_path / "responses"
    folder.mkdir()
    exp = with_experiment / CORPUS / "experiment"
    for k, (cond, seq) in enumerate((("lwise", 0), ("lwise", 1), ("control", 0))):
        rows = fake_session(exp, f"PID{k}", cond, seq, lambda t: t["kind"] != "main" or t["position"] % 3 > 0,
                            corpus=CORPUS)
        (folder / f"s{k}.json").write_text(json.dumps(rows))
    Analyze(tiny_params(), CORPUS, folder).run()
    before = resolved(tiny_params(responses=True), CORPUS)
    assert before["responses_sha256"] and "responses_sha256" not in resolved(tiny_params(), CORPUS)
    plain = Export(tiny_params(), CORPUS).run()
    assert not (plain / "data" / "responses").exists()  # opt-in only
    out = Export(tiny_params(responses=True), CORPUS).run()
    ds = load_dataset(str(out), "responses", cache_dir=str(tmp_path / "c"))["train"]
    trials = [json.loads((exp / f"sequences/{c}/{s:03d}.json").read_text()) for c, s in (("lwise", 0), ("lwise", 1),
                                                                                           ("control", 0))]
    assert ds.num_rows == sum(len(t) for t in trials)
    assert set(ds["participant"]) == {"p001", "p002", "p003"} and not {"PID0", "PID1"} & set(ds["participant"])
    assert ds.features["correct"].dtype == "bool" and ds.features["rt"].dtype == "int64"
    card = (out / "README.md").read_text()
    assert "### `responses`" in card and "pseudonym of the participant" in card
