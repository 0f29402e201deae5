"""The score stage and ``lwise_build.score`` on toy models whose logits are known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats as st
from support.params import toy_params
from support.tables import write_images_table
from torch import nn

from lwise_build.api import score
from lwise_build.config.params import Params
from lwise_build.errors import UserError
from lwise_build.io import paths, tables
from lwise_build.io.images import to_tensor
from lwise_build.models.classifier import Classifier
from lwise_build.models.registry import register
from lwise_build.models.store import load_model_dir, save_model
from lwise_build.ops.difficulty import difficulty
from lwise_build.stages.score.stage import Score

MEAN, STD = 0.2, 0.5


class MeanLogits(nn.Module):
    """logit_k = w_k * mean(normalised pixels) + b_k."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(1, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(1, 2, 3))[:, None])


register("toy-mean")(lambda nc, ic: (MeanLogits(nc), ["fc"]))
TOYS = {  # name -> (w, b) per class: class boundaries at different mean-pixel thresholds
    "toy-a": ([-10.0, 1.0, 10.0], [-1.4, 0.0, -2.0]),
    "toy-b": ([-5.0, 2.0, 5.0], [-0.5, 0.0, -0.75]),
    "toy-c": ([-20.0, -1.0, 20.0], [-3.0, 0.0, -5.0]),
}


def analytic(name: str, x: torch.Tensor) -> np.ndarray:
    """All logits of toy model ``name`` for float images x, by its definition."""
    w, b = (np.array(v) for v in TOYS[name])
    m = ((x.double() - MEAN) / STD).mean(dim=(1, 2, 3)).numpy()
    return m[:, None] * w[None, :] + b[None, :]


def make_toy(name: str, classes: list[str]) -> Classifier:
    w, b = TOYS[name]
    net = MeanLogits(len(classes))
    with torch.no_grad():
        net.fc.weight.copy_(torch.tensor(w)[:, None])
        net.fc.bias.copy_(torch.tensor(b))
    return Classifier(net, ["fc"], [MEAN], [STD], classes, arch="toy-mean")


def make_params(score: dict, names=("toy-a", "toy-b", "toy-c"), classes=None) -> Params:
    """Params for corpus ``toy``; saves the toy models under data/toy/models/<name>."""
    for n in names:
        save_model(make_toy(n, classes or ["bar", "dot", "ring"]), paths.stage_dir("toy", "models") / n)
    model_defs = {n: {"arch": "toy-mean", "corpus": "toy", "checkpoint": "built", "in_channels": 1} for n in names}
    return toy_params({"score": score}, ingest={"source": "builtin:toy", "image_size": 16}, models=model_defs, device="cpu")


ALIASES = {"robust": "toy-a", "standard": "toy-b", "blur": "toy-c"}


def read_scores() -> dict:
    t = tables.read_table(paths.stage_dir("toy", "scores"))
    return {c: t.column(c).to_pylist() for c in t.column_names}


def canonical_images() -> tuple[torch.Tensor, list[int]]:
    t = tables.read_table(paths.stage_dir("toy", "images"))
    return to_tensor([r["bytes"] for r in t.column("image").to_pylist()]), t.column("label").to_pylist()


