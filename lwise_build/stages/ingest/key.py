"""What a cached ingest unit (one source file's canonical PNG) depends on: its cache key."""

from __future__ import annotations

from ..keys import CacheKey

ASSEMBLED = "used when the table is assembled from the cached PNGs, every run"
FILES = "which files are read, hence the content field"

KEY = CacheKey(
    version=1,
    params=("ingest.image_size", "ingest.grayscale"),
    run_fields=("pillow",),
    unit_fields=("content",),
    derived={
        "seed": ASSEMBLED + " (the seeded splits)",
        "ingest.source": FILES,
        "ingest.image_column": FILES,
        "ingest.label_column": ASSEMBLED,
        "ingest.split_column": ASSEMBLED,
        "ingest.hf_split": FILES,
        "ingest.hf_revision": FILES,
        "ingest.splits": ASSEMBLED,
        "ingest.max_bad_fraction": ASSEMBLED,
        "ingest.min_per_class": ASSEMBLED,
        "ingest.shard_mb": ASSEMBLED,
    },
    excluded={"ingest.workers": "how many processes decode; each file's PNG is the same"},
)
