"""Names and limits several sections share (objectives, norms, split names, the fixed batch)."""

from __future__ import annotations

SOURCE_SCHEMES = ("builtin", "imagefolder", "manifest", "hf")
#: Enhancement objectives (minimised): -z_gt, -(z_gt - mean z_other), cross-entropy.
OBJECTIVES = ("logit", "logit_diverge", "cross_entropy")
#: Perturbation norms of enhancement and adversarial training.
NORMS = ("l2", "linf")
#: Every batch of score, enhance and metamers runs padded to its batch size: at a fixed shape an
#: image's numbers do not depend on the images beside it, so cached results are exact per image
#: (docs/architecture.md). Below 16 rows CPU kernels can depend on an image's position.
MIN_FIXED_BATCH = 16
FIXED_BATCH_DOC = "every batch runs at this size (padded), so results are exact per image; at least 16"


def fixed_batch(v: int) -> str | None:
    return None if v >= MIN_FIXED_BATCH else f"must be at least {MIN_FIXED_BATCH} (a fixed batch shape)"


#: Largest canonical image side: one float batch of 64 RGB images at 4096 px is already 13 GB,
#: and the decoders refuse inputs past 268M pixels (about 16k x 16k) as decompression bombs.
MAX_IMAGE_SIZE = 4096


def image_side(v: int) -> str | None:
    if v <= 0:
        return "must be positive"
    return None if v <= MAX_IMAGE_SIZE else (
        f"must be at most {MAX_IMAGE_SIZE} (larger canonical images do not fit a batch in memory)")


#: The split names every stage knows, in display order.
SPLITS = ("train", "validation", "test")
