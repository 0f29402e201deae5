"""A tiny finished build (every table export reads) for the export, hub and publish tests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Features, Image, Value
from PIL import Image as PILImage

from lwise_build.config.load import parse_params
from lwise_build.config.params import Params
from lwise_build.io.images import decode_png, encode_png
from lwise_build.io.tables import read_table, write_table

CORPUS = "toy"
REPO = "org/toy"


def tiny_params(**export: object) -> Params:
    """Params naming the toy corpus, a robust and a blur-trained model, one budget, two curricula."""
    train = {"epochs": 1}
    blocks = [{"phase": "train", "trials_per_class": 1, "budget": 0.5, "easiest": 0.5},
              {"phase": "train", "trials_per_class": 1}, {"phase": "test", "trials_per_class": 1}]
    data = {
        "seed": 0,
        "models": {
            "toy-robust": {"arch": "smallcnn-tiny", "corpus": CORPUS, "in_channels": 1,
                           "train": {**train, "adversarial": {"eps": 0.5}}},
            "toy-blur": {"arch": "smallcnn-tiny", "corpus": CORPUS, "in_channels": 1,
                         "train": {**train, "blur": {"preset": "strong"}}},
        },
        "corpora": {CORPUS: {
            "ingest": {"source": "builtin:digits", "image_size": 16, "grayscale": True},
            "score": {"models": {"robust": "toy-robust", "blur": "toy-blur"}},
            "enhance": {"model": "toy-robust", "budgets": [0.5], "splits": ["train", "test"]},
            "curricula": {"lwise": {"blocks": blocks, "sequences": 2},
                          "control": {"blocks": [{**b, "budget": 0.0} for b in blocks], "sequences": 1}},
            "metamers": {"generators": ["toy-robust"], "judges": ["toy-blur"], "per_class": 1},
            "export": {"repo_id": REPO, "version": "0.1.0", "authors": ["Doe, Jane", "ACME Lab"],
                       "date": "2025-01-02", "max_shard_mb": 1, **export},
        }},
    }
    return parse_params(data)


def _png(arr: np.ndarray) -> dict:
    return {"bytes": encode_png(arr.astype(np.uint8)), "path": None}


def _shifted(png: bytes, delta: int) -> np.ndarray:
    return np.clip(decode_png(png)[..., 0].astype(int) + delta, 0, 255)


def make_tiny_build(root: Path, *, metamers: bool = True, enhanced: bool = True) -> None:
    """Write scores, enhanced/eps=0.5, curricula, metamers, models and plots next to data/toy/images."""
    corpus = root / CORPUS
    images = read_table(corpus / "images").to_pylist()
    names = ["bar", "dot", "ring"]
    label = ClassLabel(names=names)
    _models(corpus)
    _scores(corpus, images, label)
    if enhanced:
        _enhanced(corpus, images, label)
    _curricula(corpus, images, label, enhanced)
    if metamers:
        _metamers(corpus, images, label)
    _plots(corpus)


def _models(corpus: Path) -> None:
    for i, name in enumerate(("toy-robust", "toy-blur")):
        folder = corpus / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {"arch": "smallcnn-tiny", "classes": ["bar", "dot", "ring"], "sha256": f"{i + 1:x}" * 64}
        (folder / "config.json").write_text(json.dumps(cfg))


def _scores(corpus: Path, images: list[dict], label: ClassLabel) -> None:
    rows: dict[str, list] = {"id": [], "label": [], "split": []}
    feats = {"id": Value("string"), "label": label, "split": Value("string")}
    for alias in ("robust", "blur"):
        for suffix, dtype in (("gt_logit", "float32"), ("difficulty", "float32"), ("difficulty_global", "float32"),
                              ("pred", "int64"), ("prob", "float32"), ("margin", "float32")):
            feats[f"{alias}_{suffix}"] = Value(dtype)
            rows[f"{alias}_{suffix}"] = []
    for i, img in enumerate(images):
        rows["id"].append(img["id"])
        rows["label"].append(img["label"])
        rows["split"].append(img["split"])
        for alias in ("robust", "blur"):
            for suffix in ("gt_logit", "difficulty", "difficulty_global", "prob", "margin"):
                rows[f"{alias}_{suffix}"].append((i % 7) / 7.0)
            rows[f"{alias}_pred"].append(img["label"])
    write_table([rows], Features(feats), corpus / "scores")


def _enhanced(corpus: Path, images: list[dict], label: ClassLabel) -> None:
    kept = [im for im in images if im["split"] in ("train", "test")]
    rows = {"id": [im["id"] for im in kept], "label": [im["label"] for im in kept],
            "split": [im["split"] for im in kept], "budget": [0.5] * len(kept),
            "image": [_png(_shifted(im["image"]["bytes"], 3)) for im in kept],
            "gt_logit_before": [0.1] * len(kept), "gt_logit_after": [0.9] * len(kept),
            "l2": [0.4] * len(kept), "linf": [0.05] * len(kept)}
    feats = Features({"id": Value("string"), "label": label, "split": Value("string"), "budget": Value("float32"),
                      "image": Image(), "gt_logit_before": Value("float32"), "gt_logit_after": Value("float32"),
                      "l2": Value("float32"), "linf": Value("float32")})
    write_table([rows], feats, corpus / "enhanced" / "eps=0.5")


def _curricula(corpus: Path, images: list[dict], label: ClassLabel, enhanced: bool) -> None:
    train = [im for im in images if im["split"] == "train"]
    test = [im for im in images if im["split"] == "test"]
    out: list[dict] = []
    for cur, sequences in (("lwise", 2), ("control", 1)):
        for seq in range(sequences):
            plan = [(1, "train", True, train[seq * 3 + c * 12], 0.5 if cur == "lwise" and enhanced else 0.0)
                    for c in range(3)]
            plan += [(2, "train", True, train[seq * 3 + c * 12 + 1], 0.0) for c in range(3)]
            plan += [(3, "test", False, test[seq + c * 4], 0.0) for c in range(3)]
            for trial, (block, phase, feedback, im, budget) in enumerate(plan):
                out.append({"curriculum": cur, "sequence": seq, "trial": trial, "block": block, "phase": phase,
                            "feedback": feedback, "id": im["id"], "label": im["label"], "budget": budget,
                            "difficulty": 0.25, "selection": "easiest 50%" if budget else "random"})
    out.reverse()  # stored out of presentation order: export must sort
    feats = Features({"curriculum": Value("string"), "sequence": Value("int32"), "trial": Value("int32"),
                      "block": Value("int32"), "phase": Value("string"), "feedback": Value("bool"),
                      "id": Value("string"), "label": label, "budget": Value("float32"),
                      "difficulty": Value("float32"), "selection": Value("string")})
    write_table([{k: [r[k] for r in out] for k in feats}], feats, corpus / "curricula")


def _metamers(corpus: Path, images: list[dict], label: ClassLabel) -> None:
    refs = [im for im in images if im["split"] == "test"][:3]
    rows: dict[str, list] = {k: [] for k in (
        "reference_id", "label", "generator", "layer", "layer_depth", "metamer", "loss", "spearman", "pearson",
        "snr_db", "null_spearman", "null_pearson", "null_snr_db", "passes", "generator_pred", "judge_toy_blur_pred")}
    rng = np.random.default_rng(0)
    for im in refs:
        for depth, layer in enumerate(("block1", "fc")):
            values = {"reference_id": im["id"], "label": im["label"], "generator": "toy-robust", "layer": layer,
                      "layer_depth": depth, "metamer": _png(rng.integers(0, 255, (16, 16))), "loss": 0.1,
                      "spearman": 0.9, "pearson": 0.9, "snr_db": 10.0, "null_spearman": 0.2, "null_pearson": 0.2,
                      "null_snr_db": 1.0, "passes": True, "generator_pred": im["label"],
                      "judge_toy_blur_pred": (im["label"] + depth) % 3}
            for k, v in values.items():
                rows[k].append(v)
    feats = {k: Value("float32") for k in rows}
    feats.update({"reference_id": Value("string"), "label": label, "generator": Value("string"),
                  "layer": Value("string"), "layer_depth": Value("int32"), "metamer": Image(),
                  "passes": Value("bool"), "generator_pred": Value("int64"), "judge_toy_blur_pred": Value("int64")})
    write_table([rows], Features(feats), corpus / "metamers")


def _plots(corpus: Path) -> None:
    for stage, name in (("score", "difficulty_hist.png"), ("enhance", "grid.png")):
        folder = corpus / "plots" / stage
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        PILImage.fromarray(np.full((8, 8), 128, np.uint8)).save(buf, format="PNG")
        (folder / name).write_bytes(buf.getvalue())
    (corpus / "plots" / "train-toy-robust.csv").write_text("epoch,loss\n1,0.5\n")