def minmax_within(z: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.empty(len(z))
    for g in np.unique(groups):
        m = groups == g
        span = z[m].max() - z[m].min()
        out[m] = 1 - (z[m] - z[m].min()) / span if span > 0 else 0.5
    return out.astype(np.float32)


def test_stored_gt_logit_is_plain_forward_and_difficulty_is_minmax(tiny_images):
    Score(make_params({"models": ALIASES}), "toy").run()
    s = read_scores()
    x, labels = canonical_images()
    assert s["id"] == tiny_images["ids"] and s["label"] == labels and s["split"] == tiny_images["splits"]
    model = load_model_dir(paths.stage_dir("toy", "models") / "toy-a")
    with torch.no_grad():
        plain = model(x).double().numpy()
    y = np.array(labels)
    gt = np.array(s["robust_gt_logit"], dtype=np.float32)
    np.testing.assert_allclose(gt, plain[np.arange(len(y)), y], atol=1e-4)
    np.testing.assert_allclose(gt, analytic("toy-a", x)[np.arange(len(y)), y], atol=1e-4)
    assert np.array_equal(np.array(s["robust_difficulty"], np.float32), minmax_within(gt.astype(np.float64), y))
    glob = np.array(s["robust_difficulty_global"], np.float32)
    assert np.array_equal(glob, minmax_within(gt.astype(np.float64), np.zeros_like(y)))
    assert s["robust_pred"] == plain.argmax(1).tolist()
    prob = torch.softmax(torch.from_numpy(plain), 1).numpy()[np.arange(len(y)), y]
    np.testing.assert_allclose(s["robust_prob"], prob, atol=1e-5)
    other = np.where(np.eye(3, dtype=bool)[y], -np.inf, plain).max(1)
    np.testing.assert_allclose(s["robust_margin"], plain[np.arange(len(y)), y] - other, atol=1e-4)
    feats = tables.read_features(paths.stage_dir("toy", "scores"))
    assert feats["label"].names == ["bar", "dot", "ring"] and feats["robust_pred"].dtype == "int64"
    assert feats["blur_gt_logit"].dtype == "float32"


def test_api_tensor_png_batch_size_and_workers_agree(tiny_images):
    x, labels = canonical_images()
    t = tables.read_table(paths.stage_dir("toy", "images"))
    pngs = [r["bytes"] for r in t.column("image").to_pylist()]
    model = make_toy("toy-b", ["bar", "dot", "ring"])
    ref = score(model, x, labels, batch_size=256)
    names = [["bar", "dot", "ring"][i] for i in labels]
    for out in (score(model, pngs, names, batch_size=7), score(model, pngs, labels, batch_size=16, workers=2),
                score(model, t.column("image").to_pylist(), labels, batch_size=5)):
        for k in ref:
            np.testing.assert_allclose(out[k], ref[k], atol=1e-6, err_msg=k)
    y = np.array(labels)
    np.testing.assert_allclose(ref["gt_logit"], analytic("toy-b", x)[np.arange(len(y)), y], atol=1e-5)
    fine = score(model, x, labels, targets=[2] * len(labels))  # score another class, group by label
    np.testing.assert_allclose(fine["gt_logit"], analytic("toy-b", x)[:, 2], atol=1e-5)
    assert np.array_equal(fine["difficulty"], minmax_within(fine["gt_logit"].astype(np.float64), y))
    with pytest.raises(UserError, match="5 images, 60 labels"):
        score(model, x[:5], labels)
    with pytest.raises(UserError, match="class index 3 is outside"):
        score(model, x, labels, targets=[3] * len(labels))
    with pytest.raises(UserError, match="label 'square'"):
        score(model, x[:1], ["square"])


def test_difficulty_edge_cases():
    d = difficulty(np.array([1.0, 2.0, 3.0, 5.0, 4.0, 4.0]), np.array([0, 0, 0, 1, 2, 2]))
    assert d.tolist() == [1.0, 0.5, 0.0, 0.5, 0.5, 0.5]  # single image / constant class -> 0.5
    assert difficulty(np.array([2.0, 0.0, 1.0])).tolist() == [0.0, 1.0, 0.5]
    assert difficulty(np.zeros(0)).shape == (0,)


def test_class_map_maps_labels_to_model_classes(tiny_images):
    classes = ["zero", "one", "two"]
    params = make_params({"models": {"robust": "toy-a"}, "class_map": {"bar": "two", "dot": "zero", "ring": "one"}},
                         names=("toy-a",), classes=classes)
    Score(params, "toy").run()
    x, labels = canonical_images()
    target = np.array([2, 0, 1])[labels]
    np.testing.assert_allclose(read_scores()["robust_gt_logit"], analytic("toy-a", x)[np.arange(len(x)), target],
                               atol=1e-5)


def test_target_column_scores_the_fine_class(data_root):
    rng = np.random.default_rng(1)
    arrays = (rng.random((12, 8, 8)) * 255).astype(np.uint8)
    fine = ["bar", "dot", "ring"] * 4
    write_images_table(data_root / "toy" / "images", arrays, [0, 1] * 6, ["test"] * 12, ["odd", "even"],
                       extra={"fine": fine})
    Score(make_params({"models": {"robust": "toy-a"}, "target_column": "fine"}, names=("toy-a",)), "toy").run()
    x, labels = canonical_images()
    target = np.array([["bar", "dot", "ring"].index(f) for f in fine])
    s = read_scores()
    np.testing.assert_allclose(s["robust_gt_logit"], analytic("toy-a", x)[np.arange(12), target], atol=1e-5)
    assert np.array_equal(np.array(s["robust_difficulty"], np.float32),
                          minmax_within(np.array(s["robust_gt_logit"], np.float32).astype(np.float64),
                                        np.array(labels)))


def test_unmappable_label_and_bad_keys_are_one_line_errors(tiny_images):
    params = make_params({"models": {"robust": "toy-a"}}, names=("toy-a",), classes=["bar", "dot", "square"])
    with pytest.raises(UserError, match="'ring'") as err:
        Score(params, "toy").run()
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="target_column: 'fine'"):
        Score(make_params({"models": {"robust": "toy-a"}, "target_column": "fine"}, names=("toy-a",)), "toy").run()
    with pytest.raises(UserError, match="class_map: 'circle'"):
        Score(make_params({"models": {"robust": "toy-a"}, "class_map": {"circle": "bar"}}, names=("toy-a",)), "toy").run()
    assert not paths.stage_dir("toy", "scores").exists()


