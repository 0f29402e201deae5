"""The notebook entry points (``from lwise_build import score, enhance, metamers, load_model``).

The methods themselves live in :mod:`.ops`; these add what a notebook wants on top: PNG bytes
as inputs, class names as labels, content ids as default seeds. Same numbers as the stages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from .config.load import load_params
from .errors import UserError
from .io.images import encode_png, image_id, quantize
from .models.inference import forward_stats, resolve_precision, score_pngs, tensor_batches
from .models.store import load_model
from .ops import metamer as _metamer
from .ops.classmap import map_targets
from .ops.difficulty import with_difficulty
from .ops.enhance import enhance

__all__ = ["content_ids", "enhance", "load_model", "load_params", "metamers", "score"]


def score(model: torch.nn.Module, images: torch.Tensor | Iterable[Any], labels: Sequence[Any], *,
          batch_size: int = 256, device: str | torch.device | None = None,
          targets: Sequence[int] | None = None, precision: str = "auto",
          workers: int | None = None) -> dict[str, np.ndarray]:
    """Difficulty columns of ``images`` under ``model`` (a :class:`~.models.classifier.Classifier`).

    ``images``: a float tensor (N, C, H, W) in [0, 1], or canonical PNG bytes (or image structs
    from a table). ``labels``: class names or model class indices; difficulty is min-maxed within
    each label. ``targets``: model class indices to score instead (e.g. the fine class when
    ``labels`` are superclasses). ``device``: default the model's. Returns arrays ``gt_logit``,
    ``difficulty``, ``difficulty_global``, ``pred`` (model class index), ``prob``, ``margin``.
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev).eval()
    labels = np.asarray(labels)
    targets = _targets(getattr(model, "classes", None), labels, targets)
    items = images if isinstance(images, torch.Tensor) else list(images)
    if not len(items) == len(labels) == len(targets):
        raise UserError(f"score: {len(items)} images, {len(labels)} labels and {len(targets)} targets")
    if isinstance(items, torch.Tensor):
        stats = forward_stats({"m": model}, tensor_batches(items, batch_size), {"m": targets}, dev,
                              resolve_precision(precision, dev), batch_size=batch_size)["m"]
    else:
        stats = score_pngs({"m": model}, items, {"m": targets}, dev, batch_size=batch_size,
                           workers=workers, precision=precision)["m"]
    return with_difficulty(stats, labels)


def _targets(classes: Sequence[str] | None, labels: np.ndarray, targets: Sequence[int] | None) -> np.ndarray:
    """Explicit targets, else labels as model class indices or names (through ``classes``)."""
    if targets is not None:
        values: list[Any] = [int(t) for t in targets]
    elif classes is None and labels.dtype.kind not in "iu":
        raise UserError("score: labels are names but the model has no `classes`; pass targets")
    else:
        values = labels.tolist()
    if classes is None:
        return np.asarray(values, dtype=np.int64)
    return map_targets(classes, values, "score")


def content_ids(images: torch.Tensor) -> list[str]:
    """Ids of images as stored (PNG of the quantized pixels): the corpus ids for canonical images."""
    return [image_id(encode_png(a)) for a in quantize(images)]


def metamers(model: Any, layer: str, images: torch.Tensor, *, ids: Sequence[str] | None = None,
             **kwargs: Any) -> torch.Tensor:
    """Metamers of ``images`` at ``layer`` (see :func:`.ops.metamer.metamers` for the options).

    ``ids`` seed each image's init noise; by default the content ids of the images as stored,
    so canonical corpus images get the same metamers here as in the stage.
    """
    return _metamer.metamers(model, layer, images, content_ids(images) if ids is None else ids, **kwargs)
