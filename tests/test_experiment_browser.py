"""The built experiment in headless Chromium: simulated participants run it end to end from a
loopback server (jsPsych from npm), and ``analyze`` recovers their policy from the saved data."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import numpy as np
import pytest
from experiment_browser import Server, images_of, npm_install, run_participant
from experiment_tiny import B0, B1, CLASSES, make_corpus, make_curricula, p_correct

from lwise_build.config.curricula import participant_condition
from lwise_build.config.experiment import DEFAULT_ALIASES
from lwise_build.config.load import parse_params
from lwise_build.io.responses import read_responses
from lwise_build.ops.experiment_design import SHAPES, assign
from lwise_build.stages.analyze import Analyze
from lwise_build.stages.experiment import Experiment

pytestmark = pytest.mark.browser

FAST = {"fixation_ms": 5, "click_delay_ms": 10, "feedback_correct_ms": 10, "feedback_incorrect_ms": 20,
        "gap_ms": 5, "response_limit_ms": 2500, "repeats_per_block": [0, 1]}
#: keys, aliases in shuffled order, a 17 ms image (the ImageNet task), the published 1500 ms lockout, POST
KEYS = {"response": "keys", "keys": ["f", "j", "k"], "choice_names": "aliases", "choice_order": "shuffled",
        "stimulus_ms": 17, "post_stimulus_ms": 20, "click_delay_ms": 100, "fixation_ms": 5, "gap_ms": 5,
        "feedback_correct_ms": 10, "download": False}
#: the simulated L-WISE learners do better on the test: logit + BOOST
BOOST = 0.8
CONTROLS, LWISE = 6, 3


def params(experiment: dict, **analysis):
    corpus = {"ingest": {"source": "builtin:digits"}, "experiment": experiment, "analysis": analysis}
    return parse_params({"corpora": {"toy": corpus}})


def p_answer(condition: str, trial: dict, scores: dict) -> float:
    """The simulated policy: P(correct) from the image's score (and the condition on the test)."""
    if trial["budget"] or condition != "lwise" or trial["phase"] != "test":
        return p_correct(scores[trial["id"]], trial["budget"])
    return 1 / (1 + math.exp(-(B0 + B1 * scores[trial["id"]] + BOOST)))


def image_policy(images: dict, scores: dict, condition: str, *, catch_wrong: bool = False,
                 skip_first_test: bool = False, shoot: dict | None = None):
    """Answer what the page shows: the image's class with probability p_answer, else a wrong one."""
    state = {"skipped": False, "shot": False}

    def choose(s: dict, rng: np.random.Generator) -> int | None:
        if s["shape"]:
            return 1 - SHAPES.index(s["shape"]) if catch_wrong else SHAPES.index(s["shape"])
        if not s["image"]:
            return 0  # instructions, breaks: Continue
        t = images[s["image"]]
        if shoot and not state["shot"] and t["phase"] == "train":
            s["shoot"], state["shot"] = shoot["trial"], True
        if skip_first_test and t["phase"] == "test" and not state["skipped"]:
            state["skipped"] = True
            return None
        correct = s["layout"]["choice_labels"].index(t["label"])
        if rng.random() < p_answer(condition, t, scores):
            return correct
        return int(rng.choice([i for i in range(len(CLASSES)) if i != correct]))

    return choose


def sequence_policy(experiment: Path, shoot_feedback: Path):
    """Keys mode with a 17 ms image: answer by position in the known sequence, all correct but
    the first main trial (its feedback is screenshot); a wrong key pressed before the click
    delay is over must be ignored."""
    done = {"n": 0, "wrong": False}

    def choose(s: dict, rng: np.random.Generator) -> int | None:
        if s["screen"] == "buttons":
            return 0  # instructions, breaks
        trials = json.loads((experiment / (s["layout"]["file"] + ".json")).read_text())
        t = s["trial"] = trials[done["n"]]
        done["n"] += 1
        if done["n"] <= 3:
            s["early_key"] = s["keys"][(t["correct_choice"] + 1) % 2]
        if t["kind"] == "main" and not done["wrong"]:
            done["wrong"], s["shoot_feedback"] = True, shoot_feedback
            return (t["correct_choice"] + 1) % len(CLASSES)
        return t["correct_choice"]

    return choose


@pytest.fixture(scope="session")
def jspsych_lib(tmp_path_factory):
    return npm_install(tmp_path_factory.mktemp("jspsych"))


