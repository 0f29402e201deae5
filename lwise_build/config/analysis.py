"""The ``analysis`` params section: how ``lwise-build analyze`` reads collected responses.

Defaults are the reference analysis (L-WISE notebooks/make_figs.ipynb; docs/methods.md,
"Experiments and analysis"): catch accuracy >= 0.9 with timeouts counted as failures, trial-level
bootstrap (10,000) and chi-square tests against control, the calibration trimmed at +-3 SD with
stratified 10-fold AUC (random_state 42) and a p-value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import UserError
from .schema import fraction, non_negative, param, positive


@dataclass(frozen=True)
class AnalysisParams:
    """How ``lwise-build analyze`` reads responses: exclusions, intervals, tests, calibration."""

    control: str = param("control", doc="the condition gains are relative to")
    min_catch_accuracy: float = param(0.9, check=fraction, doc="exclude a participant below this on catch "
                                                               "trials (timeouts count as failures)")
    require_complete: bool = param(True, doc="exclude sessions that did not reach the end")
    bootstrap: int = param(10_000, check=positive, doc="bootstrap resamples")
    bootstrap_unit: Literal["trial", "participant"] = param(
        "trial", doc="resample trials (the reference) or participants for the intervals")
    ci: float = param(0.95, check=fraction, doc="confidence level of the intervals")
    chi2_yates: bool = param(True, doc="Yates' continuity correction in the 2x2 chi-square test "
                                       "(scipy.stats.chi2_contingency's default)")
    calibration_conditions: list[str] | None = param(
        None, doc="conditions whose natural test trials fit the calibration; None = the control")
    calibration_score: str | None = param(
        None, doc="score column mapped to predicted accuracy; None = <first alias>_gt_logit")
    calibration_trim_sd: float | None = param(3.0, check=positive, doc="drop trials whose score lies beyond "
                                                                       "mean +- this many SD; None = keep all")
    calibration_folds: int = param(10, check=positive, doc="StratifiedKFold folds of the reference AUC "
                                                           "(the ImageNet variant: 500)")
    calibration_fold_seed: int = param(42, check=non_negative, doc="their random_state (the reference: 42)")
    calibration_standardise: bool = param(False, doc="z-score the score before the fit (the ImageNet variant)")
    folds: int = param(5, check=positive, doc="folds of the AUC grouped by image (a seeded hash of the id)")
    max_file_mb: float = param(200, check=positive, doc="response files larger than this are skipped, named")
    seed: int = param(0, doc="seed of the analysis (bootstrap resampling and image folds)")

    def validate(self, path: str) -> None:
        if self.calibration_folds < 2 or self.folds < 2:
            raise UserError(f"{path}: calibration_folds and folds must be at least 2")
