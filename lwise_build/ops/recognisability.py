"""How well a per-image score predicts recognisability: scipy and scikit-learn metrics on arrays.

Every function takes plain arrays and returns floats (``nan`` where a metric is undefined, e.g. a
constant input or a single outcome class), so notebooks, the score stage and tests share them.
Correctness may be *soft*: a fraction of correct trials per image, with ``weight`` trials each;
ROC-AUC and logistic regression then count every trial, as if the trials were separate rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ..seeding import seeded_int

NAN = float("nan")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (``scipy.stats.pearsonr``); ``nan`` for a constant input or < 2 values."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return NAN
    return float(stats.pearsonr(x, y).statistic)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (``scipy.stats.spearmanr``); ``nan`` where it is undefined."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return NAN
    return float(stats.spearmanr(x, y).statistic)


def _outcome_rows(score: np.ndarray, correct: np.ndarray, weight: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft correctness as weighted 0/1 rows: each image once as correct (weight ``w * c``) and
    once as wrong (``w * (1 - c)``), zero-weight rows dropped; the libraries' sample weights."""
    c = np.asarray(correct, dtype=np.float64)
    w = np.ones_like(c) if weight is None else np.asarray(weight, dtype=np.float64)
    x = np.asarray(score, dtype=np.float64)
    xs, ys, ws = np.r_[x, x], np.r_[np.ones_like(c), np.zeros_like(c)], np.r_[w * c, w * (1.0 - c)]
    keep = ws > 0
    return xs[keep], ys[keep], ws[keep]


def roc_auc(score: np.ndarray, correct: np.ndarray, weight: np.ndarray | None = None) -> float:
    """ROC-AUC of ``score`` for a correct response (``sklearn.metrics.roc_auc_score``; ties half).

    ``correct`` is 0/1 or a fraction per image; ``weight`` the trials per image (default 1).
    ``nan`` unless there are both correct and wrong trials.
    """
    x, y, w = _outcome_rows(score, correct, weight)
    if not (y == 1).any() or not (y == 0).any():
        return NAN
    return float(roc_auc_score(y, x, sample_weight=w))


