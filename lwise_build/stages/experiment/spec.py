"""The ``experiment`` stage's spec: a run-ready jsPsych experiment per curriculum."""

from __future__ import annotations

from typing import Any

from ...config.params import Params
from ...config.schema import to_plain
from ..resolving import plain
from ..spec import StageSpec


def resolved(params: Params, corpus: str) -> dict[str, Any]:
    """The experiment section, the condition weights and the stimulus format it shares with export."""
    spec = params.corpus(corpus)
    return plain({"experiment": to_plain(spec.experiment), "weights": {n: c.weight for n, c in spec.curricula.items()},
                  "stimulus_format": spec.export.stimulus_format, "jpeg_quality": spec.export.jpeg_quality})


def describe(params: Params, corpus: str) -> str:
    return f"jsPsych, conditions: {', '.join(params.corpus(corpus).curricula) or 'none'}"


SPEC = StageSpec(
    name="experiment", output="experiment", section="experiment",
    stage="lwise_build.stages.experiment.stage:Experiment",
    help="Run-ready jsPsych experiments for every curriculum into data/<corpus>/experiment/.", describe=describe,
    resolved=resolved,
    deps=("resolved/experiment.json", "images", "enhanced", "curricula"),
    outs=("experiment",),
    assets=("lwise_build/assets/experiment",),
)
