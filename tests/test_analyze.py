"""analyze without a browser: reading saved files (and naming foreign ones), the maths, exclusions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from experiment_tiny import CLASSES, fake_session, make_corpus

from lwise_build.cli import main
from lwise_build.config.experiment import ExperimentParams
from lwise_build.config.load import parse_params
from lwise_build.io.responses import read_responses, typed
from lwise_build.ops.experiment_design import design
from lwise_build.ops.human_analysis import bootstrap, calibrate, condition_effects, training_time
from lwise_build.stages.analyze import Analyze


def trials_of(ids: list[str], labels: list[int], phase: str = "test") -> list[dict]:
    rows = [{"trial": k, "block": 1, "phase": phase, "feedback": phase == "train", "id": i, "label": lab,
             "budget": 0.0, "difficulty": 0.5, "selection": "random"} for k, (i, lab) in enumerate(zip(ids, labels, strict=True))]
    images = {(i, 0.0): f"images/{i}.png" for i in ids}
    return design(rows, CLASSES, images, ExperimentParams(catch_per_block=2), np.random.default_rng(0)).trials


def to_csv(rows: list[dict]) -> str:
    """jsPsych's CSV: every value quoted text, objects as JSON, null as 'null'."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    def cell(v):
        return json.dumps(v) if isinstance(v, (list, dict)) or v is None else (str(v).lower() if isinstance(v, bool) else str(v))
    lines = [",".join(f'"{c}"' for c in cols)]
    lines += [",".join('"' + cell(r.get(c, "")).replace('"', '""') + '"' if c in r else '""' for c in cols) for r in rows]
    return "\r\n".join(lines) + "\r\n"


def test_csv_values_come_back_typed():
    row = typed({"id": "1234567890123456", "rt": "612", "correct": "true", "repeat_of": "null", "budget": "2",
                 "choice_names": '["a","b"]', "shape": "", "response": "f"})
    assert row == {"id": "1234567890123456", "rt": 612, "correct": True, "repeat_of": None, "budget": 2.0,
                   "choice_names": ["a", "b"], "shape": None, "response": "f"}


def test_foreign_and_malformed_files_are_named_with_the_reason(data_root: Path, tmp_path: Path):
    corpus = make_corpus(data_root, per_class=10)
    test_ids = [i for i, s in zip(corpus["ids"], corpus["splits"], strict=True) if s == "test"][:6]
    labels = [corpus["labels"][corpus["ids"].index(i)] for i in test_ids]
    trials = trials_of(test_ids, labels)
    ok = [True] * len(trials)
    folder = tmp_path / "responses"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.csv").write_text(to_csv(fake_session("p1", "control", 0, trials, ok)))
    (folder / "sub" / "good.json").write_text(json.dumps(fake_session("p2", "control", 1, trials, ok)))
    jatos = [fake_session(p, "control", 0, trials, ok) for p in ("p3", "p4")]
    (folder / "jatos.txt").write_text("\n".join(json.dumps(s) for s in jatos) + "\n")
    foreign = {
        "photo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
        "notes.txt": b"just some notes\nabout the study\n",
        "other.csv": b"a,b\n1,2\n",
        "other-jspsych.csv": b'"rt","stimulus","trial_type"\r\n"512","x","html-keyboard-response"\r\n',
        "dict.json": b'{"not": "rows"}',
        "broken.json": b'[{"lwise_role": "response", ',
        "empty.csv": b"",
        "numbers.json": b"[1, 2, 3]",
        "bad-row.csv": b'"trial_type","lwise_role"\r\n"x","y","extra"\r\n',
    }
    for name, data in foreign.items():
        (folder / name).write_bytes(data)
    (folder / "other-corpus.json").write_text(json.dumps(fake_session("q1", "control", 0, trials, ok, corpus="moths")))
    (folder / "twice.json").write_text(json.dumps(fake_session("p1", "control", 0, trials, ok)))
    started = [r for r in fake_session("q2", "control", 0, trials, ok) if r["lwise_role"] == "instructions"]
    (folder / "started.json").write_text(json.dumps(started))
    out = Analyze(parse_params({"corpora": {"toy": {"ingest": {"source": "builtin:digits"}}}}), "toy", folder).run()
    report = json.loads((out / "report.json").read_text())
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert reasons == {
        "photo.png": "not a text file (not jsPsych CSV or JSON data)",
        "notes.txt": "not jsPsych data (no trial_type column)",
        "other.csv": "not jsPsych data (no trial_type column)",
        "other-jspsych.csv": "no lwise-build experiment rows (no lwise_role column): other data",
        "dict.json": "JSON, but not a list of jsPsych rows",
        "broken.json": "malformed JSON (line 1: Expecting property name enclosed in double quotes)",
        "empty.csv": "empty file",
        "numbers.json": "not a list of jsPsych rows (objects)",
        "bad-row.csv": "malformed CSV (a row has more values than the header)",
        "other-corpus.json": "data of corpus 'moths', not 'toy'",
        "twice.json": "participant 'p1' was already read from good.csv (only the first session counts)",
        "started.json": "no trial rows (lwise_role=response): the session stopped before the first trial",
    }
    assert report["sessions"] == ["good.csv", "jatos.txt (session 1)", "jatos.txt (session 2)", "sub/good.json"]
    with (out / "participants.csv").open() as f:
        people = list(csv.DictReader(f))
    assert [p["participant"] for p in people] == ["p1", "p3", "p4", "p2"]
    assert all(p["test_accuracy"] == "1" and p["included"] == "True" for p in people)
    metrics = json.loads((data_root / "toy" / "metrics" / "analyze.json").read_text())
    assert metrics["files_skipped"] == 12 and metrics["participants"]["included"] == 4


