"""The built experiment in headless Chromium (jsPsych from npm): simulated participants run it side
by side against the collector on 127.0.0.1 (one browser killed mid-block and reopened, one page
reloaded), a keys build runs from a static host saving to post_url and JATOS with the published
feedback lockouts measured, and ``analyze`` recovers the simulated policy from the store."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import numpy as np
import pytest
from support.experiment_browser import (
    FEEDBACK_CLOCK,
    STATE,
    Collector,
    Participant,
    Server,
    answer,
    images_of,
    npm_install,
    run_side_by_side,
)
from support.experiment_tiny import B0, B1, CLASSES, make_corpus, make_curricula, p_correct
from support.params import toy_params
from support.reference import assign

from lwise_build.config.curricula import participant_condition
from lwise_build.io.responses import read_responses
from lwise_build.ops.experiment_design import SHAPES
from lwise_build.stages.analyze.stage import Analyze
from lwise_build.stages.experiment.stage import Experiment

pytestmark = pytest.mark.browser

ALIASES = ["Leda", "Tyro", "Eris", "Ajax"]
#: the collector build: short timings where the protocol allows (the lockouts are measured in KEYS)
FAST = {"click_delay_ms": 10, "feedback_correct_ms": 10, "feedback_incorrect_ms": 20, "gap_ms": 5,
        "response_limit_ms": 2500, "repeats_per_block": [1, 2], "catch_per_block": 10, "choice_names": "aliases",
        "aliases": ALIASES, "choice_order": "shuffled", "bonus_thresholds": [0.5, 0.7, 0.9],
        "bonus_amounts": [5, 10, 20], "completion_code": "C0DE", "completion_url": "done.html?cc={code}",
        "screenout_code": "SCR0",
        "library_url": "node_modules/{package}"}
#: the MHIST-like build: F/J/K keys with fixed labels, the published 500/1500 ms lockouts, a 17 ms
#: image (the ImageNet task), saved to post_url and JATOS from a static host
KEYS = {"response": "keys", "keys": ["f", "j", "k"], "class_labels": {"bar": "Benign", "dot": "Malignant"},
        "choice_order": "shuffled", "stimulus_ms": 17, "post_stimulus_ms": 20, "click_delay_ms": 100, "gap_ms": 5,
        "save": ["post", "jatos"], "preload_chunk": 4, "catch_per_block": 2, "consent_text": ""}
#: the simulated L-WISE learners do better on the test: logit + BOOST
BOOST = 0.8
SEQUENCES = 8  # per condition; participants 0..9 fill control 0-6 and lwise 0-2 (weights 2:1)


def params(experiment: dict, **analysis):
    cur = {"train_trials_per_class": 1, "test_trials_per_class": 10, "sequences": SEQUENCES}
    sections = {"experiment": experiment, "analysis": analysis, "score": {"models": {"robust": "m"}},
                "enhance": {"model": "m", "budgets": [0.25, 0.5, 1, 2, 4, 8]},
                "curricula": {"control": {"preset": "control", "weight": 2, **cur}, "lwise": {"preset": "lwise", **cur}}}
    return toy_params(sections, models={"m": {"arch": "smallcnn-tiny", "corpus": "toy", "checkpoint": "x.pt"}})


def p_answer(condition: str, trial: dict, scores: dict) -> float:
    """The simulated policy: P(correct) from the image's score (and the condition on the test)."""
    if trial["budget"] or condition != "lwise" or trial["phase"] != "test":
        return p_correct(scores[trial["id"]], trial["budget"])
    return 1 / (1 + math.exp(-(B0 + B1 * scores[trial["id"]] + BOOST)))


