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


#: The split names every stage knows, in display order.
SPLITS = ("train", "validation", "test")
