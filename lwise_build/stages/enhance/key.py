"""What a cached enhance unit (one image at one budget, by one guide) depends on: its cache key."""

from __future__ import annotations

from ..keys import CacheKey

METRICS_ONLY = "only the metrics and figures, recomputed every run from cached units"

KEY = CacheKey(
    version=4,  # 3: stored images never score below the original after rounding; 4: channels-last
    params=("enhance.objective", "enhance.norm", "enhance.step_size", "enhance.steps", "enhance.batch_size"),
    run_fields=("model_hash", "diverge", "device"),
    unit_fields=("image_id", "target", "budget"),
    derived={
        "seed": "chooses the metrics sample (" + METRICS_ONLY + ")",
        "device": "the device field: the device type it picks",
        "enhance.model": "the model_hash field (the guide's weights, normalisation and head: models/store.model_digest)",
        "enhance.compare_guides": "chooses which guides' units exist (the model_hash field)",
        "enhance.diverge_from": "the diverge field: the head outputs it maps to",
        "enhance.budgets": "the budget field",
        "enhance.splits": "chooses which images' units exist",
        "enhance.observers": METRICS_ONLY,
        "enhance.metrics_sample": METRICS_ONLY,
        "enhance.grid_images": METRICS_ONLY,
        "score_mapping": "the target and diverge fields (scoring's class mapping)",
        "stimuli": "the JPEG metrics only, " + METRICS_ONLY,
    },
)
