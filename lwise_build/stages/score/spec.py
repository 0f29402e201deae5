"""The ``score`` stage's spec: difficulty columns from each scoring model (``score.models``)."""

from __future__ import annotations

from typing import Any

from ...config.params import Params
from ..resolving import section
from ..spec import DvcPath, StageSpec
from .key import KEY


def resolved(params: Params, corpus: str) -> dict[str, Any]:
    """The seed, the device and the score section."""
    return section(params, corpus, "score")


def describe(params: Params, corpus: str) -> str:
    return ", ".join(f"{a}={m}" for a, m in params.corpus(corpus).score.models.items()) or "no scoring models"


SPEC = StageSpec(
    key=KEY, name="score", output="scores", section="score", stage="lwise_build.stages.score.stage:Score",
    help="Difficulty columns from each scoring model into data/<corpus>/scores/.", describe=describe,
    resolved=resolved, enabled_by="score.models", executor=True,
    deps=("resolved/score.json", "images", "models"),
    outs=("scores", "metrics/details/score.json"),
    metrics=(DvcPath("metrics/score", note="one row per score alias"),),
    plots=(DvcPath("plots/score", note="PNGs, and recognisability.csv: one bar per score and judge",
                   plot=(("template", "bar_horizontal"), ("x", "auc"), ("y", "series"))),),
)
