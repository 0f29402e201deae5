"""What a cached metamer (one reference at one generator layer) depends on: its cache key."""

from __future__ import annotations

from ..keys import CacheKey

JUDGED = "the statistics, null and judges, recomputed every run from the cached metamers"

KEY = CacheKey(
    version=4,  # 3: channels-last batches (models/inference.padded); 4: BN folded in ResNet blocks
    params=("seed", "metamers.init_noise", "metamers.fake_relu", "metamers.batch_size"),
    run_fields=("model_hash", "layer", "step_sizes", "device"),
    unit_fields=("reference_id",),
    derived={
        "device": "the device field: the device type it picks",
        "metamers.generators": "the model_hash field (the generator's weights, normalisation and head)",
        "metamers.layers": "the layer field",
        "metamers.schedule": "the step_sizes field (the schedule's steps as run)",
        "metamers.steps": "the step_sizes field (the schedule's steps as run)",
        "metamers.step_size": "the step_sizes field (the schedule's steps as run)",
        "metamers.judges": JUDGED,
        "metamers.per_class": "chooses which references' units exist",
        "metamers.split": "chooses which references' units exist",
        "metamers.null_split": JUDGED,
        "metamers.null_pairs": JUDGED,
        "metamers.null_augment": JUDGED,
        "score_mapping": "forced choices of the judges: " + JUDGED,
    },
)
