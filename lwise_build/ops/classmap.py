"""Corpus labels and model heads: which output of a model is each corpus class.

A model's head may be larger than the corpus (an ImageNet model on 16 superclasses) or ordered
differently; classes are matched by name (or given as indices), and every mismatch is a
one-line error naming where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import UserError


def map_targets(classes: Sequence[str], values: Sequence[Any], where: str) -> np.ndarray:
    """Model class index per row from class names (str) or indices (int); one-line error otherwise."""
    index = {str(c): i for i, c in enumerate(classes)}
    keys = [str(v) for v in values]
    lut = {}
    for key, v in dict(zip(keys, values, strict=True)).items():  # first occurrence order
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if not 0 <= int(v) < len(classes):
                raise UserError(f"{where}: class index {int(v)} is outside the model's {len(classes)} classes")
            lut[key] = int(v)
        elif key in index:
            lut[key] = index[key]
        else:
            raise UserError(f"{where}: label {key!r} is not a class of the model "
                            f"(map it with score.class_map or score.target_column)")
    return np.fromiter((lut[k] for k in keys), dtype=np.int64, count=len(keys))


def head_index(model_classes: Sequence[str], corpus_classes: Sequence[str], where: str) -> np.ndarray:
    """Corpus label index -> index in the model's head, by name; a missing class is an error."""
    model_classes = list(model_classes)
    if model_classes == list(corpus_classes):
        return np.arange(len(corpus_classes), dtype=np.int64)
    missing = [c for c in corpus_classes if c not in model_classes]
    if missing:
        raise UserError(f"{where} has no class {missing[0]!r} (its classes: {', '.join(model_classes[:10])})")
    return np.asarray([model_classes.index(c) for c in corpus_classes], dtype=np.int64)


def corpus_index(model_classes: Sequence[str], corpus_classes: Sequence[str]) -> np.ndarray:
    """Model head index -> corpus label index by name (-1 where the corpus lacks the class)."""
    where = {c: i for i, c in enumerate(corpus_classes)}
    return np.asarray([where.get(c, -1) for c in model_classes], dtype=np.int64)
