"""The ``export`` stage's spec: the Hugging Face dataset folder (every stage's output, described)."""

from __future__ import annotations

from typing import Any

from ...config.checks import corpus_models
from ...config.params import Params
from ...config.schema import to_plain
from ...io.digests import file_digest
from ...io.paths import stage_dir
from ...io.psychds import data_file
from ..resolving import plain
from ..spec import DvcPath, StageSpec


def resolved(params: Params, corpus: str) -> dict[str, Any]:
    """Every section but report (the card describes them all) and the models it names; the
    experiment is a folder dep, and the calibration ``analyze`` wrote (outside the pipeline), and
    its trial data when ``export.responses`` is on, enter by their hashes, so ``dvc repro`` reruns
    export once they exist or change."""
    sections = {k: v for k, v in to_plain(params.corpus(corpus)).items()
                if k not in ("report", "executor", "experiment", "analysis")}
    cal = stage_dir(corpus, "analysis") / "calibration.json"
    extra = {"calibration_sha256": file_digest(cal)} if cal.is_file() else {}
    trials = stage_dir(corpus, "analysis") / "psychds" / data_file(corpus)
    if params.corpus(corpus).export.responses and trials.is_file():  # the opt-in responses config
        extra["responses_sha256"] = file_digest(trials)
    return plain({"seed": params.seed, "corpus": sections, **extra,
                  "models": {n: to_plain(params.model(n)) for n in corpus_models(params, corpus)}})


def describe(params: Params, corpus: str) -> str:
    return f"version {params.corpus(corpus).export.version}"


SPEC = StageSpec(
    name="export", output="hub", section="export", stage="lwise_build.stages.export.stage:Export",
    help="The Hugging Face dataset folder into data/<corpus>/hub/.", describe=describe, resolved=resolved,
    deps=("resolved/export.json", "images", "models", "scores", "enhanced", "curricula", "metamers", "experiment",
          "plots", DvcPath("metrics/details/ingest.json", note="the datasheet quotes the bad-input counts"),
          DvcPath("metrics/details/score.json", note="... and how well the scores predict recognisability")),
    outs=("hub",),
)
