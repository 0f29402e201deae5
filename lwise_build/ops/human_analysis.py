"""The analysis of human responses: per-participant scores and per-condition effects.

Pure functions on trial dicts and arrays (docs/methods.md, "Experiments and analysis"): test
accuracy, training time (in the reference's definition and as summed trial screens) and
attention-check scores per participant; per condition the accuracy with bootstrap intervals
(``scipy.stats.bootstrap``, over trials as the reference or over participants), the accuracy
above chance, the L-WISE gain of that margin relative to control, a chi-square test against
control (``scipy.stats.chi2_contingency``) and the relative training time.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from ..seeding import seeded_rng

NAN = float("nan")
#: jsPsych rows that are part of a trial (their time counts as training time in training blocks).
TRIAL_ROLES = {"fixation", "stimulus", "post_stimulus", "response", "feedback", "gap", "wait"}
#: The two training-time definitions, as the column suffixes name them.
TIME_DEFINITIONS = ("reference", "screens")


def _mean(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else NAN


def participant_scores(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy on main test and training trials, catch accuracy and repeat agreement
    (timeouts count as wrong everywhere: their ``correct`` is false)."""
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


def training_time_screens(rows: Sequence[Mapping[str, Any]]) -> float:
    """Seconds spent on training-block trial screens (fixation to gap; instructions, breaks and
    reload gaps excluded), from jsPsych's ``time_elapsed`` at the end of each row, rows in
    recorded order; differences are taken within one page load only."""
    total, before, load = 0.0, 0.0, None
    for row in rows:
        now = float(row.get("time_elapsed") or before)
        if row.get("load") != load:  # a reload: jsPsych's clock starts again
            load, before = row.get("load"), 0.0
        if row.get("phase") == "train" and row.get("lwise_role") in TRIAL_ROLES:
            total += now - before
        before = now
    return total / 1000.0


def training_time_reference(trials: Sequence[Mapping[str, Any]]) -> float:
    """The reference's training time: seconds since the page was first loaded at the last main
    training response (instructions, preloading and self-paced feedback included).

    ``session_ms`` (since the first load, across reloads) when recorded, else ``t_page_ms`` or
    jsPsych's ``time_elapsed`` of that response (the same when the page was never reloaded).
    """
    last = [t for t in trials if t["kind"] == "main" and t["phase"] == "train"]
    if not last:
        return NAN
    row = max(last, key=lambda t: t["position"])
    for key in ("session_ms", "t_page_ms", "time_elapsed"):
        if row.get(key) is not None:
            return float(row[key]) / 1000.0
    return NAN


