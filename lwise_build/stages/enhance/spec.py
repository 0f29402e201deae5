"""The ``enhance`` stage's spec: images nudged towards their class by a guide model
(``enhance.model``; unset turns the stage off) at every budget."""

from __future__ import annotations

from typing import Any

from ...config.params import Params
from ..resolving import mapping, plain, section
from ..spec import DvcPath, StageSpec
from .key import KEY


def resolved(params: Params, corpus: str) -> dict[str, Any]:
    """The enhance section, the stimulus format when it is JPEG (the metrics measure it) and
    scoring's class mapping when set (the targets)."""
    out, ex = {**section(params, corpus, "enhance"), **mapping(params, corpus)}, params.corpus(corpus).export
    if ex.stimulus_format == "jpeg":
        out["stimuli"] = plain({"format": ex.stimulus_format, "jpeg_quality": ex.jpeg_quality})
    return out


def splits(params: Params, corpus: str) -> list[tuple[str, str, int]]:
    """The splits it enhances: each must hold an image (``lwise-build check``)."""
    return [("enhance.splits", s, 1) for s in params.corpus(corpus).enhance.splits]


def describe(params: Params, corpus: str) -> str:
    ep = params.corpus(corpus).enhance
    if not SPEC.enabled(params, corpus):
        return "disabled"
    return f"guide {ep.model}, budgets {', '.join(f'{b:g}' for b in ep.budgets)}"


SPEC = StageSpec(
    key=KEY, name="enhance", output="enhanced", section="enhance", stage="lwise_build.stages.enhance.stage:Enhance",
    help="Enhanced images at every budget into data/<corpus>/enhanced/.", describe=describe, resolved=resolved,
    enabled_by="enhance.model", splits=splits, executor=True,
    deps=("resolved/enhance.json", "images", "models"),
    outs=("enhanced", "metrics/details/enhance.json"),
    metrics=(DvcPath("metrics/enhance", note="one row per budget (eps=0: the originals)"),),
    plots=(DvcPath("plots/enhance", note="PNGs, and gain-<guide>.csv: one line per guide",
                   plot=(("template", "linear"), ("x", "budget"), ("y", "mean_gain"))),),
)