def fit_logistic(x: np.ndarray, correct: np.ndarray, weight: np.ndarray | None = None,
                 c: float = 1.0) -> tuple[float, float]:
    """1-D logistic regression (slope, intercept): ``sklearn.linear_model.LogisticRegression(C=c)``
    (the ridge ``0.5 slope**2`` keeps separable data finite; the intercept is not penalised)."""
    xs, ys, ws = _outcome_rows(x, correct, weight)
    if len(np.unique(ys)) < 2:
        return NAN, NAN
    model = LogisticRegression(C=c, solver="newton-cholesky", tol=1e-10, max_iter=200)
    model.fit(xs[:, None], ys, sample_weight=ws)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def fold_of(ids: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Cross-validation fold per image from its id and ``seed``, so folds ignore row order."""
    return np.array([seeded_int(seed, i) % folds for i in ids])


def logistic_auc(x: np.ndarray, correct: np.ndarray, weight: np.ndarray | None = None,
                 folds: np.ndarray | None = None) -> dict[str, float]:
    """ROC-AUC of a logistic regression of correctness on ``x``: in-sample and cross-validated.

    ``folds`` gives each image's fold (see :func:`fold_of`); the cross-validated value is the mean
    held-out-fold AUC over folds where it is defined. A negative slope turns AUC into 1 - AUC, so
    in-sample this is the plain AUC when higher ``x`` means more often correct.
    """
    x = np.asarray(x, dtype=np.float64)
    slope, icpt = fit_logistic(x, correct, weight)
    out = {"in_sample": roc_auc(slope * x + icpt, correct, weight) if np.isfinite(slope) else NAN, "cv": NAN}
    if folds is None:
        return out
    folds = np.asarray(folds)
    w = np.ones(len(x)) if weight is None else np.asarray(weight, dtype=np.float64)
    c = np.asarray(correct, dtype=np.float64)
    aucs = []
    for f in np.unique(folds):
        test = folds == f
        if test.all():
            continue
        s, b = fit_logistic(x[~test], c[~test], w[~test])
        if np.isfinite(s):
            aucs.append(roc_auc(s * x[test] + b, c[test], w[test]))
    aucs = [a for a in aucs if np.isfinite(a)]
    out["cv"] = float(np.mean(aucs)) if aucs else NAN
    return out


def accuracy_by_split(pred: np.ndarray, target: np.ndarray, split: np.ndarray) -> dict[str, float]:
    """Accuracy on every split present, plus ``all``."""
    hit = np.asarray(pred) == np.asarray(target)
    split = np.asarray(split)
    out = {str(s): float(hit[split == s].mean()) for s in np.unique(split)}
    out["all"] = float(hit.mean()) if len(hit) else NAN
    return out


def rank_correlations(scores: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Spearman between every pair of named scores, keyed ``"a_vs_b"`` in the given order."""
    return {f"{a}_vs_{b}": spearman(scores[a], scores[b]) for a, b in combinations(scores, 2)}


def predictiveness(score: np.ndarray, correct: np.ndarray, weight: np.ndarray | None = None,
                   folds: np.ndarray | None = None) -> dict[str, float]:
    """The standard bundle for one score vs one outcome: AUC, Spearman, Pearson, logistic AUCs."""
    lr = logistic_auc(score, correct, weight, folds)
    return {
        "auc": roc_auc(score, correct, weight),
        "spearman": spearman(score, correct),
        "pearson": pearson(score, correct),
        "lr_auc_in_sample": lr["in_sample"],
        "lr_auc_cv": lr["cv"],
        "n": int(len(np.asarray(score))),
    }


# ---------------------------------------------------------------- the stage's report ---------
def _mean(values: list[float]) -> float:
    vals = [v for v in values if np.isfinite(v)]
    return float(np.mean(vals)) if vals else NAN


def _observer_block(score: np.ndarray, correct: Mapping[str, np.ndarray], folds: np.ndarray) -> dict:
    """One score vs each observer's correctness, their means, and vs the observers' accuracy."""
    per = {o: {"auc": roc_auc(score, c), "spearman": spearman(score, c)} for o, c in correct.items()}
    acc = np.mean(np.stack(list(correct.values())), axis=0)
    return {"per_observer": per, "mean_auc": _mean([p["auc"] for p in per.values()]),
            "mean_spearman": _mean([p["spearman"] for p in per.values()]),
            "vs_observer_accuracy": predictiveness(score, acc, np.full(len(acc), float(len(correct))), folds)}


def observers_for(model: str, aliases: Mapping[str, str], observers: Sequence[str] | None) -> list[str]:
    """Observer models judging ``model``'s score: the configured ones (default: the other scored
    models), never ``model`` itself."""
    pool = list(aliases.values()) if observers is None else list(observers)
    return [o for o in dict.fromkeys(pool) if o != model]


def _summary(aliases: Mapping[str, str], rec: Mapping[str, dict], basis: str) -> dict | None:
    """Does robust's gt logit predict recognisability better than standard's (same judges)?"""
    if not {"robust", "standard"} <= set(aliases) or basis == "none":
        return None
    out: dict = {"basis": basis, "robust_beats_standard": None}
    if "gt_logit" not in rec["robust"] or "gt_logit" not in rec["standard"]:
        return out
    r, s = rec["robust"]["gt_logit"], rec["standard"]["gt_logit"]
    if basis == "humans":
        vals = {k: (v["auc"], v["spearman"]) for k, v in (("robust", r), ("standard", s))}
    else:
        common = [o for o in r["per_observer"] if o in s["per_observer"]]
        out["observers"] = common or "each score's own observers"
        pick = (lambda b, key: _mean([b["per_observer"][o][key] for o in common])) if common else \
            (lambda b, key: b[f"mean_{key}"])
        vals = {k: (pick(v, "auc"), pick(v, "spearman")) for k, v in (("robust", r), ("standard", s))}
    for k, (auc, rho) in vals.items():
        out[f"{k}_auc"], out[f"{k}_spearman"] = auc, rho
    ok = np.isfinite(vals["robust"][0]) and np.isfinite(vals["standard"][0])
    out["robust_beats_standard"] = bool(vals["robust"][0] > vals["standard"][0]) if ok else None
    return out


def score_report(aliases: Mapping[str, str], stats: Mapping[str, Mapping[str, np.ndarray]],
                 targets: Mapping[str, np.ndarray], ease: Mapping[str, np.ndarray],
                 split: np.ndarray, ids: Sequence[str], *, observers: Sequence[str] | None = None,
                 human: Mapping[str, np.ndarray | None] | None = None,
                 heldout: Sequence[str] = ("validation", "test"), seed: int = 0) -> dict:
    """The ``metrics/details/score.json`` content (``nan`` becomes ``null``).

    ``stats[model]`` holds ``gt_logit`` and ``pred``; ``targets[model]`` the true class index;
    ``ease[alias]`` = 1 - within-class difficulty. Each alias's scores are judged by the human
    column (``human["accuracy"]``, optional ``human["trials"]``) when given, else by observer
    models' correctness on the ``heldout`` splits.
    """
    split = np.asarray(split)
    folds = fold_of(ids, 5, seed)
    correct = {m: np.asarray(stats[m]["pred"]) == np.asarray(targets[m]) for m in stats}
    names = {m: a for a, m in reversed(list(aliases.items()))}
    out: dict = {"n_images": int(len(split)), "models": dict(aliases),
                 "accuracy": {names.get(m, m): accuracy_by_split(stats[m]["pred"], targets[m], split) for m in stats},
                 "logit_rank_correlation": rank_correlations({a: stats[m]["gt_logit"] for a, m in aliases.items()})}
    rows = np.isin(split, list(heldout))
    if human is not None:
        rows = np.isfinite(human["accuracy"])
        basis = "humans"
    else:
        basis = "observers" if any(observers_for(m, aliases, observers) for m in aliases.values()) else "none"
        out["heldout_splits"] = list(heldout) if rows.any() else "all (no held-out rows)"
        rows = rows if rows.any() else np.ones(len(split), dtype=bool)
    out["basis"], out["n_judged"] = basis, int(rows.sum())
    judged = {k: np.asarray(v)[rows] for k, v in correct.items()}
    rec = {alias: _judge_alias(alias, m, aliases, stats, ease, rows, folds, basis, human, judged, observers)
           for alias, m in aliases.items()}
    out["recognisability"] = rec
    out["summary"] = _summary(aliases, rec, basis)
    return clean(out)


def _judge_alias(alias: str, model: str, aliases: Mapping[str, str], stats: Mapping, ease: Mapping,
                 rows: np.ndarray, folds: np.ndarray, basis: str, human: Mapping | None,
                 correct: Mapping[str, np.ndarray], observers: Sequence[str] | None) -> dict:
    """One alias's gt-logit and ease scores judged by the humans or by its observer models."""
    scores = {"gt_logit": np.asarray(stats[model]["gt_logit"])[rows], "ease": np.asarray(ease[alias])[rows]}
    if basis == "humans":
        trials = None if human.get("trials") is None else np.asarray(human["trials"])[rows]
        return {k: predictiveness(v, np.asarray(human["accuracy"])[rows], trials, folds[rows])
                for k, v in scores.items()}
    judges = {o: correct[o] for o in observers_for(model, aliases, observers)}
    block = {k: _observer_block(v, judges, folds[rows]) for k, v in scores.items()} if judges else {}
    block["observers"] = list(judges)
    return block


def clean(obj):
    """JSON-ready: ``nan``/``inf`` -> None, numpy scalars -> Python numbers."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
