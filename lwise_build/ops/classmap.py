"""Corpus labels and model heads: which output of a model is each corpus class.

A model's head may be larger than the corpus (an ImageNet model on 16 superclasses) or ordered
differently; classes are matched by name (or given as indices), and every mismatch is a
one-line error naming where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import UserError


def map_targets(classes: Sequence[str], values: Sequence[Any], where: str, lenient: bool = False) -> np.ndarray:
    """Model class index per row from class names (str) or indices (int); one-line error otherwise
    (``lenient``: -1 for a value that is not a class of the model)."""
    index = {str(c): i for i, c in enumerate(classes)}
    keys = [str(v) for v in values]
    lut = {}
    for key, v in dict(zip(keys, values, strict=True)).items():  # first occurrence order
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if not 0 <= int(v) < len(classes):
                if lenient:
                    lut[key] = -1
                    continue
                raise UserError(f"{where}: class index {int(v)} is outside the model's {len(classes)} classes")
            lut[key] = int(v)
        elif key in index:
            lut[key] = index[key]
        elif lenient:
            lut[key] = -1
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


def model_targets(model_classes: Sequence[str], names: Sequence[str], labels: Sequence[int], where: str, *,
                  class_map: Mapping[str, str] | None = None, target_values: Sequence[Any] | None = None,
                  lenient: bool = False) -> np.ndarray:
    """Model head index per row: ``target_values`` (a metadata column, e.g. the fine ImageNet class)
    if given, else each label's name through ``class_map`` (scoring's mapping, docs/methods.md).

    The one mapping of corpus labels onto a model's head that every stage uses. ``lenient``: -1
    for a row whose class the model lacks (a model trained on other classes), not an error; a
    label the map sends to a class the model lacks then falls back to its own name."""
    if target_values is not None:
        return map_targets(model_classes, target_values, f"{where}.target_column", lenient)
    class_map = class_map or {}
    for key in class_map:
        if key not in names:
            more = ", ..." if len(names) > 10 else ""
            raise UserError(f"{where}.class_map: {key!r} is not a label of the corpus ({', '.join(names[:10])}{more})")
    known = {str(c) for c in model_classes}
    values = [class_map[n] if n in class_map and (not lenient or str(class_map[n]) in known) else n for n in names]
    mapped = map_targets(model_classes, values, where, lenient) if names else np.zeros(0, np.int64)
    return mapped[np.asarray(labels, dtype=np.int64)]


def choice_groups(targets: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, ...]:
    """Per corpus class, the head outputs its images map to (one for a plain head, several fine
    classes for a superclass): the alternatives of a forced choice over the corpus's classes."""
    targets, labels = np.asarray(targets, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    return tuple(np.unique(targets[labels == c]) for c in range(n_classes))


def forced_choice(logits: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """Corpus class per row chosen among the corpus's classes only: the class whose best head
    output is highest (model_metamers_pytorch's 16-way ImageNet choice, L-WISE's mapped model)."""
    logits = np.asarray(logits)
    if all(len(g) == 1 for g in groups):
        return logits[:, np.concatenate(groups)].argmax(1).astype(np.int64)
    best = np.stack([logits[:, g].max(1) if len(g) else np.full(len(logits), -np.inf) for g in groups], 1)
    return best.argmax(1).astype(np.int64)