@pytest.fixture(scope="module")
def study(tmp_path_factory, jspsych_lib, browser):
    """Two builds served on loopback, 12 + 1 simulated participants, their saved data."""
    root = tmp_path_factory.mktemp("study")
    shots = Path(os.environ.get("LWISE_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("LWISE_DATA", str(root / "data"))
    mp.setenv("LWISE_CACHE", str(root / "cache"))
    corpus = make_corpus(root / "data")
    make_curricula(root / "data", corpus, sequences=CONTROLS, train=1, test=10)
    server = Server(jspsych_lib)
    lib = server.url + "/lib/{package}"
    keys = {**KEYS, "post_url": server.url + "/save", "completion_url": server.url + "/keys/README.md?pid={participant}"}
    for name, extra in (("keys", keys), ("main", FAST)):
        Experiment(params({"library_url": lib, **extra}), "toy").run()
        shutil.copytree(root / "data" / "toy" / "experiment", root / name)
        server.mounts[name] = root / name
    images, scores = images_of(root / "main"), corpus["scores"]
    responses, log = root / "responses", []
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.on("console", lambda m: m.type == "error" and log.append(m.text))
    page.on("pageerror", lambda e: log.append(str(e)))
    people = [(f"c{k}", "control", k, {}) for k in range(CONTROLS)] + [(f"l{k}", "lwise", k, {}) for k in range(LWISE)]
    people += [("inattentive", "control", 0, {"catch_wrong": True})]
    people[1][3]["skip_first_test"] = True
    people[0][3]["shoot"] = {"trial": shots / "trial.png"}
    seen: dict[str, list[dict]] = {}
    for i, (pid, cond, seq, how) in enumerate(people):
        url = f"{server.url}/main/index.html?participant={pid}&condition={cond}&sequence={seq}"
        seen[pid] = run_participant(page, url, image_policy(images, scores, cond, **how), seed=1000 + i,
                                    download=responses)
    page.screenshot(path=str(shots / "completion.png"))
    keys_policy = sequence_policy(root / "keys", shots / "feedback.png")
    page.add_init_script("window.jatos = {submitResultData: d => { window.jatosGot = d; return Promise.resolve(); }};")
    key_screens = run_participant(page, f"{server.url}/keys/condition-lwise.html?PROLIFIC_PID=k0&sequence=1",
                                  keys_policy, seed=99)
    jatos = page.evaluate("window.jatosGot")  # before the redirect (1.5 s after the end)
    page.wait_for_url(f"{server.url}/keys/README.md?pid=k0", timeout=10_000)
    page.close()
    yield {"root": root, "corpus": corpus, "responses": responses, "server": server, "errors": log,
           "people": people, "screens": seen, "key_screens": key_screens, "jatos": jatos, "shots": shots, "images": images}
    server.close()
    mp.undo()


def test_every_trial_is_one_row_with_its_variables(study):
    sessions, skipped = read_responses(study["responses"], "toy")
    assert skipped == [] and len(sessions) == len(study["people"]) and study["errors"] == []
    main = study["root"] / "main"
    for s in sessions:
        layout = json.loads((main / "manifest.json").read_text())["conditions"][s.first("condition")]
        seq = json.loads((main / (layout["sequences"][s.first("sequence")]["file"] + ".json")).read_text())
        rows = s.trials
        assert s.rows[0]["lwise_role"] == "preload" and s.rows[0]["success"] == "true" == s.first("success")
        assert s.rows[0]["failed_images"] == "[]"  # every image preloaded before the first trial
        assert [r["position"] for r in rows] == [t["position"] for t in seq] and s.completed
        for r, t in zip(rows, seq, strict=True):
            assert {k: r[k] for k in t} == t  # every trial variable, typed back from jsPsych's CSV
            assert r["correct"] == (r["choice"] == t["correct_choice"])
            assert (r["rt"] is None) == r["timed_out"] and (r["rt"] is None or r["rt"] >= 0)
            if t["kind"] != "catch" and r["choice"] is not None:
                assert r["response_label"] == s.first("choice_labels")[r["choice"]]
        assert sum(r["timed_out"] for r in rows) == (1 if s.participant == "c1" else 0)
        shown = [(x["image"], x["shape"]) for x in study["screens"][s.participant] if x["image"] or x["shape"]]
        assert shown == [(r["image"], r["shape"]) for r in rows]  # the page showed what the data say
        assert sum(r["kind"] == "catch" for r in rows) == 4 and sum(r["kind"] == "repeat" for r in rows) == 1


def test_keys_aliases_fixed_duration_and_post(study):
    (query, body), = study["server"].posted
    assert query.startswith("file=lwise-toy-lwise-1-k0.json") and json.loads(study["jatos"]) == json.loads(body)
    rows = [r for r in json.loads(body) if r["lwise_role"] == "response"]
    names = rows[0]["choice_names"]
    assert set(names) <= set(DEFAULT_ALIASES) and len(set(names)) == len(CLASSES)
    assert rows[0]["participant_source"] == "prolific" and rows[0]["condition"] == "lwise"
    shown = [s for s in study["key_screens"] if s["screen"] == "keys"]
    assert len(shown) == len(rows)
    for s in shown:  # the prompt names each key's choice: the aliases, or the shapes on catch trials
        want = ["Circle", "Triangle"] if s["trial"]["kind"] == "catch" else names
        assert all(f"{k.upper()} = {n}" in s["prompt"] for k, n in zip(KEYS["keys"], want, strict=False))
    wrong = [r for r in rows if not r["correct"]]
    assert len(wrong) == 1 and wrong[0]["kind"] == "main" and wrong[0]["phase"] == "train"
    assert all(r["response"] == KEYS["keys"][r["choice"]] for r in rows)
    stim = [r for r in json.loads(body) if r["lwise_role"] == "stimulus"]
    assert len(stim) == len(rows) and all(r["rt"] is None for r in stim)


def test_analyze_recovers_the_policy(study):
    mp = pytest.MonkeyPatch()
    mp.setenv("LWISE_DATA", str(study["root"] / "data"))
    try:
        out = Analyze(params({}, bootstrap=4000), "toy", study["responses"]).run()
    finally:
        mp.undo()
    metrics = json.loads((out / "metrics.json").read_text())
    people = {r["participant"]: r for r in _csv(out / "participants.csv")}
    assert people["inattentive"]["included"] == "False" and "catch accuracy" in people["inattentive"]["exclusion"]
    assert all(r["included"] == "True" for p, r in people.items() if p != "inattentive")
    assert metrics["participants"] == {"read": CONTROLS + LWISE + 1, "included": CONTROLS + LWISE, "excluded": 1}
    expected = expected_accuracy(study)
    chance = 1 / len(CLASSES)
    for cond, acc in expected.items():
        got = metrics["conditions"][cond]["accuracy"]
        assert got["low"] <= acc <= got["high"], (cond, acc, got)
    gain = metrics["conditions"]["lwise"]["gain_vs_control"]
    want = (expected["lwise"] - chance) / (expected["control"] - chance) - 1
    assert gain["low"] <= want <= gain["high"] and gain["mean"] > 0
    assert metrics["conditions"]["lwise"]["relative_training_time"]["mean"] > 0
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["score"] == "robust_gt_logit" and cal["conditions"] == ["control"]
    assert cal["trials"] == CONTROLS * 30  # natural test trials of the included controls
    assert abs(cal["slope"] - B1) < 0.7 and abs(cal["intercept"] - B0) < 0.7, cal
    fits = cal["fits"]
    assert fits["robust_gt_logit"]["lr_auc_cv"] > fits["standard_gt_logit"]["lr_auc_cv"] + 0.05 > 0.55
    assert fits["robust_difficulty"]["slope"] < 0 < fits["robust_gt_logit"]["slope"]
    for fig in ("accuracy", "learning_curves", "calibration"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000
    shutil.copytree(out / "figures", study["shots"] / "analysis", dirs_exist_ok=True)


def expected_accuracy(study) -> dict[str, float]:
    """The policy's test accuracy per condition on the trials each included participant saw."""
    sessions, _ = read_responses(study["responses"], "toy")
    out: dict[str, list[float]] = {}
    for s in sessions:
        if s.participant == "inattentive":
            continue
        cond = s.first("condition")
        test = [t for t in s.trials if t["kind"] == "main" and t["phase"] == "test"]
        ps = [0.0 if t["timed_out"] else p_answer(cond, t, study["corpus"]["scores"]) for t in test]
        out.setdefault(cond, []).append(float(np.mean(ps)))
    return {c: float(np.mean(v)) for c, v in out.items()}


def test_page_runs_from_disk_and_assigns_as_python_does(study, browser):
    """From file:// the sequence loads through its .js twin; the page's hash assignment of a
    participant id is lwise_build.ops.experiment_design.assign."""
    manifest = json.loads((study["root"] / "main" / "manifest.json").read_text())
    weights = {n: c["weight"] for n, c in manifest["conditions"].items()}
    counts = {n: len(c["sequences"]) for n, c in manifest["conditions"].items()}
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for pid in ("disk", "PID-5f3a", "Zoë 7"):
        page.goto((study["root"] / "main" / "index.html").as_uri() + "?PROLIFIC_PID=" + quote(pid))
        got = page.evaluate("window.lwiseExperiment.assignment")
        assert (got["condition"], got["sequence"]) == assign(pid, weights, counts, manifest["seed"])
    slots = {n: SimpleNamespace(weight=int(w), sequences=counts[n]) for n, w in weights.items()}
    for index in (0, 1, 5, 11):  # blocked assignment by participant number, as the reference deployed it
        page.goto((study["root"] / "main" / "index.html").as_uri() + f"?index={index}")
        got = page.evaluate("window.lwiseExperiment.assignment")
        assert (got["condition"], got["sequence"], got["how"]) == (*participant_condition(slots, index), "index")
    page.goto((study["root"] / "main" / "index.html").as_uri() + "?index=12")  # 2 x 6 sequences: no 13th
    assert "does not exist" in page.inner_text("body")
    page.goto((study["root"] / "main" / "index.html").as_uri() + "?participant=disk")
    page.click("#jspsych-html-button-response-btngroup button")  # instructions
    page.wait_for_selector(".lwise-image, .lwise-shape", timeout=10_000)
    assert len(errors) == 1 and "Sequence 6 does not exist (condition control has 6 sequences" in errors[0]
    page.goto((study["root"] / "main" / "index.html").as_uri() + "?condition=nope")
    assert "Unknown condition nope" in page.inner_text("body")
    page.close()


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="") as f:
        return list(csv.DictReader(f))
