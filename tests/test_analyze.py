"""analyze without a browser: reading saved files (and naming foreign ones), what belongs to the
experiment, the statistics as the reference computed them, exclusions, Psych-DS."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from support import former
from support.experiment_tiny import built_sequence, fake_session, make_corpus, make_curricula
from support.params import toy_params

from lwise_build.cli import main
from lwise_build.errors import UserError
from lwise_build.io.responses import read_responses, typed
from lwise_build.ops.human_analysis import (
    ConditionData,
    EffectSettings,
    bootstrap,
    chi_square,
    condition_effects,
    training_time_reference,
    training_time_screens,
)
from lwise_build.stages.analyze.stage import Analyze
from lwise_build.stages.experiment.stage import Experiment


def params(experiment: dict | None = None, **analysis):
    return toy_params({"score": {"models": {"robust": "m"}}, "experiment": experiment or {}, "analysis": analysis},
                      models={"m": {"arch": "smallcnn-tiny", "corpus": "toy", "checkpoint": "x.pt"}})


@pytest.fixture
def built(data_root: Path) -> dict:
    """The tiny corpus, two curricula (3 sequences each, 1 + 4 trials per class) and their experiment."""
    corpus = make_corpus(data_root, per_class=10)
    make_curricula(data_root, corpus, sequences=6, train=1, test=4)
    out = Experiment(params({"repeats_per_block": [1, 1]}), "toy").run()
    return {"corpus": corpus, "experiment": out, "root": data_root}


def to_csv(rows: list[dict]) -> str:
    """jsPsych's CSV: every value quoted text, objects as JSON, null as 'null'."""
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v):
        return json.dumps(v) if isinstance(v, (list, dict)) or v is None else (str(v).lower() if isinstance(v, bool) else str(v))
    lines = [",".join(f'"{c}"' for c in cols)]
    lines += [",".join('"' + cell(r.get(c, "")).replace('"', '""') + '"' if c in r else '""' for c in cols) for r in rows]
    return "\r\n".join(lines) + "\r\n"


def all_right(t: dict) -> bool:
    return True


def test_csv_values_come_back_typed():
    row = typed({"id": "1234567890123456", "rt": "612", "correct": "true", "repeat_of": "null", "budget": "2",
                 "choice_names": '["a","b"]', "shape": "", "response": "f", "rt_big": "1e400", "trial": "1e400"})
    assert row == {"id": "1234567890123456", "rt": 612, "correct": True, "repeat_of": None, "budget": 2.0,
                   "choice_names": ["a", "b"], "shape": None, "response": "f", "rt_big": "1e400", "trial": "1e400"}


def test_foreign_and_malformed_files_are_named_with_the_reason(built, tmp_path: Path):
    exp, folder = built["experiment"], tmp_path / "responses"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.csv").write_text(to_csv(fake_session(exp, "p1", "control", 0, all_right)))
    (folder / "sub" / "good.json").write_text(json.dumps(fake_session(exp, "p2", "control", 1, all_right)))
    jatos = [fake_session(exp, p, "lwise", k, all_right) for k, p in enumerate(("p3", "p4"))]
    (folder / "jatos.txt").write_text("\n".join(json.dumps(s) for s in jatos) + "\n")
    appended = fake_session(exp, "p5", "lwise", 2, all_right)  # the collector's / JATOS's appended rows
    (folder / "p5.jsonl").write_text("\n".join(json.dumps(r) for r in appended + appended[3:9]) + "\n")
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
        "nested.json": b"[" * 100_000 + b"]" * 100_000,
        "deep.json": json.dumps([{"lwise_role": "x", "v": json.loads("[" * 50 + "]" * 50)}]).encode(),
        "huge.json": b"[" + b" " * 3_000_000 + b"]",
    }
    for name, data in foreign.items():
        (folder / name).write_bytes(data)
    (folder / "other-corpus.json").write_text(json.dumps(fake_session(exp, "q1", "control", 0, all_right, corpus="moths")))
    (folder / "twice.json").write_text(json.dumps(fake_session(exp, "p1", "control", 0, all_right)))
    started = [r for r in fake_session(exp, "q2", "control", 2, all_right) if r["lwise_role"] == "instructions"]
    (folder / "started.json").write_text(json.dumps(started))
    clash = fake_session(exp, "q3", "control", 2, all_right)
    (folder / "clash.json").write_text(json.dumps(clash + [{**clash[3], "rt": 1}]))
    out = Analyze(params(max_file_mb=2), "toy", folder).run()
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
        "nested.json": "JSON nested too deeply to be jsPsych rows",
        "deep.json": "values nested more than 32 levels deep: not jsPsych rows",
        "huge.json": "3.0 MB: too large for saved session data (at most 2.0 MB)",
        "other-corpus.json": "data of corpus 'moths', not 'toy'",
        "twice.json": "participant 'p1' was already read from good.csv (only the first session counts)",
        "started.json": "no trial rows (lwise_role=response): the session stopped before the first trial",
        "clash.json": f"two different rows saved under the key {clash[3]['lwise_key']!r}",
    }
    assert report["sessions"] == ["good.csv", "jatos.txt (session 1)", "jatos.txt (session 2)", "p5.jsonl",
                                  "sub/good.json"]
    with (out / "participants.csv").open() as f:
        people = list(csv.DictReader(f))
    assert [p["participant"] for p in people] == ["p1", "p3", "p4", "p5", "p2"]
    assert all(p["test_accuracy"] == "1" and p["included"] == "True" for p in people)
    metrics = json.loads((built["root"] / "toy" / "metrics" / "analyze.json").read_text())
    assert metrics["files_skipped"] == len(reasons) and metrics["participants"]["included"] == 5


