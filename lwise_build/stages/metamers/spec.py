"""The ``metamers`` stage's spec: model metamers of each generator (``metamers.generators``) and
how recognisable they are."""

from __future__ import annotations

from typing import Any

from ...config.params import Params
from ..resolving import mapping, section
from ..spec import DvcPath, StageSpec
from .key import KEY


def resolved(params: Params, corpus: str) -> dict[str, Any]:
    """The metamers section, plus scoring's class mapping when one is set (forced choices)."""
    return {**section(params, corpus, "metamers"), **mapping(params, corpus)}


def splits(params: Params, corpus: str) -> list[tuple[str, str, int]]:
    """The references' split: a forced choice needs at least 2 images (``lwise-build check``)."""
    return [("metamers.split", params.corpus(corpus).metamers.split, 2)]


def describe(params: Params, corpus: str) -> str:
    return f"generators: {', '.join(params.corpus(corpus).metamers.generators) or 'none'}"


SPEC = StageSpec(
    key=KEY, name="metamers", output="metamers", section="metamers", stage="lwise_build.stages.metamers.stage:Metamers",
    help="Model metamers and their recognisability into data/<corpus>/metamers/.", describe=describe,
    resolved=resolved, enabled_by="metamers.generators", splits=splits, executor=True,
    deps=("resolved/metamers.json", "images", "models"),
    outs=("metamers", "metrics/details/metamers.json"),
    metrics=(DvcPath("metrics/metamers", note="one row per generator"),),
    plots=(DvcPath("plots/metamers", note="PNGs, and recognisability.csv: one bar per cell and judge",
                   plot=(("template", "bar_horizontal"), ("x", "recognisability"), ("y", "cell"))),),
)