def _heldout_correct(name: str, x: torch.Tensor, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return (analytic(name, x).argmax(1) == y)[rows]


def test_metrics_against_observers(tiny_images):
    Score(make_params({"models": ALIASES}), "toy").run()
    m = json.loads((paths.stage_dir("toy", "metrics") / "details" / "score.json").read_text())
    x, labels = canonical_images()
    y = np.array(labels)
    rows = np.isin(tiny_images["splits"], ["validation", "test"])
    gt = np.array(read_scores()["robust_gt_logit"])[rows]
    rec = m["recognisability"]["robust"]
    assert rec["observers"] == ["toy-b", "toy-c"] and m["basis"] == "observers" and m["n_judged"] == rows.sum()
    for obs in ("toy-b", "toy-c"):
        correct = _heldout_correct(obs, x, y, rows)
        from sklearn.metrics import roc_auc_score

        assert rec["gt_logit"]["per_observer"][obs]["auc"] == pytest.approx(roc_auc_score(correct, gt))
        assert rec["gt_logit"]["per_observer"][obs]["spearman"] == pytest.approx(st.spearmanr(gt, correct)[0])
    assert set(rec["ease"]["vs_observer_accuracy"]) >= {"auc", "spearman", "pearson", "lr_auc_cv"}
    assert m["summary"]["observers"] == ["toy-c"]  # robust and standard judged by the same observer
    assert m["summary"]["robust_auc"] == rec["gt_logit"]["per_observer"]["toy-c"]["auc"]
    assert isinstance(m["summary"]["robust_beats_standard"], bool)
    assert m["accuracy"]["robust"]["all"] == pytest.approx((analytic("toy-a", x).argmax(1) == y).mean())
    assert set(m["logit_rank_correlation"]) == {"robust_vs_standard", "robust_vs_blur", "standard_vs_blur"}
    plots = paths.stage_dir("toy", "plots") / "score"
    assert {p.name for p in plots.iterdir()} == {"difficulty_hist.png", "logit_vs_observer.png", "recognisability.csv"}
    assert "robust gt_logit / toy-b,robust,gt_logit,toy-b," in (plots / "recognisability.csv").read_text()
    rows = {p.stem: json.loads(p.read_text()) for p in (paths.stage_dir("toy", "metrics") / "score").iterdir()}
    assert set(rows) == {"robust", "standard", "blur"} and m["basis"] == "observers"
    assert rows["robust"]["auc"] == rec["gt_logit"]["vs_observer_accuracy"]["auc"]
    assert rows["robust"]["beats_standard"] == m["summary"]["robust_beats_standard"]


def test_metrics_against_human_accuracy(data_root):
    rng = np.random.default_rng(2)
    arrays = (rng.random((30, 8, 8)) * 255).astype(np.uint8)
    human = [float(v) for v in rng.random(30)]
    write_images_table(data_root / "toy" / "images", arrays, [0, 1, 2] * 10, ["train"] * 30,
                       ["bar", "dot", "ring"], extra={"human_accuracy": human})
    Score(make_params({"models": {"robust": "toy-a", "standard": "toy-b"}}, names=("toy-a", "toy-b")), "toy").run()
    m = json.loads((paths.stage_dir("toy", "metrics") / "details" / "score.json").read_text())
    gt = np.array(read_scores()["robust_gt_logit"])
    rec = m["recognisability"]["robust"]["gt_logit"]
    assert m["basis"] == "humans" and rec["n"] == 30
    assert rec["spearman"] == pytest.approx(st.spearmanr(gt, human)[0])
    assert rec["pearson"] == pytest.approx(st.pearsonr(gt, human)[0])
    assert 0 <= rec["auc"] <= 1 and m["summary"]["basis"] == "humans"


def test_stage_reuses_cached_shards(tiny_images, monkeypatch):
    params = make_params({"models": {"robust": "toy-a"}}, names=("toy-a",))
    Score(params, "toy").run()
    first = read_scores()
    import lwise_build.stages.score.stage as score_stage

    monkeypatch.setattr(score_stage, "score_pngs", lambda *a, **k: pytest.fail("recomputed a cached shard"))
    Score(params, "toy").run()
    assert read_scores() == first
    assert Path(paths.stage_dir("toy", "metrics") / "details" / "score.json").is_file()