def _tamper(rows: list[dict], change) -> list[dict]:
    """The rows with the first main trial's response changed by ``change(row)`` (a dict of values)."""
    out = [dict(r) for r in rows]
    first = next(r for r in out if r["lwise_role"] == "response" and r["kind"] == "main")
    first.update(change(first))
    return out


def _wrong_but_marked_correct(row: dict) -> dict:
    choice = (row["correct_choice"] + 1) % len(row["choice_labels"])
    return {"choice": choice, "response": choice, "response_label": row["choice_labels"][choice], "correct": True}


def test_sessions_that_do_not_belong_are_excluded_with_their_reason(built, tmp_path: Path, caplog):
    exp, folder = built["experiment"], tmp_path / "responses"
    folder.mkdir()
    good = fake_session(exp, "ok", "control", 0, all_right)
    _, trials, build = built_sequence(exp, "control", 1)
    other_id = next(t for t in trials if t["kind"] == "main")["id"]
    sessions = {
        "a-ok.json": good,
        "b-build.json": [{**r, "experiment_build": "f" * 16} for r in fake_session(exp, "b", "control", 1, all_right)],
        "c-condition.json": [{**r, "condition": "mystery"} for r in fake_session(exp, "c", "lwise", 0, all_right)],
        "d-sequence.json": [{**r, "sequence": 7} for r in fake_session(exp, "d", "lwise", 1, all_right)],
        "e-trial.json": _tamper(fake_session(exp, "e", "lwise", 2, all_right), lambda r: {"id": other_id}),
        "f-correct.json": _tamper(fake_session(exp, "f", "control", 2, all_right), _wrong_but_marked_correct),
        "g-copy.json": [{**r, "participant": "g"} for r in good],
    }
    for name, rows in sessions.items():
        (folder / name).write_text(json.dumps(rows))
    out = Analyze(params(), "toy", folder).run()
    report = json.loads((out / "report.json").read_text())
    got = {s["file"]: s["reason"] for s in report["not_belonging"]}
    assert report["sessions"] == ["a-ok.json"] and set(got) == set(sessions) - {"a-ok.json"}
    assert got["b-build.json"].startswith(f"recorded with experiment build {'f' * 16}, not this experiment's build {build}")
    assert got["c-condition.json"] == "condition 'mystery' is not in this experiment (control, lwise)"
    assert got["d-sequence.json"] == "sequence '7' does not exist (condition lwise has 6)"
    assert got["e-trial.json"].startswith("the trial at position") and "id" in got["e-trial.json"]
    assert "correct=True contradicts choice" in got["f-correct.json"]
    assert got["g-copy.json"] == ("the same sequence and responses as participant 'ok' (a-ok.json): "
                                  "a duplicate under another id")
    assert "excluded b-build.json: recorded with experiment build" in caplog.text
    with (out / "participants.csv").open() as f:
        assert [p["participant"] for p in csv.DictReader(f)] == ["ok"]  # counted nowhere else
    allowed = Analyze(params(), "toy", folder, allow_build_mismatch=True).run()
    assert json.loads((allowed / "report.json").read_text())["sessions"] == ["a-ok.json", "b-build.json"]


