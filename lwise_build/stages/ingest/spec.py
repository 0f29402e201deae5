"""The ``ingest`` stage's spec: the canonical images of a corpus, from its source."""

from __future__ import annotations

from typing import Any

from ...config.params import Params
from ...config.schema import to_plain
from ..resolving import plain
from ..spec import DvcPath, StageSpec
from .key import KEY


def resolved(params: Params, corpus: str) -> dict[str, Any]:
    """The seed and the ingest section (the source itself enters through source.json)."""
    return plain({"seed": params.seed, "ingest": to_plain(params.corpus(corpus).ingest)})


def describe(params: Params, corpus: str) -> str:
    ingest = params.corpus(corpus).ingest
    return f"{ingest.source}, {ingest.image_size} px"


SPEC = StageSpec(
    key=KEY, name="ingest", output="images", section="ingest", stage="lwise_build.stages.ingest.stage:Ingest",
    help="Canonicalise a corpus's images into data/<corpus>/images/.", describe=describe, resolved=resolved,
    deps=("resolved/source.json", "resolved/ingest.json"),
    outs=("images", DvcPath("metrics/details/ingest.json", note="the bad-input report and per-class counts")),
    metrics=("metrics/ingest.json",),
)