def test_exclusions_and_calibration_from_files(data_root: Path, tmp_path: Path):
    corpus = make_corpus(data_root, per_class=10)
    test_ids = [i for i, s in zip(corpus["ids"], corpus["splits"], strict=True) if s == "test"]
    labels = [corpus["labels"][corpus["ids"].index(i)] for i in test_ids]
    trials = trials_of(test_ids, labels)
    folder = tmp_path / "responses"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):  # correct when the score is above a per-participant threshold
        ok = [t["kind"] == "catch" or corpus["scores"][t["id"]] > rng.normal(0, 0.5) for t in trials]
        (folder / f"c{k}.json").write_text(json.dumps(fake_session(f"c{k}", "control", 0, trials, ok)))
    inattentive = [t["kind"] != "catch" for t in trials]
    (folder / "bad.json").write_text(json.dumps(fake_session("bad", "control", 0, trials, inattentive)))
    (folder / "quit.json").write_text(json.dumps(fake_session("quit", "control", 0, trials, [True] * len(trials),
                                                              complete=False)))
    params = parse_params({"corpora": {"toy": {"ingest": {"source": "builtin:digits"},
                                               "score": {"models": {"robust": "m"}}}},
                           "models": {"m": {"arch": "smallcnn-tiny", "corpus": "toy", "checkpoint": "x.pt"}}})
    out = Analyze(params, "toy", folder).run()
    with (out / "participants.csv").open() as f:
        people = {p["participant"]: p for p in csv.DictReader(f)}
    assert people["bad"]["exclusion"] == "catch accuracy 0.00 < 0.75"
    assert people["quit"]["exclusion"] == "incomplete session"
    assert sum(p["included"] == "True" for p in people.values()) == 6
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["score"] == "robust_gt_logit" and cal["trials"] == 6 * len(test_ids) and cal["slope"] > 1
    assert cal["params"]["min_catch_accuracy"] == 0.75
    with (out / "calibration.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(corpus["ids"])
    seen = [r for r in rows if r["trials"] != "0"]
    assert len(seen) == len(test_ids) and all(r["observed_accuracy"] for r in seen)
    pred = [float(r["predicted_accuracy"]) for r in sorted(rows, key=lambda r: float(r["score"]))]
    assert pred == sorted(pred)  # a higher robust logit predicts a higher accuracy


def test_cli_analyze(data_root: Path, tmp_path: Path, capsys, monkeypatch):
    make_corpus(data_root, per_class=10)
    folder = tmp_path / "responses"
    folder.mkdir()
    (folder / "x.txt").write_text("hello\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("corpora:\n  toy:\n    ingest: {source: 'builtin:digits'}\n")
    main(["analyze", "toy", "--responses", str(folder)])
    err = capsys.readouterr().err
    assert "skipped x.txt: not jsPsych data (no trial_type column)" in err and "0 sessions" in err


def test_bootstrap_intervals_cover_the_truth():
    """Participant-bootstrap 95% intervals of a mean accuracy cover the true mean ~95% of the time."""
    rng, hits = np.random.default_rng(0), 0
    for _ in range(300):
        acc = rng.binomial(40, 0.7, size=20) / 40
        _, lo, hi = bootstrap(lambda a: a.mean(axis=1), [acc], 1000, 0.95, rng)
        hits += lo <= 0.7 <= hi
    assert 0.9 <= hits / 300 <= 0.99


def test_gain_and_relative_training_time():
    acc = {"control": np.array([0.5, 0.6, 0.7]), "lwise": np.array([0.7, 0.8, 0.9])}
    secs = {"control": np.array([100.0, 100.0, 100.0]), "lwise": np.array([80.0, 80.0, 80.0])}
    out = condition_effects(acc, secs, chance=0.25, control="control", n=500, ci=0.95, seed=0)
    assert out["lwise"]["gain_vs_control"]["mean"] == pytest.approx((0.8 - 0.25) / (0.6 - 0.25) - 1)
    assert out["lwise"]["relative_training_time"]["mean"] == pytest.approx(0.8)
    assert out["lwise"]["above_chance"]["mean"] == pytest.approx(0.55)
    assert "gain_vs_control" not in out["control"]
    lo, hi = out["lwise"]["accuracy"]["low"], out["lwise"]["accuracy"]["high"]
    assert 0.7 - 1e-9 <= lo < 0.8 < hi <= 0.9 + 1e-9
    again = condition_effects(acc, secs, chance=0.25, control="control", n=500, ci=0.95, seed=0)
    assert again == out  # seeded


def test_calibration_recovers_a_logistic_policy():
    rng = np.random.default_rng(1)
    ids = [f"{i:04x}" for i in range(400)]
    score = rng.uniform(-3, 3, 400)
    x = np.repeat(score, 10)
    correct = rng.random(4000) < 1 / (1 + np.exp(-(0.5 + 1.5 * x)))
    fits = calibrate({"s": x, "noise": rng.normal(size=4000)}, correct, np.repeat(ids, 10).tolist(), 5, 0)
    assert fits["s"]["slope"] == pytest.approx(1.5, abs=0.15) and fits["s"]["intercept"] == pytest.approx(0.5, abs=0.15)
    assert fits["s"]["lr_auc_cv"] == pytest.approx(fits["s"]["lr_auc_in_sample"], abs=0.02) and fits["s"]["lr_auc_cv"] > 0.8
    assert abs(fits["noise"]["slope"]) < 0.1 and fits["noise"]["lr_auc_cv"] < 0.56


def test_training_time_counts_training_trial_screens_only():
    rows = [{"lwise_role": "instructions", "time_elapsed": 10_000},
            {"lwise_role": "fixation", "phase": "train", "time_elapsed": 10_500},
            {"lwise_role": "response", "phase": "train", "time_elapsed": 11_500},
            {"lwise_role": "break", "time_elapsed": 60_000},
            {"lwise_role": "response", "phase": "test", "time_elapsed": 61_000}]
    assert training_time(rows) == pytest.approx(1.5)


def test_read_responses_is_sorted_and_recursive(tmp_path: Path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.csv").write_text("")
    (tmp_path / "a.csv").write_text("")
    sessions, skipped = read_responses(tmp_path, "toy")
    assert sessions == [] and [s.file for s in skipped] == ["a.csv", "b/z.csv"]
