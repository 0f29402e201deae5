"""The experiment stage without a browser: the trial design, assignment and the files it writes."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from support.experiment_tiny import CLASSES, make_corpus, make_curricula
from support.params import toy_params
from support.reference import assign, fnv1a

from lwise_build.config.experiment import DEFAULT_ALIASES, JSPSYCH_PACKAGES, ExperimentParams
from lwise_build.errors import UserError
from lwise_build.io.tables import pngs_by_id, read_table, write_table
from lwise_build.ops.experiment_design import condition_weights, design
from lwise_build.stages.curriculum.stage import table_features
from lwise_build.stages.experiment.stage import Experiment


def params(**experiment):
    return toy_params({"experiment": experiment})


def rows(blocks: int = 2, per_block: int = 6) -> list[dict]:
    out = []
    for b in range(blocks):
        for k in range(per_block):
            n = b * per_block + k
            out.append({"trial": n, "block": b + 1, "phase": "train" if b == 0 else "test", "feedback": b == 0,
                        "id": f"{n:016x}", "label": n % 3, "budget": 2.0 if b == 0 else 0.0, "difficulty": 0.5,
                        "selection": "random"})
    return out


def images_for(trials: list[dict]) -> dict:
    return {(t["id"], t["budget"]): f"images/{t['id']}-{t['budget']:g}.png" for t in trials}


def test_design_inserts_catch_and_repeat_trials_at_seeded_positions():
    p = ExperimentParams(catch_per_block=2, repeats_per_block=(1, 2))
    base = rows()
    d = design(base, CLASSES, images_for(base), p, np.random.default_rng(3))
    kinds = Counter((t["block"], t["kind"]) for t in d.trials)
    assert kinds == {(1, "main"): 6, (1, "catch"): 2, (1, "repeat"): 1, (2, "main"): 6, (2, "catch"): 2,
                     (2, "repeat"): 2}
    assert [t["position"] for t in d.trials] == list(range(len(d.trials)))
    assert [t["trial"] for t in d.trials if t["kind"] == "main"] == [r["trial"] for r in base]
    for t in d.trials:
        assert set(t) == set(d.trials[0])  # every trial has every variable (jsPsych timeline variables)
        if t["kind"] == "repeat":
            orig = d.trials[t["repeat_of"]]
            assert orig["kind"] == "main" and t["repeat_of"] < t["position"]
            assert (orig["id"], orig["budget"], orig["image"]) == (t["id"], t["budget"], t["image"])
        if t["kind"] == "catch":
            assert t["image"] is None and t["correct_choice"] == ("circle", "triangle").index(t["shape"])
        if t["kind"] == "main":
            assert d.choice_labels[t["correct_choice"]] == t["label"] and t["label_name"] == CLASSES[t["label"]]
    for block in (1, 2):  # shapes balanced within a block
        assert sorted(t["shape"] for t in d.trials if t["kind"] == "catch" and t["block"] == block) == ["circle", "triangle"]
    again = design(base, CLASSES, images_for(base), p, np.random.default_rng(3))
    other = design(base, CLASSES, images_for(base), p, np.random.default_rng(4))
    assert again == d and [t["kind"] for t in other.trials] != [t["kind"] for t in d.trials]


def test_choice_layouts():
    base = rows(1, 3)
    fixed = design(base, CLASSES, images_for(base), ExperimentParams(), np.random.default_rng(0))
    assert fixed.choice_labels == [0, 1, 2] and fixed.choice_names == CLASSES
    names = set()
    for seed in range(8):
        d = design(base, CLASSES, images_for(base), ExperimentParams(choice_names="aliases", choice_order="shuffled"),
                   np.random.default_rng(seed))
        assert sorted(d.choice_labels) == [0, 1, 2] and set(d.choice_names) <= set(DEFAULT_ALIASES)
        assert len(set(d.choice_names)) == 3
        names.add(tuple(d.choice_names))
    assert len(names) > 4  # per-participant aliases and orders


def test_assignment_follows_weights_and_is_deterministic():
    weights, seqs = {"lwise": 2.0, "control": 1.0, "selection_only": 1.0}, {"lwise": 4, "control": 3, "selection_only": 2}
    got = [assign(f"P{i}", weights, seqs, seed=0) for i in range(4000)]
    share = Counter(c for c, _ in got)
    assert abs(share["lwise"] / 4000 - 0.5) < 0.03 and abs(share["control"] / 4000 - 0.25) < 0.03
    assert all(0 <= s < seqs[c] for c, s in got) and len({s for c, s in got if c == "lwise"}) == 4
    assert assign("P7", weights, seqs, seed=0) == got[7] and fnv1a("a") == 0xE40C292C  # the FNV-1a test vector
    weighted = {"a": SimpleNamespace(weight=3.0), "b": SimpleNamespace()}  # the hook for condition weights
    assert condition_weights(weighted, ["a", "b"]) == {"a": 3.0, "b": 1.0}
    with pytest.raises(UserError, match="sum to 0"):
        condition_weights({"a": SimpleNamespace(weight=0.0)}, ["a"])


@pytest.fixture
def toy(data_root: Path) -> dict:
    corpus = make_corpus(data_root, per_class=20)
    return {"corpus": corpus, "trials": make_curricula(data_root, corpus, sequences=2, train=2, test=2),
            "root": data_root}


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stage_writes_pages_images_once_and_one_file_per_sequence(toy):
    out = Experiment(params(), "toy").run()
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "condition-control.html", "condition-lwise.html", "experiment.js", "experiment.css",
            "lwise-trials.js", "lwise-store.js", "lwise-preload.js", "lwise-assign.js", "lwise-end.js",
            "manifest.json", "README.md", "images", "sequences"} == names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["order"] == ["control", "lwise"] and manifest["packages"] == JSPSYCH_PACKAGES
    assert {n: c["weight"] for n, c in manifest["conditions"].items()} == {"control": 1.0, "lwise": 1.0}
    shown = {(t["id"], t["budget"]) for t in toy["trials"]}
    natural = pngs_by_id(toy["root"] / "toy" / "images", {i for i, b in shown if not b})
    enhanced = pngs_by_id(toy["root"] / "toy" / "enhanced" / "eps=2", {i for i, b in shown if b})
    files = sorted((out / "images").iterdir())
    assert len(files) == len(shown)  # one file per distinct image as shown, shared by all sequences
    for name, seq in (("control", 0), ("lwise", 1)):
        trials = json.loads((out / "sequences" / name / f"{seq:03d}.json").read_text())
        want = [t for t in toy["trials"] if t["curriculum"] == name and t["sequence"] == seq]
        main = [t for t in trials if t["kind"] == "main"]
        assert [(t["id"], t["budget"], t["label"], t["block"]) for t in main] == \
            [(t["id"], t["budget"], t["label"], t["block"]) for t in want]
        for t in main:  # the PNG bytes exactly as the curriculum shows them, named by content
            png = (out / t["image"]).read_bytes()
            assert png == (enhanced if t["budget"] else natural)[t["id"]]
            assert Path(t["image"]).stem == hashlib.sha256(png).hexdigest()[:16]
        js = (out / "sequences" / name / f"{seq:03d}.js").read_text()
        assert json.loads(js.splitlines()[1].split(" = ", 1)[1].rstrip(";")) == trials
    page = (out / "index.html").read_text()
    assert 'src="https://unpkg.com/jspsych@8.3.0/dist/index.browser.min.js"' in page
    for script in ("lwise-trials.js", "lwise-store.js", "lwise-preload.js", "lwise-assign.js", "lwise-end.js",
                   "experiment.js"):
        assert f'<script src="{script}"></script>' in page
    assert "https://unpkg.com/jspsych@8.3.0/css/jspsych.css" in page
    assert '"fixed_condition":"lwise"' in (out / "condition-lwise.html").read_text()
    first = digest(out)
    assert digest(Experiment(params(), "toy").run()) == first  # byte-identical rebuild


def test_params_reach_the_page_and_odd_text_is_escaped(toy):
    out = Experiment(params(title="A </script> test", library_url="vendor/{package}", stimulus_ms=17), "toy").run()
    page = (out / "index.html").read_text()
    assert "<title>A &lt;/script&gt; test</title>" in page and page.count("</script>") == page.count("<script")
    config = json.loads(page.split('id="lwise-config">', 1)[1].split("</script>", 1)[0].replace("<\\/", "</"))
    assert config["params"]["stimulus_ms"] == 17 and config["title"] == "A </script> test"
    assert 'src="vendor/@jspsych/plugin-preload/dist/index.browser.min.js"' in page
    # the page's "cannot load jsPsych" message names the URL it tried, not the template (issue 26)
    assert config["library_hint"] == "vendor/jspsych/dist/index.browser.min.js"
    default = Experiment(params(), "toy").run() / "manifest.json"
    assert json.loads(default.read_text())["library_hint"] == "https://unpkg.com/jspsych@8.3.0/dist/index.browser.min.js"


def test_corpus_without_curricula_and_bad_params(data_root: Path):
    make_corpus(data_root, per_class=10)
    with pytest.raises(UserError, match="no curricula table"):
        Experiment(params(), "toy").run()
    write_table([], table_features(CLASSES), data_root / "toy" / "curricula")
    out = Experiment(params(), "toy").run()
    assert [p.name for p in out.iterdir()] == ["README.md"]
    rows_ = {k: [v] for k, v in {"curriculum": "c", "sequence": 0, "trial": 0, "block": 1, "phase": "train",
                                  "feedback": True, "label": 0, "budget": 0.0, "difficulty": 0.5,
                                  "selection": "random"}.items()}
    rows_["id"] = [read_table(data_root / "toy" / "images", columns=["id"])["id"][0].as_py()]
    write_table([rows_], table_features(CLASSES), data_root / "toy" / "curricula")
    for bad, msg in (({"response": "keys", "keys": ["f", "j"]}, r"experiment.keys: 3 choices need 3 keys"),
                     ({"choice_names": "aliases", "aliases": ["x", "y"]}, r"3 classes need 3 aliases"),
                     ({"repeats_per_block": [0, 1]}, r"repeats_per_block: 2 entries, but the curricula have 1"),):
        with pytest.raises(UserError, match=msg):
            Experiment(params(**bad), "toy").run()
    for bad, msg in (({"library_url": "https://cdn.example"}, "must contain {package}"),
                     ({"keys": ["f", "f"], "response": "keys"}, "every key must be different"),
                     ({"participant_param": "a b"}, "URL parameter name"), ({"fixation_ms": -1}, "must be >= 0"),
                     ({"save": []}, "would save nowhere"), ({"save": ["post"]}, "post_url must name the URL"),
                     ({"post_url": "https://x/save"}, "post_url is set but save does not list post"),
                     ({"save": ["disk"]}, "must be one of"), ({"save": ["jatos", "jatos"]}, "listed twice"),
                     ({"bonus_thresholds": [0.75, 0.85]}, "one amount per bonus threshold"),
                     ({"bonus_thresholds": [0.9, 0.8], "bonus_amounts": [1, 2]}, "must be ascending"),
                     ({"screenout_code": "X"}, "needs completion_code or completion_url")):
        with pytest.raises(UserError, match=msg):
            params(**bad)


def test_held_out_repeats_show_one_natural_image_outside_the_sequence(toy):
    out = Experiment(params(repeats_per_block=[1, 3]), "toy").run()
    images = read_table(toy["root"] / "toy" / "images", columns=["id", "label", "split"]).to_pylist()
    split = {r["id"]: r["split"] for r in images}
    held = set()
    for name in ("control", "lwise"):
        for seq in range(2):
            trials = json.loads((out / "sequences" / name / f"{seq:03d}.json").read_text())
            reps = [t for t in trials if t["kind"] == "repeat"]
            assert Counter(t["block"] for t in reps) == {1: 1, 2: 3}
            assert len({(t["id"], t["image"], t["budget"]) for t in reps}) == 1 and reps[0]["budget"] == 0.0
            assert reps[0]["id"] not in {t["id"] for t in trials if t["kind"] == "main"} and split[reps[0]["id"]] == "train"
            assert reps[0]["repeat_of"] is None and all(t["repeat_of"] == reps[0]["position"] for t in reps[1:])
            assert all(t["selection"] == "held_out" and t["trial"] is None for t in reps)
            assert (out / reps[0]["image"]).is_file()
            held.add(reps[0]["id"])
    assert len(held) > 1  # drawn per sequence
    earlier = Experiment(params(repeats_per_block=[0, 2], repeat_image="earlier"), "toy").run()
    trials = json.loads((earlier / "sequences" / "control" / "000.json").read_text())
    mains = {t["position"]: t for t in trials if t["kind"] == "main"}
    assert all(t["repeat_of"] in mains and mains[t["repeat_of"]]["id"] == t["id"] for t in trials if t["kind"] == "repeat")


def test_class_labels_replace_class_names_and_keys_shuffle(toy):
    p = params(response="keys", keys=["f", "j", "k"], class_labels={"bar": "Benign", "dot": "Malignant"},
               choice_order="shuffled")
    manifest = json.loads((Experiment(p, "toy").run() / "manifest.json").read_text())
    layouts = [s for c in manifest["conditions"].values() for s in c["sequences"]]
    for layout in layouts:
        names = {CLASSES[c]: n for c, n in zip(layout["choice_labels"], layout["choice_names"], strict=True)}
        assert names == {"bar": "Benign", "dot": "Malignant", "ring": "ring"}
    assert len({tuple(s["choice_labels"]) for s in layouts}) > 1  # the key mapping differs per sequence
    with pytest.raises(UserError, match=r"class_labels: 'cat' is not a class"):
        Experiment(params(class_labels={"cat": "x"}), "toy").run()
