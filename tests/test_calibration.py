"""The difficulty calibration as the reference notebook computes it (ops/calibration.py)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from lwise_build.ops.calibration import CalibrationSettings, calibrate, fit_score, trim


@pytest.fixture
def trials():
    rng = np.random.default_rng(1)
    ids = [f"{i:04x}" for i in range(300)]
    score = rng.uniform(-3, 3, 300)
    x = np.repeat(score, 4)
    y = (rng.random(1200) < 1 / (1 + np.exp(-(0.5 + 1.2 * x)))).astype(float)
    return x, y, np.repeat(ids, 4).tolist()


def test_the_reference_recipe_step_by_step(trials):
    x, y, ids = trials
    x = x.copy()
    x[:4] = 40.0  # an outlier image: beyond mean + 3 SD, dropped as the reference drops it
    got = fit_score(x, y, ids, CalibrationSettings())
    keep = np.abs(x - x.mean()) <= 3 * x.std(ddof=1)
    xk, yk = x[keep], y[keep]
    ref = LogisticRegression(C=1.0).fit(xk[:, None], yk)  # the notebook's call (lbfgs, tol 1e-4)
    exact = LogisticRegression(C=1.0, tol=1e-12, max_iter=1000).fit(xk[:, None], yk)
    assert got["n_trimmed"] == 4 and got["n_trials"] == 1196
    assert got["slope"] == pytest.approx(exact.coef_[0, 0], rel=1e-6)
    assert got["slope"] == pytest.approx(ref.coef_[0, 0], rel=1e-3)
    assert got["lr_auc_in_sample"] == pytest.approx(roc_auc_score(yk, ref.predict_proba(xk[:, None])[:, 1]))
    aucs = []
    for train, test in StratifiedKFold(10, shuffle=True, random_state=42).split(xk[:, None], yk):
        m = LogisticRegression(C=1.0).fit(xk[train, None], yk[train])
        aucs.append(roc_auc_score(yk[test], m.predict_proba(xk[test, None])[:, 1]))
    assert got["auc_cv_mean"] == pytest.approx(np.mean(aucs)) and got["auc_cv_sd"] == pytest.approx(np.std(aucs))
    sm_fit = sm.Logit(yk, sm.add_constant(xk)).fit(disp=0)
    assert got["p_value"] == pytest.approx(sm_fit.pvalues[1], rel=1e-6) and got["p_value"] < 1e-10
    assert 0.5 < got["lr_auc_cv"] < 1  # the folds grouped by image, beside it


def test_recovers_a_logistic_policy_and_noise_has_no_signal(trials):
    x, y, ids = trials
    noise = np.random.default_rng(2).normal(size=len(x))
    fits = calibrate({"s": x, "noise": noise}, y, ids, CalibrationSettings(folds=5))
    assert fits["s"]["slope"] == pytest.approx(1.2, abs=0.2) and fits["s"]["intercept"] == pytest.approx(0.5, abs=0.2)
    assert fits["s"]["lr_auc_cv"] == pytest.approx(fits["s"]["lr_auc_in_sample"], abs=0.02)
    assert abs(fits["noise"]["slope"]) < 0.1 and fits["noise"]["auc_cv_mean"] < 0.57 and fits["noise"]["p_value"] > 0.01


def test_standardised_fit_maps_back_to_the_raw_score(trials):
    x, y, ids = trials
    raw = fit_score(x * 7 + 3, y, ids, CalibrationSettings(trim_sd=None))
    z = fit_score(x * 7 + 3, y, ids, CalibrationSettings(trim_sd=None, standardise=True))
    u = x * 7 + 3
    assert z["score_mean"] == pytest.approx(u.mean()) and z["score_sd"] == pytest.approx(u.std(ddof=1))
    assert z["slope"] == pytest.approx(z["standardised_slope"] / z["score_sd"])  # on the raw scale
    assert z["slope"] == pytest.approx(raw["slope"], rel=0.05)  # the ridge differs a little with the scale


def test_trim_and_degenerate_inputs():
    x = np.r_[np.zeros(50), 100.0, np.nan]
    assert trim(x, 3.0).tolist() == [True] * 50 + [False, False] and trim(x, None)[:51].all()
    flat = fit_score(np.ones(10), np.r_[np.ones(5), np.zeros(5)], [str(i) for i in range(10)], CalibrationSettings())
    assert np.isnan(flat["slope"])