def image_policy(images: dict, scores: dict, condition: dict, *, catch_wrong: int = 0, skip_first_test: bool = False):
    """Answer what the page shows: the image's class with probability p_answer, else a wrong one;
    the first ``catch_wrong`` catch trials wrongly; pages: Continue / I agree."""
    state = {"skipped": False, "catch": 0}

    def choose(s: dict, rng: np.random.Generator) -> int | None:
        if s["shape"]:
            state["catch"] += 1
            right = SHAPES.index(s["shape"])
            return 1 - right if state["catch"] <= catch_wrong else right
        if not s["image"]:
            return 0
        t = images[s["image"]]
        if skip_first_test and t["phase"] == "test" and not state["skipped"]:
            state["skipped"] = True
            return None
        names = condition["layout"]()["choice_names"]
        correct = condition["layout"]()["choice_labels"].index(t["label"])
        assert s["names"] == names  # the participant's own aliases, in their own positions
        if rng.random() < p_answer(condition["name"](), t, scores):
            return correct
        return int(rng.choice([i for i in range(len(CLASSES)) if i != correct]))

    return choose


@pytest.fixture(scope="session")
def jspsych_lib(tmp_path_factory):
    return npm_install(tmp_path_factory.mktemp("jspsych"))


def layout_of(page) -> dict:
    return page.evaluate("() => { const e = window.lwiseExperiment; if (!e || !e.assignment) return null;"
                         " return e.config.conditions[e.assignment.condition].sequences[e.assignment.sequence]; }")


