"""Difficulty calibration against people: a logistic fit of per-trial correctness on a score.

As the reference analysis (notebooks/make_figs.ipynb; docs/methods.md, "Experiments and
analysis"): scores beyond mean +- ``trim_sd`` SD dropped, scikit-learn ``LogisticRegression(C=1)``,
in-sample ROC-AUC, ``StratifiedKFold(folds, shuffle=True, random_state=42)`` AUC as mean +- SD and
the slope's p-value from statsmodels' unpenalised logit; beside it, the AUC cross-validated over
folds grouped by image (no image in both the fit and the test).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from .recognisability import NAN, fit_logistic, fold_of, logistic_auc


@dataclass(frozen=True)
class CalibrationSettings:
    """The ``analysis`` params of the calibration fit."""

    trim_sd: float | None = 3.0
    folds: int = 10  # stratified folds (the reference)
    fold_seed: int = 42  # their random_state
    image_folds: int = 5  # folds grouped by image id
    seed: int = 0
    standardise: bool = False  # the ImageNet variant z-scores the score first


def trim(x: np.ndarray, sd: float | None) -> np.ndarray:
    """Which finite values lie within mean +- ``sd`` standard deviations (ddof 1, as pandas)."""
    ok = np.isfinite(x)
    if sd is None or ok.sum() < 2:
        return ok
    m, s = x[ok].mean(), x[ok].std(ddof=1)
    return ok & (np.abs(x - m) <= sd * s) if s > 0 else ok


def stratified_auc(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> dict[str, float]:
    """Mean and SD over ``StratifiedKFold(folds, shuffle=True, random_state=seed)`` of the held-out
    ROC-AUC of a logistic fit; nan when a class has fewer trials than folds."""
    if min((y == 1).sum(), (y == 0).sum()) < folds:
        return {"auc_cv_mean": NAN, "auc_cv_sd": NAN}
    aucs = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x[:, None], y):
        slope, icpt = fit_logistic(x[train], y[train])
        aucs.append(roc_auc_score(y[test], slope * x[test] + icpt))
    return {"auc_cv_mean": float(np.mean(aucs)), "auc_cv_sd": float(np.std(aucs))}


def logit_p_value(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Wald p-value of the slope of an unpenalised logistic regression (statsmodels);
    nan when the fit does not converge (e.g. perfectly separated outcomes)."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    if len(np.unique(y)) < 2 or np.ptp(x) == 0:
        return NAN
    with warnings.catch_warnings():
        for kind in (PerfectSeparationWarning, ConvergenceWarning, RuntimeWarning):
            warnings.simplefilter("ignore", kind)
        try:
            fit = sm.Logit(y, sm.add_constant(x, has_constant="add")).fit(disp=0)
        except Exception:  # noqa: BLE001 - perfect separation or a singular fit: no p-value
            return NAN
    p = float(fit.pvalues[1])
    return p if fit.mle_retvals.get("converged") and np.isfinite(p) else NAN


def fit_score(x: np.ndarray, y: np.ndarray, ids: Sequence[str], s: CalibrationSettings) -> dict[str, Any]:
    """One score column's calibration: trimmed trials, the fit (on the raw score scale), AUCs, p."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = trim(x, s.trim_sd)
    out: dict[str, Any] = {"n_trials": int(keep.sum()), "n_trimmed": int(np.isfinite(x).sum() - keep.sum()),
                           "n_images": len({i for i, k in zip(ids, keep, strict=True) if k})}
    xk, yk = x[keep], y[keep]
    if len(xk) < 2 or len(np.unique(yk)) < 2 or np.ptp(xk) == 0:
        return {**out, "slope": NAN, "intercept": NAN}
    mu, sd = (xk.mean(), xk.std(ddof=1)) if s.standardise else (0.0, 1.0)
    z = (xk - mu) / sd
    slope, icpt = fit_logistic(z, yk)
    folds = fold_of([i for i, k in zip(ids, keep, strict=True) if k], s.image_folds, s.seed)
    grouped = logistic_auc(z, yk, folds=folds)
    out.update({"slope": slope / sd, "intercept": icpt - slope * mu / sd, "auc": float(roc_auc_score(yk, xk)),
                "lr_auc_in_sample": grouped["in_sample"], **stratified_auc(z, yk, s.folds, s.fold_seed),
                "lr_auc_cv": grouped["cv"], "p_value": logit_p_value(z, yk)})
    if s.standardise:
        out.update({"standardised_slope": slope, "score_mean": float(mu), "score_sd": float(sd)})
    return out


def calibrate(scores: Mapping[str, np.ndarray], correct: np.ndarray, ids: Sequence[str],
              s: CalibrationSettings) -> dict[str, dict[str, Any]]:
    """Per score column: :func:`fit_score` (trials whose image has no finite score left out)."""
    return {col: fit_score(x, correct, ids, s) for col, x in scores.items()}


def predicted_accuracy(score: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """The calibrated probability that a person answers an image correctly, from its score."""
    return 1.0 / (1.0 + np.exp(-(slope * np.asarray(score, dtype=np.float64) + intercept)))


def binned_accuracy(x: np.ndarray, correct: np.ndarray, bins: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed accuracy in equal-count bins of the score: (mean score, accuracy, trials) per bin."""
    x, c = np.asarray(x, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    parts = [p for p in np.array_split(order, min(bins, len(x))) if len(p)]
    return (np.array([x[p].mean() for p in parts]), np.array([c[p].mean() for p in parts]),
            np.array([len(p) for p in parts]))