def block_accuracy(trials: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """Accuracy on main trials per block (a learning curve)."""
    blocks = sorted({t["block"] for t in trials if t["kind"] == "main"})
    return {b: _mean([t["correct"] for t in trials if t["kind"] == "main" and t["block"] == b]) for b in blocks}


# ---------------------------------------------------------------- conditions ----------------
@dataclass(frozen=True)
class ConditionData:
    """One condition's included participants: test correctness per participant (main test
    trials, timeouts wrong) and training seconds per participant in each definition."""

    correct: list[np.ndarray]
    seconds: dict[str, np.ndarray] = field(default_factory=dict)

    def pooled(self) -> np.ndarray:
        return np.concatenate(self.correct).astype(np.float64) if self.correct else np.zeros(0)

    def accuracies(self) -> np.ndarray:
        return np.array([c.mean() if len(c) else NAN for c in self.correct])


@dataclass(frozen=True)
class EffectSettings:
    """How intervals and tests are computed (the ``analysis`` params that matter here)."""

    control: str
    chance: float
    resamples: int = 10_000
    ci: float = 0.95
    unit: str = "trial"  # resample trials (the reference) or participants
    yates: bool = True
    seed: int = 0


def bootstrap(stat: Callable[..., np.ndarray], groups: Sequence[np.ndarray], n: int, ci: float,
              rng: np.random.Generator) -> tuple[float, float, float]:
    """``stat`` of the groups and its percentile interval (``scipy.stats.bootstrap``, each group
    resampled independently); draws where ``stat`` is undefined are left out of the interval.

    ``stat(*groups, axis)`` reduces along ``axis``; the interval is nan when a group has fewer
    than two values. Large groups are resampled in batches (the same draws as one batch when
    everything fits in one).
    """
    groups = [np.asarray(g, dtype=np.float64) for g in groups]
    if any(len(g) == 0 for g in groups):
        return NAN, NAN, NAN
    with np.errstate(divide="ignore", invalid="ignore"):
        point = float(stat(*groups, axis=-1))
    if any(len(g) < 2 for g in groups):
        return point, NAN, NAN
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        res = stats.bootstrap(groups, stat, n_resamples=n, vectorized=True, paired=False, method="percentile",
                              confidence_level=ci, rng=rng, batch=_batch(n, groups))
    draws = np.asarray(res.bootstrap_distribution)
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return point, NAN, NAN
    lo, hi = np.quantile(draws, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return point, float(lo), float(hi)


def _batch(n: int, groups: Sequence[np.ndarray]) -> int:
    """Resamples per batch so one batch holds at most ~4 million values (memory stays small)."""
    return max(1, min(n, 4_000_000 // max(1, sum(len(g) for g in groups))))


def condition_effects(data: Mapping[str, ConditionData], s: EffectSettings) -> dict[str, dict[str, Any]]:
    """Per condition: accuracy, accuracy above chance, gain over control with a chi-square test,
    and the relative training time in each definition."""
    out: dict[str, dict[str, Any]] = {}
    ctrl = data.get(s.control)
    for name, d in data.items():
        rng = seeded_rng(s.seed, "bootstrap", name)
        acc = d.pooled() if s.unit == "trial" else d.accuracies()
        row: dict[str, Any] = {"participants": len(d.correct), "trials": int(len(d.pooled()))}
        row["accuracy"] = _interval(bootstrap(_mean_of, [acc], s.resamples, s.ci, rng))
        row["above_chance"] = {k: v - s.chance for k, v in row["accuracy"].items()}  # the same draws, shifted
        for k in TIME_DEFINITIONS:
            secs = d.seconds.get(k, np.zeros(0))
            row[f"mean_training_time_{k}_s"] = float(np.mean(secs)) if len(secs) else NAN
        if ctrl is not None and name != s.control and ctrl.correct:
            row.update(_versus_control(d, ctrl, s, rng))
        out[name] = row
    return out


def _versus_control(d: ConditionData, ctrl: ConditionData, s: EffectSettings,
                    rng: np.random.Generator) -> dict[str, Any]:
    """Gain over control (bootstrap), the chi-square test, relative training times."""
    pick = (lambda x: x.pooled()) if s.unit == "trial" else (lambda x: x.accuracies())

    def gain(a: np.ndarray, c: np.ndarray, axis: int) -> np.ndarray:
        return _gain(a.mean(axis=axis), c.mean(axis=axis), s.chance)

    row: dict[str, Any] = {"gain_vs_control": _interval(bootstrap(gain, [pick(d), pick(ctrl)], s.resamples, s.ci, rng))}
    row.update(chi_square(d.pooled(), ctrl.pooled(), s.yates))
    for k in TIME_DEFINITIONS:
        a, c = d.seconds.get(k, np.zeros(0)), ctrl.seconds.get(k, np.zeros(0))
        ratio = (lambda x, y, axis: x.mean(axis=axis) / y.mean(axis=axis)) if len(a) and len(c) else None
        row[f"relative_training_time_{k}"] = _interval(
            bootstrap(ratio, [a, c], s.resamples, s.ci, rng) if ratio else (NAN, NAN, NAN))
    return row


def chi_square(correct: np.ndarray, control: np.ndarray, yates: bool = True) -> dict[str, float]:
    """Chi-square test of the 2 x 2 table (condition, control) x (correct, wrong) over trials."""
    table = np.array([[correct.sum(), len(correct) - correct.sum()], [control.sum(), len(control) - control.sum()]])
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return {"chi2_vs_control": NAN, "p_vs_control": NAN}
    res = stats.chi2_contingency(table, correction=yates)
    return {"chi2_vs_control": float(res.statistic), "p_vs_control": float(res.pvalue)}


def _mean_of(a: np.ndarray, axis: int) -> np.ndarray:
    return a.mean(axis=axis)


def _gain(a: np.ndarray, c: np.ndarray, chance: float) -> np.ndarray:
    """(accuracy - chance) / (control accuracy - chance) - 1: the L-WISE outcome measure."""
    margin = np.asarray(c - chance)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(margin > 0, (a - chance) / margin - 1, np.nan)


def _interval(triple: tuple[float, float, float]) -> dict[str, float]:
    return dict(zip(("mean", "low", "high"), triple, strict=True))
