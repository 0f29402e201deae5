"""The analysis of human responses: per-participant scores, condition effects, calibration.

Pure functions on trial dicts and arrays (docs/methods.md, "Experiments and analysis"): test
accuracy, training time and attention-check scores per participant; per condition the accuracy
with participant-bootstrap intervals, the accuracy above chance, the L-WISE gain of that margin
relative to control and the relative training time; and the logistic calibration of each score
column against per-trial correctness (the L-WISE evaluation, :mod:`.recognisability`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..seeding import seeded_rng
from .recognisability import NAN, fit_logistic, fold_of, logistic_auc, roc_auc

#: jsPsych rows that are part of a trial (their time counts as training time in training blocks).
TRIAL_ROLES = {"fixation", "stimulus", "post_stimulus", "response", "feedback", "gap"}


def _mean(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else NAN


def participant_scores(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy on main test and training trials, catch accuracy and repeat agreement."""
    main = [t for t in trials if t["kind"] == "main"]
    test = [t["correct"] for t in main if t["phase"] == "test"]
    train = [t["correct"] for t in main if t["phase"] == "train"]
    catch = [t["correct"] for t in trials if t["kind"] == "catch"]
    by_pos = {t["position"]: t for t in trials}
    agree = [t["choice"] is not None and t["choice"] == by_pos[t["repeat_of"]]["choice"]
             for t in trials if t["kind"] == "repeat" and t.get("repeat_of") in by_pos]
    rts = [t["rt"] for t in main if t["rt"] is not None]
    return {"test_accuracy": _mean(test), "train_accuracy": _mean(train), "catch_accuracy": _mean(catch),
            "repeat_consistency": _mean(agree), "n_test": len(test), "n_train": len(train),
            "n_catch": len(catch), "n_repeat": len(agree), "timeouts": sum(bool(t.get("timed_out")) for t in trials),
            "median_rt_ms": float(np.median(rts)) if rts else NAN}


def training_time(rows: Sequence[Mapping[str, Any]]) -> float:
    """Seconds spent in training-block trials (fixation to gap; instructions and breaks excluded),
    from jsPsych's ``time_elapsed`` at the end of each row, rows in recorded order."""
    total, before = 0.0, 0.0
    for row in rows:
        now = float(row.get("time_elapsed") or before)
        if row.get("phase") == "train" and row.get("lwise_role") in TRIAL_ROLES:
            total += now - before
        before = now
    return total / 1000.0


def block_accuracy(trials: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """Accuracy on main trials per block (a learning curve)."""
    blocks = sorted({t["block"] for t in trials if t["kind"] == "main"})
    return {b: _mean([t["correct"] for t in trials if t["kind"] == "main" and t["block"] == b]) for b in blocks}


# ---------------------------------------------------------------- conditions ----------------
def bootstrap(stat: Callable[..., np.ndarray], groups: Sequence[np.ndarray], n: int, ci: float,
              rng: np.random.Generator) -> tuple[float, float, float]:
    """``stat`` of the groups and its percentile interval, resampling each group's participants.

    ``stat`` takes one (B, n_i) array per group and returns B values (vectorised resamples).
    """
    groups = [np.asarray(g, dtype=np.float64) for g in groups]
    point = float(stat(*[g[None, :] for g in groups])[0])
    if any(len(g) == 0 for g in groups):
        return NAN, NAN, NAN
    draws = stat(*[g[rng.integers(0, len(g), size=(n, len(g)))] for g in groups])
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return point, NAN, NAN
    lo, hi = np.quantile(draws, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return point, float(lo), float(hi)


def condition_effects(accuracy: Mapping[str, np.ndarray], seconds: Mapping[str, np.ndarray], chance: float,
                      control: str, n: int, ci: float, seed: int) -> dict[str, dict[str, Any]]:
    """Per condition: accuracy, accuracy above chance, gain over control, relative training time."""
    out: dict[str, dict[str, Any]] = {}
    ctrl_acc, ctrl_time = accuracy.get(control), seconds.get(control)
    for name, acc in accuracy.items():
        rng = seeded_rng(seed, "bootstrap", name)
        row: dict[str, Any] = {"participants": int(len(acc))}
        row["accuracy"] = _interval(bootstrap(lambda a: a.mean(axis=1), [acc], n, ci, rng))
        row["above_chance"] = _interval(bootstrap(lambda a: a.mean(axis=1) - chance, [acc], n, ci, rng))
        row["mean_training_time_s"] = float(np.mean(seconds[name])) if len(seconds[name]) else NAN
        if ctrl_acc is not None and name != control and len(ctrl_acc):
            gain = bootstrap(lambda a, c: _gain(a.mean(axis=1), c.mean(axis=1), chance), [acc, ctrl_acc], n, ci, rng)
            rel = bootstrap(lambda a, c: a.mean(axis=1) / c.mean(axis=1), [seconds[name], ctrl_time], n, ci, rng)
            row["gain_vs_control"], row["relative_training_time"] = _interval(gain), _interval(rel)
        out[name] = row
    return out


def _gain(a: np.ndarray, c: np.ndarray, chance: float) -> np.ndarray:
    """(accuracy - chance) / (control accuracy - chance) - 1: the L-WISE outcome measure."""
    margin = c - chance
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(margin > 0, (a - chance) / margin - 1, np.nan)


def _interval(triple: tuple[float, float, float]) -> dict[str, float]:
    return dict(zip(("mean", "low", "high"), triple, strict=True))


# ---------------------------------------------------------------- calibration ---------------
def calibrate(scores: Mapping[str, np.ndarray], correct: np.ndarray, ids: Sequence[str], folds: int,
              seed: int) -> dict[str, dict[str, Any]]:
    """Per score column: the logistic fit of per-trial correctness, in-sample and CV ROC-AUC.

    Trials whose image has no finite score are left out of that column's fit (counted in ``n``).
    """
    correct = np.asarray(correct, dtype=np.float64)
    fold = fold_of(list(ids), folds, seed)
    out = {}
    for col, x in scores.items():
        x = np.asarray(x, dtype=np.float64)
        ok = np.isfinite(x)
        if ok.sum() < 2:
            out[col] = {"n_trials": int(ok.sum()), "slope": NAN, "intercept": NAN}
            continue
        slope, icpt = fit_logistic(x[ok], correct[ok])
        lr = logistic_auc(x[ok], correct[ok], folds=fold[ok])
        out[col] = {"slope": slope, "intercept": icpt, "lr_auc_in_sample": lr["in_sample"], "lr_auc_cv": lr["cv"],
                    "auc": roc_auc(x[ok], correct[ok]), "n_trials": int(ok.sum()),
                    "n_images": len({i for i, k in zip(ids, ok, strict=True) if k})}
    return out


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
