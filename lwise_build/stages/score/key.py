"""What a cached score unit (one image under one model) depends on: its cache key declaration."""

from __future__ import annotations

from ..keys import CacheKey

METRICS_ONLY = "recognisability and difficulty are recomputed from the cached logits every run"

KEY = CacheKey(
    version=3,  # 3: channels-last batches (models/inference.padded)
    params=("score.batch_size",),
    run_fields=("model_hash", "precision", "device"),
    unit_fields=("image_id", "target"),
    derived={
        "seed": METRICS_ONLY,
        "device": "the device field: the device type it picks",
        "score.models": "chooses which models' units exist (the model_hash field)",
        "score.observers": "chooses which models' units exist (the model_hash field)",
        "score.target_column": "the target field",
        "score.class_map": "the target field",
        "score.heldout_splits": METRICS_ONLY,
        "score.precision": "the precision field: what it resolves to on the device",
    },
    excluded={"score.decode_workers": "how many processes decode the PNGs; the pixels are the same"},
)
