"""A tiny corpus for the experiment tests: images, scores, one enhanced budget and two curricula.

Every image has a known score (``robust_gt_logit``, spread over [-2, 2]); the simulated
participants answer correctly with a probability that depends on it (:func:`p_correct`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .tables import write_images_table

CLASSES = ["bar", "dot", "ring"]
#: The simulated policy: logit P(correct) = B0 + B1 * score on natural images; enhanced: P_ENHANCED.
B0, B1, P_ENHANCED = 0.4, 1.6, 0.97


def p_correct(score: float, budget: float) -> float:
    return P_ENHANCED if budget else 1 / (1 + math.exp(-(B0 + B1 * score)))


def make_corpus(root: Path, per_class: int = 50) -> dict:
    """Images (train 60% / test 40%), scores, enhanced eps=2 (train split) under root/toy."""
    from datasets import ClassLabel, Features, Image, Value

    from lwise_build.io.images import encode_png
    from lwise_build.io.tables import write_table

    rng = np.random.default_rng(0)
    size = 16
    yy, xx = np.mgrid[:size, :size]
    shapes = [(xx == 8), ((yy - 8) ** 2 + (xx - 8) ** 2 < 9), np.abs(np.hypot(yy - 8, xx - 8) - 5) < 1.2]
    arrays, labels, splits, scores = [], [], [], []
    for c in range(len(CLASSES)):
        for i in range(per_class):
            img = np.clip(shapes[c] * (0.3 + 0.7 * i / per_class) + 0.25 * rng.random((size, size)), 0, 1)
            arrays.append((img * 255).astype(np.uint8))
            labels.append(c)
            splits.append("train" if i % 5 < 3 else "test")
            scores.append(round(-2 + 4 * ((i * 7) % per_class) / (per_class - 1), 4))
    ids = write_images_table(root / "toy" / "images", np.stack(arrays), labels, splits, CLASSES)
    n = len(ids)
    cols = {"id": ids, "label": labels, "split": splits, "robust_gt_logit": scores,
            "robust_difficulty": [round((2 - s) / 4, 4) for s in scores],
            "standard_gt_logit": [round(float(v), 4) for v in rng.normal(size=n)]}
    feats = {"id": Value("string"), "label": Value("int64"), "split": Value("string"),
             **{k: Value("float64") for k in ("robust_gt_logit", "robust_difficulty", "standard_gt_logit")}}
    write_table([cols], Features(feats), root / "toy" / "scores")
    train = [k for k in range(n) if splits[k] == "train"]
    enh = {"id": [ids[k] for k in train], "label": [labels[k] for k in train],
           "split": ["train"] * len(train), "budget": [2.0] * len(train),
           "image": [{"bytes": encode_png(255 - arrays[k]), "path": None} for k in train]}
    efeats = Features({"id": Value("string"), "label": ClassLabel(names=CLASSES), "split": Value("string"),
                       "budget": Value("float64"), "image": Image()})
    write_table([enh], efeats, root / "toy" / "enhanced" / "eps=2")
    return {"ids": ids, "labels": labels, "splits": splits, "scores": dict(zip(ids, scores, strict=True))}


def make_curricula(root: Path, corpus: dict, sequences: int = 3, train: int = 1, test: int = 4) -> list[dict]:
    """``control`` and ``lwise``: block 1 training (lwise: eps=2), block 2 test (natural)."""
    from lwise_build.io.tables import write_table
    from lwise_build.stages.curriculum.stage import table_features

    rng = np.random.default_rng(1)
    by = {(s, c): [i for i, lab, sp in zip(corpus["ids"], corpus["labels"], corpus["splits"], strict=True)
                   if lab == c and sp == s] for s in ("train", "test") for c in range(len(CLASSES))}
    rows = []
    for name in ("control", "lwise"):
        for seq in range(sequences):
            trial = 0
            for block, (phase, k) in enumerate((("train", train), ("test", test)), start=1):
                picks = [(c, i) for c in range(len(CLASSES)) for i in rng.choice(by[(phase, c)], k, replace=False)]
                for j in rng.permutation(len(picks)):
                    c, i = picks[j]
                    budget = 2.0 if (name == "lwise" and phase == "train") else 0.0
                    rows.append({"curriculum": name, "sequence": seq, "trial": trial, "block": block,
                                 "phase": phase, "feedback": phase == "train", "id": str(i), "label": c,
                                 "budget": budget, "difficulty": 0.5, "selection": "random"})
                    trial += 1
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    write_table([cols], table_features(CLASSES), root / "toy" / "curricula")
    return rows


def built_sequence(experiment: Path, condition: str, sequence: int) -> tuple[dict, list[dict], str]:
    """(layout, trial variables, build) of one sequence of a built experiment folder."""
    import json

    manifest = json.loads((experiment / "manifest.json").read_text())
    layout = manifest["conditions"][condition]["sequences"][sequence]
    return layout, json.loads((experiment / (layout["file"] + ".json")).read_text()), manifest["build"]


def fake_session(experiment: Path, participant: str, condition: str, sequence: int,
                 correct: Callable[[dict], bool] | list[bool], *, complete: bool = True, step_ms: int = 1000,
                 corpus: str = "toy", start_ms: int = 5000) -> list[dict]:
    """Rows as the page saves them for a sequence of a built experiment (keyed, a few screens per
    trial), answered correctly where ``correct(trial)`` (or the list) says; for tests without a browser."""
    layout, trials, build = built_sequence(experiment, condition, sequence)
    flags = [correct(t) for t in trials] if callable(correct) else list(correct)
    common = {"participant": participant, "participant_source": "url", "condition": condition, "sequence": sequence,
              "corpus": corpus, "experiment_build": build, "choice_names": layout["choice_names"],
              "choice_labels": layout["choice_labels"], "response_mode": "buttons", "load": 1}
    rows = [{"lwise_role": "instructions", "trial_type": "html-button-response", "time_elapsed": start_ms,
             "trial_index": 0, "lwise_key": "p1:0", **common}]
    now, n = start_ms, len(layout["choice_names"])
    for t, ok in zip(trials, flags, strict=True):
        k = 2 if t["kind"] == "catch" else n
        choice = t["correct_choice"] if ok else (t["correct_choice"] + 1) % k
        for role in ("response", "feedback" if t["feedback"] else None, "gap"):
            if role is None:
                continue
            now += step_ms
            row = {"lwise_role": role, "trial_type": "html-keyboard-response", "time_elapsed": now,
                   "trial_index": len(rows), "lwise_key": f"t{t['position']}:{role}", "block": t["block"],
                   "phase": t["phase"], "position": t["position"], "rt": 400, **common}
            if role == "response":
                label = None if t["kind"] == "catch" else layout["choice_labels"][choice]
                row.update({**t, "lwise_role": "response", "trial_type": "html-button-response", "response": choice,
                            "choice": choice, "correct": ok, "timed_out": False, "response_label": label,
                            "t_page_ms": float(now), "session_ms": float(now), "screen_w": 1000, "screen_h": 700,
                            "window_w": 1000, "window_h": 700, "device_pixel_ratio": 1, "stimulus_px": 245})
            rows.append(row)
    if complete:
        rows.append({"lwise_role": "end", "trial_type": "html-keyboard-response", "time_elapsed": now,
                     "trial_index": len(rows), "lwise_key": f"p1:{len(rows)}", **common})
    return rows
