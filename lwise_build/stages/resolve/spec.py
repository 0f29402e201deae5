"""The ``resolve`` stage's spec: always runs, reads the whole params file, writes every other
stage's resolved params and the source's fingerprint (cheap: a stat per unchanged file)."""

from __future__ import annotations

from ...config.params import Params
from ..spec import DvcPath, StageSpec


def describe(params: Params, corpus: str) -> str:  # noqa: ARG001 - StageSpec.describe's signature
    return "source fingerprint, resolved params"


SPEC = StageSpec(
    name="resolve", output="resolved", stage="lwise_build.stages.resolve.stage:Resolve", describe=describe,
    help="Fingerprint the source and resolve every stage's params into data/<corpus>/resolved/.",
    always_changed=True, params_file=True,
    outs=(DvcPath("resolved", cache=False),),
)
