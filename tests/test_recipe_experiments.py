"""The L-WISE learning-task recipes build experiments with the published protocol (shared/
REFERENCE.md, "Curriculum"): choice labels, keys, timing and trials per block, read from the built
experiment of each recipe on a small synthetic corpus with the recipe's classes and splits."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from support.tables import write_images_table

from lwise_build.config.load import parse_params
from lwise_build.stages.curriculum.stage import Curriculum
from lwise_build.stages.experiment.stage import Experiment

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
#: recipe -> (its classes, the split the curricula draw from, images per class)
TASKS = {"inat_moths": (["idaea_a", "idaea_b", "idaea_c", "idaea_d"], {"train": 50, "validation": 12}),
         "ham10000": (["bcc", "bkl", "mel", "nv"], {"validation": 60}),
         "mhist": (["HP", "SSA"], {"test": 200})}
PUBLISHED = {"feedback": "self_paced", "feedback_correct_ms": 500, "feedback_incorrect_ms": 1500, "fixation_ms": 0,
             "click_delay_ms": 200, "response_limit_ms": 10_000, "gap_ms": 200, "stimulus_ms": None,
             "stimulus_size": 0.35, "stimulus_max": 0.7, "catch_per_block": 2,
             "repeats_per_block": [0, 1, 1, 1, 1, 1, 1, 1, 3, 3], "repeat_image": "held_out",
             "bonus_thresholds": [0.75, 0.85, 0.95], "bonus_amounts": [5, 10, 20], "bonus_currency": "USD",
             "show_accuracy": True, "time_limit_page": True, "choice_order": "shuffled"}


def synthetic_corpus(root: Path, corpus: str, classes: list[str], splits: dict[str, int]) -> None:
    """Tiny images with the recipe's classes and splits, scores, and every budget enhanced."""
    from datasets import ClassLabel, Features, Image, Value

    from lwise_build.io.images import encode_png
    from lwise_build.io.tables import write_table

    rng = np.random.default_rng(0)
    labels = [c for split, n in splits.items() for c in range(len(classes)) for _ in range(n)]
    names = [s for s, n in splits.items() for _ in range(len(classes)) for _ in range(n)]
    arrays = rng.integers(0, 255, size=(len(labels), 8, 8), dtype=np.uint8)
    ids = write_images_table(root / corpus / "images", arrays, labels, names, classes)
    logit = rng.normal(size=len(ids))
    feats = Features({"id": Value("string"), "label": Value("int64"), "split": Value("string"),
                      "robust_gt_logit": Value("float64"), "robust_difficulty": Value("float64")})
    write_table([{"id": ids, "label": labels, "split": names, "robust_gt_logit": logit.tolist(),
                  "robust_difficulty": ((logit.max() - logit) / np.ptp(logit)).tolist()}], feats, root / corpus / "scores")
    efeats = Features({"id": Value("string"), "label": ClassLabel(names=classes), "split": Value("string"),
                       "budget": Value("float64"), "image": Image()})
    for budget in (0.25, 0.5, 1, 2, 4, 8):
        write_table([{"id": ids, "label": labels, "split": names, "budget": [float(budget)] * len(ids),
                      "image": [{"bytes": encode_png(255 - a), "path": None} for a in arrays]}], efeats,
                    root / corpus / "enhanced" / f"eps={budget:g}")


def recipe_params(recipe: str, sequences: int):
    """The recipe with fewer sequences per condition (the protocol untouched)."""
    data = yaml.safe_load((RECIPES / f"{recipe}.yaml").read_text())
    corpus = next(iter(data["corpora"].values()))
    for cur in corpus["curricula"].values():
        cur["sequences"] = sequences * cur.get("weight", 1)
    return parse_params(data), next(iter(data["corpora"]))


@pytest.mark.parametrize("recipe", sorted(TASKS))
def test_recipe_builds_the_published_protocol(recipe: str, data_root: Path):
    classes, splits = TASKS[recipe]
    params, corpus = recipe_params(recipe, sequences=2)
    synthetic_corpus(data_root, corpus, classes, splits)
    Curriculum(params, corpus).run()
    out = Experiment(params, corpus).run()
    manifest = json.loads((out / "manifest.json").read_text())
    p = manifest["params"]
    assert {k: p[k] for k in PUBLISHED} == PUBLISHED
    assert p["consent_text"] and p["save"] == ["collector", "jatos", "download"]
    per_class = (8, 10) if recipe == "mhist" else (4, 5)  # training / test trials per class and block
    layouts = [s for c in manifest["conditions"].values() for s in c["sequences"]]
    if recipe == "mhist":  # F/J with fixed Benign/Malignant labels, the key mapping shuffled
        assert p["response"] == "keys" and p["keys"] == ["f", "j"]
        assert all(sorted(s["choice_names"]) == ["Benign", "Malignant"] for s in layouts)
        assert all(dict(zip(s["choice_labels"], s["choice_names"], strict=True)) == {0: "Benign", 1: "Malignant"}
                   for s in layouts)
        assert {tuple(s["choice_labels"]) for s in layouts} == {(0, 1), (1, 0)}
    else:  # Leda/Tyro/Eris/Ajax in a ring, their mapping to classes and their positions per participant
        assert p["response"] == "buttons" and p["choice_layout"] == "ring" and p["choice_names"] == "aliases"
        assert all(sorted(s["choice_names"]) == ["Ajax", "Eris", "Leda", "Tyro"] for s in layouts)
        mappings = {tuple(dict(zip(s["choice_labels"], s["choice_names"], strict=True))[c] for c in range(4))
                    for s in layouts}
        assert len(mappings) > 3 and len({tuple(s["choice_labels"]) for s in layouts}) > 3
    for layout in layouts:
        trials = json.loads((out / (layout["file"] + ".json")).read_text())
        kinds = Counter(t["kind"] for t in trials)
        assert kinds == {"main": 8 * per_class[0] * len(classes) + 2 * per_class[1] * len(classes),
                         "repeat": 13, "catch": 20}
        for b in range(1, 11):
            block = [t for t in trials if t["block"] == b]
            main = sum(t["kind"] == "main" for t in block)
            assert main == (per_class[0] if b <= 8 else per_class[1]) * len(classes)
            assert sum(t["kind"] == "catch" for t in block) == 2
            assert sum(t["kind"] == "repeat" for t in block) == PUBLISHED["repeats_per_block"][b - 1]
            assert all(t["feedback"] == (b <= 8) for t in block)
        assert len({t["id"] for t in trials if t["kind"] == "repeat"}) == 1
