"""The ``experiment`` and ``analysis`` params sections: the human experiment and its analysis.

Every timing and design value of the published learning tasks is a param with the published
default where the reference states one (docs/methods.md, "Experiments and analysis").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..errors import UserError
from .schema import each, fraction, non_negative, param, positive

#: The jsPsych packages an experiment page loads, with the versions it was written against.
JSPSYCH_PACKAGES = {
    "jspsych": "8.3.0",
    "@jspsych/plugin-html-button-response": "2.1.0",
    "@jspsych/plugin-html-keyboard-response": "2.2.0",
    "@jspsych/plugin-preload": "2.1.0",
}

#: Neutral pseudo-words for per-participant choice aliases (the moth task named classes by aliases).
DEFAULT_ALIASES = (
    "blicket", "dax", "fep", "gazzer", "kiki", "bouba", "toma", "wug", "zorp", "mipa", "lorf",
    "nuvo", "pell", "quib", "rask", "sefa", "tiv", "vonk", "yem", "zuda", "hoft", "jarn", "kelt",
    "plim",
)


@dataclass(frozen=True)
class ExperimentParams:
    """The jsPsych experiment built from each curriculum (the published learning-task design)."""

    title: str = param("Image categorisation", doc="the experiment's title shown to participants")
    library_url: str = param(
        "https://unpkg.com/{package}@{version}",
        doc="where jsPsych and its plugins load from: {package} and {version} are filled in; "
            "e.g. node_modules/{package} for a local `npm install` (offline labs)")
    response: Literal["buttons", "keys"] = param("buttons", doc="choice buttons, or keys")
    keys: list[str] = param([], doc="response=keys: one key per choice, in display order (e.g. [f, j])")
    choice_names: Literal["classes", "aliases"] = param(
        "classes", doc="button labels: the class names, or per-participant aliases")
    aliases: list[str] = param(list(DEFAULT_ALIASES), doc="alias pool (choice_names=aliases)")
    choice_order: Literal["fixed", "shuffled"] = param(
        "fixed", doc="choice order: class order, or shuffled per participant sequence")
    fixation_ms: int = param(500, check=non_negative, doc="fixation cross before each image; 0 = none "
                                                          "(not stated in the reference)")
    stimulus_ms: int | None = param(None, check=positive, doc="None: the image stays until the response; "
                                                              "e.g. 17 for the ImageNet task")
    post_stimulus_ms: int = param(200, check=non_negative, doc="blank after a fixed-duration image")
    click_delay_ms: int = param(200, check=non_negative, doc="responses ignored for this long")
    response_limit_ms: int | None = param(10_000, check=positive, doc="None: no limit (ImageNet task: 15000)")
    feedback_correct_ms: int = param(500, check=non_negative, doc="feedback lockout after a correct answer")
    feedback_incorrect_ms: int = param(1500, check=non_negative, doc="lockout after a wrong or missed answer")
    gap_ms: int = param(200, check=non_negative, doc="blank between trials")
    image_px: int = param(256, check=positive, doc="displayed image width in CSS pixels")
    catch_per_block: int = param(2, check=non_negative, doc="easy circle-vs-triangle trials per block")
    repeats_per_block: list[int] = param([], check=each(non_negative),
                                         doc="repeat-stimulus trials per block (block 1 first); [] = none")
    block_breaks: bool = param(True, doc="a break screen between blocks")
    instructions: list[str] = param([], doc="instruction pages (HTML); [] = the built-in text")
    completion_text: str = param("Thank you! You have finished the experiment.", doc="HTML")
    data_format: Literal["csv", "json"] = param("csv", doc="format of the saved jsPsych data")
    download: bool = param(True, doc="save the data as a local download at the end")
    post_url: str | None = param(None, doc="also POST the data (JSON body) to this URL")
    completion_url: str | None = param(None, doc="redirect here at the end (e.g. Prolific's completion "
                                                 "link); {participant} is filled in")
    participant_param: str = param("participant", doc="URL parameter naming the participant "
                                                      "(PROLIFIC_PID is read first)")
    index_param: str = param("index", doc="URL parameter with a participant number 0, 1, ...: blocked "
                                          "assignment over the condition slots (curricula weights)")
    seed: int = param(0, doc="choice order, aliases and attention-trial positions per sequence")

    def validate(self, path: str) -> None:
        if self.response == "keys" and len(set(self.keys)) != len(self.keys):
            raise UserError(f"{path}.keys: every key must be different, got {list(self.keys)}")
        if self.response == "keys" and not self.keys:
            raise UserError(f"{path}.keys: response=keys needs one key per choice")
        if len(set(self.aliases)) != len(self.aliases):
            raise UserError(f"{path}.aliases: every alias must be different")
        for key in ("participant_param", "index_param"):
            if not re.fullmatch(r"[A-Za-z_][\w-]*", getattr(self, key)):
                raise UserError(f"{path}.{key}: must be a URL parameter name, got {getattr(self, key)!r}")
        if "{package}" not in self.library_url:
            raise UserError(f"{path}.library_url: must contain {{package}}, got {self.library_url!r}")


@dataclass(frozen=True)
class AnalysisParams:
    """How ``lwise-build analyze`` reads responses: exclusions, bootstrap, calibration."""

    control: str = param("control", doc="the condition gains are relative to")
    min_catch_accuracy: float = param(0.75, check=fraction, doc="exclude a participant below this on "
                                                                "catch trials")
    require_complete: bool = param(True, doc="exclude sessions that did not reach the end")
    bootstrap: int = param(2000, check=positive, doc="bootstrap resamples of participants")
    ci: float = param(0.95, check=fraction, doc="confidence level of the intervals")
    calibration_conditions: list[str] | None = param(
        None, doc="conditions whose natural test trials fit the calibration; None = the control")
    calibration_score: str | None = param(
        None, doc="score column mapped to predicted accuracy; None = <first alias>_gt_logit")
    folds: int = param(5, check=positive, doc="cross-validation folds (by a seeded hash of the image id)")
    seed: int = param(0, doc="seed of the analysis (bootstrap resampling and folds)")
