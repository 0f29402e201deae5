"""The ``report`` stage's spec: a self-contained HTML explorer of what the stages built."""

from __future__ import annotations

from typing import Any

from ...config.params import Params
from ...config.schema import to_plain
from ..resolving import plain
from ..spec import StageSpec


def resolved(params: Params, corpus: str) -> dict[str, Any]:
    """The seed (the page's samples) and the report section."""
    return plain({"seed": params.seed, "report": to_plain(params.corpus(corpus).report)})


def describe(params: Params, corpus: str) -> str:  # noqa: ARG001 - StageSpec.describe's signature
    return ""


SPEC = StageSpec(
    name="report", output="report", section="report", stage="lwise_build.stages.report.stage:Report",
    help="The self-contained HTML explorer into data/<corpus>/report/.", describe=describe, resolved=resolved,
    plan_path="index.html",
    deps=("resolved/report.json", "images", "scores", "enhanced", "curricula", "metamers", "plots"),
    outs=("report",),
    assets=("lwise_build/assets",),
)
