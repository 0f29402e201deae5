"""The ``train`` stage's spec: one DVC stage per model (``foreach: ${models}``), trained or
imported into its corpus's ``models/<model>/``."""

from __future__ import annotations

from typing import Any

from ...config.params import Params
from ...config.schema import to_plain
from ..resolving import checkpoint_digest, is_local, mapping, plain
from ..spec import DvcPath, StageSpec


def resolved(params: Params, model: str) -> dict[str, Any]:
    """What a model's folder depends on: the seed, the device, the model's entry, the content hash
    of a local checkpoint file (replacing the file rebuilds the model and all it feeds) and its
    corpus's class mapping (the labels its validation metrics are taken against)."""
    spec = params.model(model)
    out = {"seed": params.seed, "device": params.device, "model": to_plain(spec), **mapping(params, spec.corpus)}
    if spec.checkpoint and is_local(spec.checkpoint):
        out["checkpoint_sha256"] = checkpoint_digest(spec.checkpoint)
    return plain(out)


def describe(params: Params, model: str) -> str:
    m = params.model(model)
    return f"{'train' if m.train else 'import checkpoint'}, {m.arch}"


SPEC = StageSpec(
    name="train", output="models", per="model", stage="lwise_build.stages.train.stage:Train",
    help="Train (or import) MODEL on CORPUS into data/<corpus>/models/<model>/.", describe=describe,
    resolved=resolved,
    deps=("resolved/train-{model}.json", "images"),
    outs=("models/{model}", "metrics/details/train-{model}.json"),
    metrics=("metrics/train-{model}.json",),
    plots=(DvcPath("plots/train-{model}.csv", plot=(("template", "linear"), ("x", "epoch"), ("y", "val_accuracy"),
                                                    ("title", "validation accuracy per epoch ({model})"))),),
)
