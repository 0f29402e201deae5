"""Recognisability metrics against scipy/sklearn references, and the score report's logic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from support import former

from lwise_build.ops import recognisability as rc


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=200), 1)  # rounding makes ties
    y = (x + rng.normal(size=200) > 0).astype(int)
    return x, y, rng


def test_correlations_equal_the_former_hand_written_ones_and_scipy(data):
    x, y, rng = data
    z = np.round(rng.normal(size=200), 1)
    for a, b in ((x, z), (x, y), (z, y)):
        assert rc.spearman(a, b) == pytest.approx(former.spearman(a, b), abs=1e-12)
        assert rc.pearson(a, b) == pytest.approx(former.pearson(a, b), abs=1e-12)
    assert rc.spearman(x, z) == pytest.approx(st.spearmanr(x, z)[0], abs=1e-12)
    assert math.isnan(rc.pearson(x, np.ones_like(x))) and math.isnan(rc.spearman([1.0], [2.0]))
    assert math.isnan(rc.spearman(x, np.ones_like(x)))


def test_roc_auc_equals_the_former_one_with_ties_weights_and_soft_labels(data):
    x, y, rng = data
    assert rc.roc_auc(x, y) == pytest.approx(former.roc_auc(x, y), abs=1e-12)
    w = rng.integers(1, 5, size=len(x)).astype(float)
    assert rc.roc_auc(x, y, w) == pytest.approx(former.roc_auc(x, y, w), abs=1e-12)
    trials = rng.integers(1, 6, size=40)  # soft: k correct of n trials == n expanded rows
    correct = np.array([rng.integers(0, n + 1) for n in trials])
    s = x[:40]
    expanded_s = np.concatenate([np.repeat(v, n) for v, n in zip(s, trials, strict=True)])
    expanded_y = np.concatenate([[1] * k + [0] * (n - k) for k, n in zip(correct, trials, strict=True)])
    assert rc.roc_auc(s, correct / trials, trials) == pytest.approx(roc_auc_score(expanded_y, expanded_s), abs=1e-12)
    assert rc.roc_auc(s, correct / trials, trials) == pytest.approx(former.roc_auc(s, correct / trials, trials), abs=1e-12)
    assert math.isnan(rc.roc_auc(x, np.ones_like(y)))


def test_logistic_regression_equals_the_former_newton_fit(data):
    x, y, rng = data
    for w in (None, rng.integers(1, 4, size=len(x)).astype(float)):
        want = former.fit_logistic(x, y, w)
        assert rc.fit_logistic(x, y, w) == pytest.approx(want, rel=1e-6, abs=1e-8)
    soft, trials = rng.random(60), rng.integers(1, 9, size=60).astype(float)
    assert rc.fit_logistic(x[:60], soft, trials) == pytest.approx(former.fit_logistic(x[:60], soft, trials), rel=1e-6)
    sep = np.r_[np.zeros(20), np.ones(20)]  # separable: the ridge keeps it finite
    assert rc.fit_logistic(np.r_[-np.ones(20), np.ones(20)], sep) == pytest.approx(
        former.fit_logistic(np.r_[-np.ones(20), np.ones(20)], sep), rel=1e-6)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x[:, None], y)
    assert rc.fit_logistic(x, y)[0] == pytest.approx(ref.coef_[0, 0], rel=1e-5)


def test_logistic_auc_in_sample_and_cross_validated(data):
    x, y, _ = data
    ids = [f"img{i}" for i in range(len(x))]
    folds = rc.fold_of(ids, 5, seed=3)
    assert set(folds) == set(range(5)) and np.array_equal(folds, rc.fold_of(ids, 5, seed=3))
    out = rc.logistic_auc(x, y, folds=folds)
    assert out["in_sample"] == pytest.approx(roc_auc_score(y, x))
    per_fold = [roc_auc_score(y[folds == f], x[folds == f]) for f in range(5)]  # slope stays > 0
    assert out["cv"] == pytest.approx(np.mean(per_fold))
    assert rc.logistic_auc(-x, y)["in_sample"] == pytest.approx(roc_auc_score(y, x))  # sign-free


def test_accuracy_and_rank_correlations():
    acc = rc.accuracy_by_split(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), np.array(["a", "a", "b", "b"]))
    assert acc == {"a": 1.0, "b": 0.5, "all": 0.75}
    a, b = np.arange(5.0), np.array([5.0, 4, 3, 2, 1])
    assert rc.rank_correlations({"r": a, "s": b, "t": a**2}) == pytest.approx(
        {"r_vs_s": -1.0, "r_vs_t": 1.0, "s_vs_t": -1.0})


def _toy_report(human=None, observers=None):
    rng = np.random.default_rng(1)
    n = 300
    target = rng.integers(0, 3, size=n)
    easy = rng.normal(size=n)

    def model(noise):
        wrong = easy + noise * rng.normal(size=n) < -0.8
        return {"gt_logit": easy + 0.3 * rng.normal(size=n), "pred": np.where(wrong, (target + 1) % 3, target)}

    stats = {"m-rob": model(0.2), "m-std": model(0.2), "m-blur": model(0.2)}
    aliases = {"robust": "m-rob", "standard": "m-std", "blur": "m-blur"}
    split = np.array(["train", "validation", "test"])[np.arange(n) % 3]
    ease = {a: stats[m]["gt_logit"] for a, m in aliases.items()}
    ids = [str(i) for i in range(n)]
    rep = rc.score_report(aliases, stats, {m: target for m in stats}, ease, split, ids,
                          observers=observers, human=human)
    return rep, stats, target, split


def test_report_observers_exclude_own_model_and_use_heldout_rows():
    rep, stats, target, split = _toy_report()
    held = split != "train"
    rob = rep["recognisability"]["robust"]
    assert rob["observers"] == ["m-std", "m-blur"] and rep["n_judged"] == held.sum()
    correct = (stats["m-blur"]["pred"] == target)[held]
    assert rob["gt_logit"]["per_observer"]["m-blur"]["auc"] == pytest.approx(
        roc_auc_score(correct, stats["m-rob"]["gt_logit"][held]))
    assert rep["summary"]["observers"] == ["m-blur"]
    assert rep["summary"]["standard_auc"] == rep["recognisability"]["standard"]["gt_logit"]["per_observer"]["m-blur"]["auc"]
    assert rep["summary"]["robust_beats_standard"] == (rep["summary"]["robust_auc"] > rep["summary"]["standard_auc"])
    assert rep["accuracy"]["robust"]["all"] == pytest.approx((stats["m-rob"]["pred"] == target).mean())
    only = _toy_report(observers=["m-rob"])[0]["recognisability"]
    assert only["robust"]["observers"] == [] and only["standard"]["observers"] == ["m-rob"]


def test_report_with_human_accuracy_and_nan_is_null():
    n = 300
    human = {"accuracy": np.linspace(0, 1, n), "trials": None}
    human["accuracy"][5] = np.nan
    rep, stats, _, _ = _toy_report(human=human)
    rec = rep["recognisability"]["robust"]["gt_logit"]
    ok = np.isfinite(human["accuracy"])
    assert rep["basis"] == "humans" and rec["n"] == n - 1
    assert rec["spearman"] == pytest.approx(st.spearmanr(stats["m-rob"]["gt_logit"][ok], human["accuracy"][ok])[0])
    assert rc.clean({"a": float("nan"), "b": [np.float32(1.5)], "c": np.int64(2)}) == {"a": None, "b": [1.5], "c": 2}


def test_metamer_row_pearson_equals_the_former_one():
    from lwise_build.ops.metamer_stats import match_stats

    rng = np.random.default_rng(2)
    a = rng.normal(size=(20, 50))
    b = a + rng.normal(size=(20, 50))
    a[3], b[7] = 0.0, 2.0  # constant rows score 0, as before
    np.testing.assert_allclose(match_stats(a, b)["pearson"], former.row_pearson(a, b), atol=1e-12)