def assignment_of(page) -> dict:
    return page.evaluate("() => window.lwiseExperiment && window.lwiseExperiment.assignment")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, jspsych_lib, browser):
    """The collector build served on 127.0.0.1 and 10 participants side by side, one killed
    mid-block and reopened in a fresh browser context, one reloaded."""
    root = tmp_path_factory.mktemp("lab")
    shots = Path(os.environ.get("LWISE_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("LWISE_DATA", str(root / "data"))
    mp.setenv("LWISE_CACHE", str(root / "cache"))
    corpus = make_corpus(root / "data")
    make_curricula(root / "data", corpus, sequences=SEQUENCES, train=1, test=10)
    Experiment(params(FAST), "toy").run()
    shutil.copytree(root / "data" / "toy" / "experiment", root / "main")
    collector = Collector(root / "main", root / "store", jspsych_lib)
    images, scores = images_of(root / "main"), corpus["scores"]
    contexts, log = [], []
    people = []
    for k in range(10):
        ctx = browser.new_context(viewport={"width": 1000, "height": 700})
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("console", lambda m: m.type == "error" and "done.html" not in str(m.location)  # the study site
                and log.append(f"{m.text} {m.location}"))
        page.on("pageerror", lambda e: log.append(str(e)))
        name = "inattentive" if k == 9 else f"p{k}"
        me: list[Participant] = []  # the page may be replaced (a killed browser reopened)
        live = {"layout": lambda me=me: layout_of(me[0].page), "name": lambda me=me: assignment_of(me[0].page)["condition"]}
        how = {"catch_wrong": 3} if k == 9 else {"skip_first_test": k == 1}
        me.append(Participant(name, page, f"{collector.url}/index.html?PROLIFIC_PID={name}&STUDY_ID=st1&SESSION_ID=se{k}",
                              image_policy(images, scores, live, **how), seed=1000 + k))
        people.append(me[0])
    _schedule(people, shots, browser, contexts, log)
    run_side_by_side(people)
    for p in people:  # each redirected, after every row was acknowledged (and no page is mid-navigation
        code = "SCR0" if p.name == "inattentive" else "C0DE"  # when its context closes: that can hang)
        p.page.wait_for_url(f"**/done.html?cc={code}", timeout=10_000)
    for ctx in contexts:
        ctx.close()
    yield SimpleNamespace(root=root, corpus=corpus, collector=collector, people=people, shots=shots, errors=log,
                          images=images)
    collector.close()
    mp.undo()


def _schedule(people: list[Participant], shots: Path, browser, contexts: list, log: list) -> None:
    """Screenshots, a kill mid-block (p2: its whole browser context) and a reload (p3)."""
    def shoot(name: str):
        return lambda p, s: p.page.screenshot(path=str(shots / name))

    def trial_shot(p, s):
        if s["screen"] == "buttons" and s["image"] and "trial.png" not in p.shot_done:
            p.page.screenshot(path=str(shots / "trial.png"))
            p.ring = s
            p.shot_done.add("trial.png")
        elif s["screen"] == "feedback" and "feedback.png" not in p.shot_done:
            p.page.screenshot(path=str(shots / "feedback.png"))
            p.shot_done.add("feedback.png")
        p.events[s["index"] + 1] = trial_shot

    def kill(p, s):  # the browser dies mid-block: a fresh context has no local checkpoint
        p.killed_at = len([x for x in p.screens if x["screen"] == "buttons" and (x["image"] or x["shape"])])
        contexts.remove(p.page.context)  # (closing a context twice can hang Playwright)
        p.page.context.close()
        ctx = browser.new_context(viewport={"width": 1000, "height": 700})
        contexts.append(ctx)
        p.page = ctx.new_page()
        p.page.on("pageerror", lambda e: log.append(str(e)))
        p.page.goto(p.url, wait_until="commit")
        s["abandon"] = True

    def reload(p, s):
        p.page.reload(wait_until="commit")
        p.events[len(p.screens)] = resumed
        s["abandon"] = True

    def resumed(p, s):
        if "Welcome back" in s["text"]:
            p.page.screenshot(path=str(shots / "resume.png"))

    people[0].shot_done = set()
    people[0].on_done = shoot("end.png")
    people[0].events[0] = shoot("consent.png")
    people[0].events[5] = trial_shot
    people[2].events[20] = kill  # in the training block (screens 3-30), mid-block
    people[3].events[40] = reload


# ------------------------------------------------------------------ the collector study ---------
def test_conditions_follow_the_weights_and_no_sequence_is_shared(lab):
    log = [json.loads(line) for line in (lab.root / "store" / "assignments.jsonl").read_text().splitlines()]
    assert sorted(a["index"] for a in log) == list(range(10)) and len(log) == 10
    slots = {"control": SimpleNamespace(weight=2), "lwise": SimpleNamespace(weight=1)}
    for a in log:  # condition = index mod slots, the sequences in order: exactly the weights
        assert (a["condition"], a["sequence"]) == participant_condition(slots, a["index"])
    assert Counter(a["condition"] for a in log) == {"control": 7, "lwise": 3}
    assert len({(a["condition"], a["sequence"]) for a in log}) == 10
    assert lab.errors == []


def test_every_trial_is_saved_once_through_a_kill_and_a_reload(lab):
    sessions, skipped = read_responses(lab.root / "store", "toy")
    assert len(sessions) == 10 and {s.file for s in skipped} == {"collector.json", "assignments.jsonl", ".lock"}
    manifest = json.loads((lab.root / "main" / "manifest.json").read_text())
    for s in sessions:
        layout = manifest["conditions"][s.first("condition")]["sequences"][s.first("sequence")]
        seq = json.loads((lab.root / "main" / (layout["file"] + ".json")).read_text())
        rows = [json.loads(line) for line in (lab.root / "store" / s.file).read_text().splitlines()]
        assert len({r["lwise_key"] for r in rows}) == len(rows)  # each saved row once
        assert [r["position"] for r in s.trials] == list(range(len(seq))) and s.completed
        for r, t in zip(s.trials, seq, strict=True):
            assert {k: r[k] for k in t} == t and r["correct"] == (r["choice"] == t["correct_choice"])
        assert s.first("prolific_pid") == s.participant and s.first("study_id") == "st1"
        assert s.first("session_id").startswith("se")
    by = {s.participant: s for s in sessions}
    killed = by["p2"]
    loads = Counter(r["load"] for r in killed.rows)
    assert set(loads) == {1, 2} and any(r["lwise_role"] == "resume" and r["load"] == 2 for r in killed.rows)
    for s in (killed, by["p3"]):  # killed (fresh browser) and reloaded (same browser), both mid-block
        assert {r["load"] for r in s.rows} == {1, 2}
        before = max((r for r in s.trials if r["load"] == 1), key=lambda r: r["position"])
        after = min((r for r in s.trials if r["load"] == 2), key=lambda r: r["position"])
        assert after["position"] == before["position"] + 1 and after["block"] == before["block"]  # the next trial
    assert (lab.shots / "resume.png").is_file()


def test_display_geometry_is_recorded_and_choices_ring_the_image(lab):
    sessions, _ = read_responses(lab.root / "store", "toy")
    for s in sessions:
        for r in s.trials:
            assert (r["screen_w"], r["screen_h"], r["window_w"], r["window_h"]) == (1000, 700, 1000, 700)
            assert r["device_pixel_ratio"] == 1 and r["stimulus_px"] == round(0.35 * 700)
            assert r["t_page_ms"] > 0 and r["session_ms"] > 0
    ring = lab.people[0].ring
    x, y, w, h = ring["image_box"]
    assert round(w) == round(h) == 245
    cx, cy = x + w / 2, y + h / 2
    angles = sorted(math.degrees(math.atan2(by - cy, bx - cx)) % 360 for bx, by in ring["at"])
    assert len(angles) == 3 and all(50 < b - a < 190 for a, b in zip(angles, angles[1:], strict=False))
    for bx, by in ring["at"]:  # around the image, outside it
        assert not (x < bx < x + w and y < by < y + h) and math.hypot(bx - cx, by - cy) < w


def test_analyze_recovers_the_policy_and_excludes_catch_accuracy_085(lab):
    mp = pytest.MonkeyPatch()
    mp.setenv("LWISE_DATA", str(lab.root / "data"))
    try:
        # trial-level intervals (the reference's); 99.9% so the check of a random policy is not flaky
        out = Analyze(params(FAST, bootstrap=4000, ci=0.999), "toy", lab.root / "store").run()
    finally:
        mp.undo()
    metrics = json.loads((out / "metrics.json").read_text())
    with (out / "participants.csv").open() as f:
        people = {r["participant"]: r for r in csv.DictReader(f)}
    assert people["inattentive"]["catch_accuracy"] == "0.85" and people["inattentive"]["included"] == "False"
    assert people["inattentive"]["exclusion"] == "catch accuracy 0.85 < 0.9"  # the reference's default
    assert all(r["included"] == "True" for p, r in people.items() if p != "inattentive")
    assert metrics["participants"] == {"read": 10, "included": 9, "excluded": 1}
    expected = expected_accuracy(lab)
    for cond, acc in expected.items():
        got = metrics["conditions"][cond]["accuracy"]
        assert got["low"] <= acc <= got["high"], (cond, acc, got)
    gain = metrics["conditions"]["lwise"]["gain_vs_control"]
    chance = 1 / len(CLASSES)
    want = (expected["lwise"] - chance) / (expected["control"] - chance) - 1
    assert gain["low"] <= want <= gain["high"] and gain["mean"] > 0
    assert metrics["conditions"]["lwise"]["relative_training_time_reference"]["mean"] > 0
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["score"] == "robust_gt_logit" and cal["conditions"] == ["control"]
    controls = sum(r["included"] == "True" and r["condition"] == "control" for r in people.values())
    assert cal["trials"] + cal["n_trimmed"] == controls * 30  # natural test trials of the included controls
    assert abs(cal["slope"] - B1) < 0.7 and abs(cal["intercept"] - B0) < 0.7, cal
    assert cal["fits"]["robust_gt_logit"]["auc_cv_mean"] > cal["fits"]["standard_gt_logit"]["auc_cv_mean"]
    assert (out / "psychds" / "dataset_description.json").is_file()
    for fig in ("accuracy", "learning_curves", "calibration"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000
    shutil.copytree(out / "figures", lab.shots / "analysis", dirs_exist_ok=True)


def expected_accuracy(lab) -> dict[str, float]:
    """The policy's test accuracy per condition on the trials each included participant saw."""
    sessions, _ = read_responses(lab.root / "store", "toy")
    out: dict[str, list[float]] = {}
    for s in sessions:
        if s.participant == "inattentive":
            continue
        cond = s.first("condition")
        test = [t for t in s.trials if t["kind"] == "main" and t["phase"] == "test"]
        ps = [0.0 if t["timed_out"] else p_answer(cond, t, lab.corpus["scores"]) for t in test]
        out.setdefault(cond, []).append(float(np.mean(ps)))
    return {c: float(np.mean(v)) for c, v in out.items()}


def test_end_screen_shows_accuracy_bonus_and_code_then_redirects(lab):
    """(The fixture waited for each redirect to the completion URL with the code.) The participant
    below 0.9 on catch trials gets the screen-out code and no bonus."""
    for p in lab.people:
        code = "SCR0" if p.name == "inattentive" else "C0DE"
        assert "of the test images correctly" in p.final["text"] and f"Completion code: {code}" in p.final["text"]
    assert any("Your bonus: USD" in p.final["text"] for p in lab.people)
    sessions, _ = read_responses(lab.root / "store", "toy")
    ends = {s.participant: next(r for r in s.rows if r["lwise_role"] == "end") for s in sessions}
    assert ends["inattentive"]["outcome"] == "screened_out" and ends["inattentive"]["bonus"] is None
    assert ends["inattentive"]["catch_accuracy"] == pytest.approx(0.85)
    assert all(e["outcome"] == "complete" and e["code"] == "C0DE" for p, e in ends.items() if p != "inattentive")
    (lab.shots / "end.txt").write_text(lab.people[0].final["text"])


# ------------------------------------------------------------------ keys, post_url, JATOS -------
@pytest.fixture(scope="module")
def keys_run(lab, jspsych_lib, browser):
    """The MHIST-like build from a static host; one participant; the lockouts measured."""
    server = Server(jspsych_lib)
    mp = pytest.MonkeyPatch()
    mp.setenv("LWISE_DATA", str(lab.root / "data"))
    extra = {"library_url": server.url + "/lib/{package}", "post_url": server.url + "/save"}
    Experiment(params({**KEYS, **extra}), "toy").run()
    mp.undo()
    shutil.copytree(lab.root / "data" / "toy" / "experiment", lab.root / "keys")
    server.mounts["keys"] = lab.root / "keys"
    trials = json.loads((lab.root / "keys" / "sequences" / "lwise" / "001.json").read_text())
    first_images = list(dict.fromkeys(t["image"] for t in trials if t["image"]))
    server.fail["/keys/" + first_images[1]] = 2  # two failed loads, then it arrives: retried
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script("window.jatos = {appendResultData: d => { (window.jatosGot = window.jatosGot || [])"
                         ".push(d); return Promise.resolve(); }};")
    page.goto(f"{server.url}/keys/condition-lwise.html?PROLIFIC_PID=k0&sequence=1")
    page.evaluate(FEEDBACK_CLOCK)
    run = _keys_session(page, trials, lab.shots)
    run.update(server=server, trials=trials, errors=errors, first_images=first_images,
               jatos=page.evaluate("window.jatosGot"))
    yield run
    page.close()
    server.close()


def _keys_session(page, trials: list[dict], shots: Path) -> dict:
    """Answer by position; the first main trial wrong, the second right; on the third feedback
    nobody presses a key for 2.5 s. Space is pressed every 50 ms from the onset otherwise."""
    out = {"screens": [], "waited": None, "first_trial_at": None}
    n, mains = 0, 0
    while True:
        s = page.wait_for_function(STATE, polling=5, timeout=20_000).json_value()
        if s["screen"] == "done":
            break
        out["screens"].append(s)
        if s["screen"] in ("buttons", "feedback"):
            answer(page, s, 0)  # Continue (pages); feedback is not reported before its lockout ends
            continue
        out["first_trial_at"] = out["first_trial_at"] or page.evaluate("performance.now()")
        t = s["trial"] = trials[n]
        n += 1
        s.update(keys=["f", "j", "k"], delay=100, early_key="j" if n <= 2 else None)
        wrong = t["kind"] == "main" and mains == 0
        mains += t["kind"] == "main"
        choice = (t["correct_choice"] + 1) % len(CLASSES) if wrong else t["correct_choice"]
        answer(page, s, choice)
        if t["feedback"]:
            _through_feedback(page, shots, out, t, mains)
    out["final"] = s
    out["feedback_times"] = page.evaluate("window.lwiseFeedbackTimes")
    (shots / "feedback-times.json").write_text(json.dumps([round(b - a) for a, b in out["feedback_times"]]))
    return out


def _through_feedback(page, shots: Path, out: dict, t: dict, mains: int) -> None:
    page.wait_for_selector(".lwise-feedback", timeout=10_000)
    if t["kind"] == "main" and mains == 1:
        page.screenshot(path=str(shots / "feedback-keys.png"))
    if t["kind"] == "main" and mains == 3 and out["waited"] is None:
        page.wait_for_timeout(2500)  # self-paced: it must still be there
        out["waited"] = page.query_selector(".lwise-feedback") is not None
    while page.query_selector(".lwise-feedback"):
        page.keyboard.press(" ")
        page.wait_for_timeout(50)


def test_self_paced_feedback_waits_for_the_key_after_the_lockout(keys_run):
    times = [b - a for a, b in keys_run["feedback_times"]]
    kinds = [(t["kind"], t["phase"]) for t in keys_run["trials"] if t["feedback"]]
    assert len(times) == len(kinds) and keys_run["waited"] is True
    wrong = times[[k for k, _ in kinds].index("main")]
    assert 1500 <= wrong < 1500 + 400, times  # the first main answer was wrong: 1500 ms lockout, then space
    rights = [x for x, (k, _) in zip(times, kinds, strict=True) if k != "main"][:3]
    assert all(500 <= x < 500 + 400 for x in rights), times  # correct answers (catch trials): 500 ms
    rows = [r for b in keys_run["server"].posted for r in b["rows"]]
    correct = {r["position"]: r["correct"] for r in rows if r["lwise_role"] == "response"}
    fb = [r for r in rows if r["lwise_role"] == "feedback"]
    assert len(fb) == len(times) and all(r["rt"] >= (500 if correct[r["position"]] else 1500) for r in fb)
    assert any(r["rt"] > 2500 for r in fb)  # the feedback nobody dismissed stayed up


def test_keys_labels_post_url_jatos_and_preload(keys_run):
    batches = keys_run["server"].posted
    rows = [r for b in batches for r in b["rows"]]
    assert len(batches) > 5 and all(b["participant"] == "k0" and b["condition"] == "lwise" for b in batches)
    assert len({r["lwise_key"] for r in rows}) == len(rows)  # each row sent once
    jatos = [json.loads(line) for chunk in keys_run["jatos"] for line in chunk.splitlines()]
    assert jatos == rows  # the same rows appended to JATOS
    responses = [r for r in rows if r["lwise_role"] == "response"]
    assert [r["position"] for r in responses] == list(range(len(keys_run["trials"])))
    names = responses[0]["choice_names"]
    assert sorted(names) == ["Benign", "Malignant", "ring"]  # class_labels; the key mapping shuffled
    prompts = [s for s in keys_run["screens"] if s["screen"] == "keys"]
    for s in prompts:
        want = ["Circle", "Triangle"] if s["trial"]["kind"] == "catch" else names
        assert all(f"{k.upper()} = {n}" in s["prompt"] for k, n in zip("FJK", want, strict=False))
    wrong = [r for r in responses if not r["correct"]]
    assert len(wrong) == 1 and wrong[0]["kind"] == "main" and wrong[0]["phase"] == "train"
    assert all(r["response"] == "fjk"[r["choice"]] for r in responses)  # the early wrong keys were ignored
    assert len([r for r in rows if r["lwise_role"] == "stimulus"]) == len(responses)
    gets = keys_run["server"].gets
    t0 = next(t for t, p in gets if p.endswith("condition-lwise.html"))
    image_gets = [p for t, p in gets if "/images/" in p]
    assert image_gets.count("/keys/" + keys_run["first_images"][1]) == 3  # two failures, then retried
    first_trial = [p for t, p in gets if "/images/" in p and t - t0 < 1.0]
    assert len(set(first_trial)) <= 8 < len(set(keys_run["first_images"]))  # chunks ahead of need, not all at once
    waits = [r for r in rows if r["lwise_role"] == "wait"]
    assert waits and keys_run["errors"] == []


# ------------------------------------------------------------------ from disk -------------------
def test_page_runs_from_disk_and_assigns_as_python_does(lab, browser, jspsych_lib, tmp_path):
    """From file:// (node_modules beside the page, as an offline lab installs it) the sequence
    loads through its .js twin; the page's hash assignment of a participant id is
    lwise_build.ops.experiment_design.assign."""
    main = tmp_path / "main"
    shutil.copytree(lab.root / "main", main)
    (main / "node_modules").symlink_to(jspsych_lib, target_is_directory=True)
    manifest = json.loads((main / "manifest.json").read_text())
    weights = {n: c["weight"] for n, c in manifest["conditions"].items()}
    counts = {n: len(c["sequences"]) for n, c in manifest["conditions"].items()}
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def assigned(query: str) -> dict:
        page.goto(main.as_uri() + "/index.html?" + query)
        page.wait_for_function("() => window.lwiseExperiment || document.querySelector('.lwise-error')")
        return page.evaluate("window.lwiseExperiment && window.lwiseExperiment.assignment")

    for pid in ("disk", "PID-5f3a", "Zoë 7"):
        got = assigned("PROLIFIC_PID=" + quote(pid))
        assert (got["condition"], got["sequence"]) == assign(pid, weights, counts, manifest["seed"])
    slots = {n: SimpleNamespace(weight=int(w), sequences=counts[n]) for n, w in weights.items()}
    for index in (0, 1, 5, 11):  # blocked assignment by participant number, as the reference deployed it
        got = assigned(f"index={index}")
        assert (got["condition"], got["sequence"], got["how"]) == (*participant_condition(slots, index), "index")
    assigned("index=24")
    assert "does not exist" in page.inner_text("body")
    assigned("condition=nope")
    assert "Unknown condition nope" in page.inner_text("body")
    page.close()


def test_a_page_that_cannot_save_or_load_jspsych_says_so(lab, browser, tmp_path):
    """Opened from disk with only the collector to save to, the page refuses to start; with jsPsych
    unreachable it names the URL it tried (not the {package}@{version} template, issue 26)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LWISE_DATA", str(tmp_path / "data"))
    shutil.copytree(lab.root / "data" / "toy", tmp_path / "data" / "toy", ignore=shutil.ignore_patterns("experiment"))
    page = browser.new_page()
    try:
        lib = lab.collector.url + "/node_modules/{package}"
        for extra, message in (({"save": ["collector"], "library_url": lib}, "nowhere to save your responses"),
                               ({"library_url": "missing/{package}"},
                                "jsPsych could not be loaded from missing/jspsych/dist/index.browser.min.js")):
            out = Experiment(params({**FAST, **extra}), "toy").run()
            page.goto((out / "index.html").as_uri() + "?participant=x")
            page.wait_for_selector(".lwise-error", timeout=10_000)
            assert message in page.inner_text("body")
    finally:
        mp.undo()
        page.close()
