"""The ``experiment`` params section: the human experiment as the L-WISE studies ran it.

Every timing and design value of the published learning tasks is a param with the published
default where the reference states one (docs/methods.md, "Experiments and analysis"); the
task-specific ones (aliases, keys, repeats, bonus) are set by the recipes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..errors import UserError
from .schema import each, fraction, non_negative, param, positive

#: Where the page may save trials: a `lwise-build serve` collector, JATOS, `post_url`, a download.
SAVE_TARGETS = ("collector", "jatos", "post", "download")

#: The jsPsych packages an experiment page loads, with the versions it was written against.
JSPSYCH_PACKAGES = {
    "jspsych": "8.3.0",
    "@jspsych/plugin-html-button-response": "2.1.0",
    "@jspsych/plugin-html-keyboard-response": "2.2.0",
    "@jspsych/plugin-preload": "2.1.0",
}

#: Neutral pseudo-words for per-participant choice aliases (the recipes use the reference's
#: Leda/Tyro/Eris/Ajax).
DEFAULT_ALIASES = (
    "blicket", "dax", "fep", "gazzer", "kiki", "bouba", "toma", "wug", "zorp", "mipa", "lorf",
    "nuvo", "pell", "quib", "rask", "sefa", "tiv", "vonk", "yem", "zuda", "hoft", "jarn", "kelt",
    "plim",
)


@dataclass(frozen=True)
class ExperimentParams:
    """The jsPsych experiment built from each curriculum (the published learning-task protocol)."""

    title: str = param("Image categorisation", doc="the experiment's title shown to participants")
    library_url: str = param(
        "https://unpkg.com/{package}@{version}",
        doc="where jsPsych and its plugins load from: {package} and {version} are filled in; "
            "e.g. node_modules/{package} for a local `npm install` (offline labs, `serve --node-modules`)")
    # ---- choices
    response: Literal["buttons", "keys"] = param("buttons", doc="choice buttons, or keys")
    keys: list[str] = param([], doc="response=keys: one key per choice, in display order (e.g. [f, j])")
    choice_layout: Literal["ring", "below"] = param("ring", doc="buttons in a ring around the image (the "
                                                                "reference) or in rows below it")
    choice_names: Literal["classes", "aliases"] = param(
        "classes", doc="choice labels: the class names (or class_labels), or per-participant aliases")
    class_labels: dict[str, str] = param({}, doc="class -> label shown instead of its name (e.g. MHIST: "
                                                 "{HP: Benign, SSA: Malignant})")
    aliases: list[str] = param(list(DEFAULT_ALIASES), doc="alias pool, drawn per participant without "
                                                          "replacement (choice_names=aliases)")
    choice_order: Literal["fixed", "shuffled"] = param(
        "fixed", doc="choice positions (and keys): class order, or shuffled per participant sequence")
    # ---- timing
    fixation_ms: int = param(0, check=non_negative, doc="fixation cross before each image; 0 = none "
                                                        "(the reference shows none)")
    stimulus_ms: int | None = param(None, check=positive, doc="None: the image stays until the response; "
                                                              "e.g. 17 for the ImageNet task")
    post_stimulus_ms: int = param(200, check=non_negative, doc="blank after a fixed-duration image")
    click_delay_ms: int = param(200, check=non_negative, doc="responses ignored for this long")
    response_limit_ms: int | None = param(10_000, check=positive, doc="time to respond after the click delay; "
                                                                      "None: no limit (ImageNet task: 15000)")
    feedback: Literal["self_paced", "timed"] = param(
        "self_paced", doc="self_paced: feedback stays until the space bar or the button, accepted after the "
                          "lockout (the reference); timed: it ends after the lockout")
    feedback_correct_ms: int = param(500, check=non_negative, doc="feedback lockout after a correct answer")
    feedback_incorrect_ms: int = param(1500, check=non_negative, doc="lockout after a wrong or missed answer")
    gap_ms: int = param(200, check=non_negative, doc="blank between trials")
    # ---- display
    stimulus_size: float = param(0.35, check=fraction, doc="image side as a fraction of the smaller screen side "
                                                           "(the reference's 12 degrees: about 0.35)")
    stimulus_max: float = param(0.7, check=fraction, doc="cap: this fraction of the smaller window side")
    image_px: int | None = param(None, check=positive, doc="a fixed image side in CSS px instead of the fractions")
    # ---- attention checks
    catch_per_block: int = param(2, check=non_negative, doc="easy circle-vs-triangle trials per block")
    repeats_per_block: list[int] = param([], check=each(non_negative),
                                         doc="repeat trials per block (block 1 first; the reference: "
                                             "[0, 1, 1, 1, 1, 1, 1, 1, 3, 3]); [] = none")
    repeat_image: Literal["held_out", "earlier"] = param(
        "held_out", doc="held_out: one natural image outside the sequence, the same for every repeat (the "
                        "reference); earlier: repeat images shown earlier in the sequence")
    # ---- pages
    consent_text: str = param(
        "<p>This is a research study on how people learn to recognise images. Taking part is voluntary and "
        "you may stop at any time. Your responses are recorded without your name.</p>",
        doc="HTML of the consent page; \"\" = no consent page")
    consent_url: str | None = param(None, doc="link to the full consent form, shown on the consent page")
    block_breaks: bool = param(True, doc="a break screen between blocks")
    instructions: list[str] = param([], doc="instruction pages (HTML); [] = the built-in text")
    time_limit_page: bool = param(True, doc="a page stating the response limit (and the bonus, if any)")
    bonus_thresholds: list[float] = param([], check=each(fraction), doc="test accuracy for each bonus tier, "
                                                                         "ascending (the reference: .75, .85, .95)")
    bonus_amounts: list[float] = param([], check=each(non_negative), doc="bonus per tier (the reference: 5, 10, 20)")
    bonus_currency: str = param("USD", doc="currency of the bonus amounts")
    show_accuracy: bool = param(True, doc="show the test accuracy (and bonus) on the end screen")
    completion_text: str = param("Thank you! You have finished the experiment.", doc="HTML")
    # ---- saving and the end
    save: list[Literal["collector", "jatos", "post", "download"]] = param(
        ["collector", "jatos", "download"],
        doc="where trials are saved as they happen: the `lwise-build serve` collector that served the page, "
            "JATOS, post_url; download: a file at the end when none of those is live")
    post_url: str | None = param(None, doc="save=post: POST each batch of rows here (JSON)")
    batch_rows: int = param(50, check=positive, doc="most rows sent in one request")
    data_format: Literal["csv", "json"] = param("csv", doc="format of a downloaded data file")
    completion_url: str | None = param(None, doc="redirect here at the end; {participant} and {code} are filled "
                                                 "in (completion_code alone: Prolific's completion link)")
    completion_code: str | None = param(None, doc="the study's completion code (Prolific)")
    screenout_code: str | None = param(None, doc="code for participants screened out at the end (catch "
                                                 "accuracy below screenout_catch_accuracy); None = no screen-out")
    screenout_catch_accuracy: float = param(0.9, check=fraction, doc="catch accuracy below which a session is "
                                                                     "screened out (with screenout_code)")
    participant_param: str = param("participant", doc="URL parameter naming the participant "
                                                      "(PROLIFIC_PID is read first)")
    index_param: str = param("index", doc="URL parameter with a participant number 0, 1, ...: blocked "
                                          "assignment over the condition slots (curricula weights)")
    preload_chunk: int = param(24, check=positive, doc="images loaded per chunk ahead of need")
    preload_retries: int = param(4, check=non_negative, doc="retries of an image that failed to load")
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
        self._validate_saving(path)
        self._validate_bonus(path)

    def _validate_saving(self, path: str) -> None:
        """A configuration that would save nowhere, or set a target it does not use, is refused."""
        if not self.save:
            raise UserError(f"{path}.save: the experiment would save nowhere; list at least one of "
                            f"{', '.join(SAVE_TARGETS)}")
        if len(set(self.save)) != len(self.save):
            raise UserError(f"{path}.save: a target is listed twice: {list(self.save)}")
        if "post" in self.save and not self.post_url:
            raise UserError(f"{path}.post_url: save lists post, so post_url must name the URL to POST to")
        if self.post_url and "post" not in self.save:
            raise UserError(f"{path}.save: post_url is set but save does not list post (add it, or remove post_url)")
        if self.screenout_code and not (self.completion_code or self.completion_url):
            raise UserError(f"{path}.screenout_code: needs completion_code or completion_url (where to send them)")

    def _validate_bonus(self, path: str) -> None:
        if len(self.bonus_thresholds) != len(self.bonus_amounts):
            raise UserError(f"{path}.bonus_amounts: one amount per bonus threshold, got "
                            f"{len(self.bonus_amounts)} for {len(self.bonus_thresholds)}")
        if list(self.bonus_thresholds) != sorted(set(self.bonus_thresholds)):
            raise UserError(f"{path}.bonus_thresholds: must be ascending, got {list(self.bonus_thresholds)}")
