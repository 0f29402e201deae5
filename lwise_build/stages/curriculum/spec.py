"""The ``curriculum`` stage's spec: trial sequences for every curriculum (``curricula``)."""

from __future__ import annotations

from typing import Any

from ...config.params import Params
from ...config.schema import to_plain
from ..resolving import plain
from ..spec import DvcPath, StageSpec


def resolved(params: Params, corpus: str) -> dict[str, Any]:
    """The curricula and the default difficulty alias (the first scoring alias)."""
    spec = params.corpus(corpus)
    return plain({"curricula": to_plain(spec.curricula), "default_difficulty": next(iter(spec.score.models), None)})


def describe(params: Params, corpus: str) -> str:
    return ", ".join(params.corpus(corpus).curricula) or "none"


SPEC = StageSpec(
    name="curriculum", output="curricula", section="curricula",
    stage="lwise_build.stages.curriculum.stage:Curriculum",
    help="Trial sequences for every curriculum into data/<corpus>/curricula/.", describe=describe,
    resolved=resolved, enabled_by="curricula",
    deps=("resolved/curriculum.json", "images", "scores", "enhanced"),
    outs=("curricula",),
    plots=(DvcPath("plots/curriculum", note="PNGs, and schedule-<name>.csv: one line per curriculum",
                   plot=(("template", "linear"), ("x", "block"), ("y", "budget"))),),
)