def test_a_folder_of_another_experiment_is_one_line(built, tmp_path: Path, capsys, monkeypatch):
    folder = tmp_path / "responses"
    folder.mkdir()
    for k in range(2):
        rows = fake_session(built["experiment"], f"x{k}", "control", k, all_right)
        (folder / f"x{k}.json").write_text(json.dumps([{**r, "experiment_build": "0" * 16} for r in rows]))
    with pytest.raises(UserError, match=r"none of its 2 sessions belong to this experiment \(build [0-9a-f]{16}\); "
                                        r"e.g. x0.json: recorded with experiment build 0{16}"):
        Analyze(params(), "toy", folder).run()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("corpora:\n  toy:\n    ingest: {source: 'builtin:digits'}\n")
    with pytest.raises(SystemExit):
        main(["analyze", "toy", "--responses", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "none of its 2 sessions" in err[-1] and "Traceback" not in "\n".join(err)
    main(["analyze", "toy", "--responses", str(folder), "--allow-build-mismatch"])


def test_exclusions_calibration_and_psychds_from_files(built, tmp_path: Path):
    exp, scores = built["experiment"], built["corpus"]["scores"]
    folder = tmp_path / "responses"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):  # correct when the score is above a per-participant threshold
        for cond in ("control", "lwise"):
            rows = fake_session(exp, f"{cond[0]}{k}", cond, k,
                                lambda t: t["kind"] == "catch" or scores.get(t["id"], 0) > rng.normal(0, 1.5))
            (folder / f"{cond[0]}{k}.json").write_text(json.dumps(rows))
    catch = [t for t in built_sequence(exp, "control", 0)[1] if t["kind"] == "catch"]
    wrong = {catch[0]["position"]}  # 1 of 4 catch trials wrong: 0.75 (the old default kept it)
    (folder / "sloppy.json").write_text(json.dumps(fake_session(
        exp, "sloppy", "control", 0, lambda t: t["position"] not in wrong)))
    (folder / "quit.json").write_text(json.dumps(fake_session(exp, "quit", "control", 1, all_right, complete=False)))
    out = Analyze(params(), "toy", folder).run()
    with (out / "participants.csv").open() as f:
        people = {p["participant"]: p for p in csv.DictReader(f)}
    assert people["sloppy"]["exclusion"] == "catch accuracy 0.75 < 0.9"
    assert people["quit"]["exclusion"] == "incomplete session"
    assert sum(p["included"] == "True" for p in people.values()) == 12
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["score"] == "robust_gt_logit" and cal["slope"] > 0.3 and cal["conditions"] == ["control"]
    assert cal["calibration_folds"] == 10 and cal["trim_sd"] == 3 and 0 <= cal["p_value"] < 0.05
    assert cal["auc_cv_sd"] >= 0 and 0.5 < cal["auc_cv_mean"] <= 1 and cal["lr_auc_cv"] is not None
    with (out / "conditions.csv").open() as f:
        rows = {r["condition"]: r for r in csv.DictReader(f)}
    assert rows["lwise"]["p_vs_control"] and rows["lwise"]["relative_training_time_reference_mean"]
    assert rows["lwise"]["relative_training_time_screens_mean"]
    desc = json.loads((out / "psychds" / "dataset_description.json").read_text())
    with (out / "psychds" / "data" / "study-toy_data.csv").open() as f:
        data = list(csv.DictReader(f))
    assert desc["@type"] == "Dataset" and desc["@context"] == "https://schema.org/"
    assert [v["name"] for v in desc["variableMeasured"]] == list(data[0]) and all(
        v["description"] for v in desc["variableMeasured"])
    assert {r["participant"] for r in data} == {f"p{k:03d}" for k in range(1, 15)}  # pseudonyms, no ids
    assert not {"c0", "sloppy", "quit"} & {v for r in data for v in r.values()}
    assert {r["exclusion"] for r in data if r["included"] == "false"} == {"catch accuracy 0.75 < 0.9",
                                                                        "incomplete session"}


def test_reference_bootstrap_is_scipys_with_the_former_draws():
    """scipy.stats.bootstrap draws exactly what the former hand-written bootstrap drew (same seed)."""
    rng_data = np.random.default_rng(3)
    a, c = rng_data.binomial(1, 0.7, 60).astype(float), rng_data.binomial(1, 0.5, 50).astype(float)
    for groups, stat, old in (([a], lambda x, axis: x.mean(axis=axis), lambda x: x.mean(axis=1)),
                              ([a, c], lambda x, y, axis: x.mean(axis=axis) / y.mean(axis=axis),
                               lambda x, y: x.mean(axis=1) / y.mean(axis=1))):
        got = bootstrap(stat, groups, 2000, 0.95, np.random.default_rng(7))
        want = former.bootstrap(old, groups, 2000, 0.95, np.random.default_rng(7))
        assert got == pytest.approx(want, rel=1e-12)


def test_bootstrap_intervals_cover_the_truth():
    """Percentile 95% intervals of a mean accuracy cover the true mean ~95% of the time."""
    rng, hits = np.random.default_rng(0), 0
    for _ in range(300):
        acc = rng.binomial(40, 0.7, size=20) / 40
        _, lo, hi = bootstrap(lambda a, axis: a.mean(axis=axis), [acc], 1000, 0.95, rng)
        hits += lo <= 0.7 <= hi
    assert 0.9 <= hits / 300 <= 0.99


def test_gain_chi_square_and_relative_training_time():
    def cond(acc: list[float], secs: float) -> ConditionData:
        return ConditionData([np.r_[np.ones(int(a * 20)), np.zeros(20 - int(a * 20))] for a in acc],
                             {"reference": np.full(3, secs), "screens": np.full(3, secs / 2)})

    data = {"control": cond([0.5, 0.6, 0.7], 100.0), "lwise": cond([0.7, 0.8, 0.9], 80.0)}
    for unit in ("trial", "participant"):
        out = condition_effects(data, EffectSettings("control", 0.25, 500, unit=unit))
        assert out["lwise"]["gain_vs_control"]["mean"] == pytest.approx((0.8 - 0.25) / (0.6 - 0.25) - 1)
        assert out["lwise"]["relative_training_time_reference"]["mean"] == pytest.approx(0.8)
        assert out["lwise"]["relative_training_time_screens"]["mean"] == pytest.approx(0.8)
        assert out["lwise"]["above_chance"]["mean"] == pytest.approx(0.55)
        assert "gain_vs_control" not in out["control"] and out["lwise"]["trials"] == 60
        assert out == condition_effects(data, EffectSettings("control", 0.25, 500, unit=unit))  # seeded
    table = np.array([[48, 12], [36, 24]])
    want = stats.chi2_contingency(table)
    assert out["lwise"]["p_vs_control"] == pytest.approx(want.pvalue) and out["lwise"]["p_vs_control"] < 0.05
    plain = chi_square(data["lwise"].pooled(), data["control"].pooled(), yates=False)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    assert plain["chi2_vs_control"] == pytest.approx(((table - expected) ** 2 / expected).sum())


def test_training_time_in_both_definitions():
    rows = [{"lwise_role": "instructions", "time_elapsed": 10_000, "load": 1},
            {"lwise_role": "response", "phase": "train", "time_elapsed": 11_500, "load": 1},
            {"lwise_role": "feedback", "phase": "train", "time_elapsed": 14_000, "load": 1},
            {"lwise_role": "resume", "time_elapsed": 3_000, "load": 2},  # a reload: jsPsych's clock restarts
            {"lwise_role": "response", "phase": "train", "time_elapsed": 4_000, "load": 2},
            {"lwise_role": "break", "time_elapsed": 60_000, "load": 2},
            {"lwise_role": "response", "phase": "test", "time_elapsed": 61_000, "load": 2}]
    assert training_time_screens(rows) == pytest.approx(1.5 + 2.5 + 1.0)
    trials = [{"kind": "main", "phase": "train", "position": 0, "session_ms": 11_500.0},
              {"kind": "main", "phase": "train", "position": 1, "session_ms": 19_000.0, "t_page_ms": 4_000.0},
              {"kind": "catch", "phase": "train", "position": 2, "session_ms": 25_000.0},
              {"kind": "main", "phase": "test", "position": 3, "session_ms": 90_000.0}]
    assert training_time_reference(trials) == pytest.approx(19.0)  # since the first load, across the reload
    assert training_time_reference([{**t, "session_ms": None} for t in trials]) == pytest.approx(4.0)


def test_read_responses_is_sorted_and_recursive(tmp_path: Path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.csv").write_text("")
    (tmp_path / "a.csv").write_text("")
    sessions, skipped = read_responses(tmp_path, "toy")
    assert sessions == [] and [s.file for s in skipped] == ["a.csv", "b/z.csv"]


def test_cli_analyze(built, tmp_path: Path, capsys, monkeypatch):
    folder = tmp_path / "responses"
    folder.mkdir()
    (folder / "x.txt").write_text("hello\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("corpora:\n  toy:\n    ingest: {source: 'builtin:digits'}\n")
    main(["analyze", "toy", "--responses", str(folder)])
    err = capsys.readouterr().err
    assert "skipped x.txt: not jsPsych data (no trial_type column)" in err and "0 sessions" in err


def test_analyze_needs_the_built_experiment(data_root: Path, tmp_path: Path):
    make_corpus(data_root, per_class=4)
    (tmp_path / "r").mkdir()
    with pytest.raises(UserError, match=r"experiment/manifest.json: no experiment built; .* run `lwise-build experiment toy`"):
        Analyze(params(), "toy", tmp_path / "r").run()

