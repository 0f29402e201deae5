"""An imported model's validation figures, computed once per weights and validation content.

Importing a checkpoint runs its clean and PGD evaluation on the validation split (tens of seconds
to minutes for a 224-px ResNet-50). The train stage reruns whenever the images table changes, so
the result is kept in the unit cache under a key of the weights' hash, the validation images and
their targets, the device and the attack: adding images that leave the validation split as it was
reuses it, and any change to what it depends on computes it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from ...io.cache import ItemCache
from ...io.digests import bytes_digest, json_digest
from ...models.store import model_digest

Figures = tuple[float | None, float | None]


def cached_evaluation(model: Any, val: Any, device: str, attack: tuple[float, int],
                      evaluate: Callable[[], Figures]) -> tuple[Figures, bool]:
    """``evaluate()`` (clean and robust validation accuracy of ``model`` on split ``val``) from
    the unit cache when it holds it, else computed and stored; and whether it was reused."""
    key = json_digest({"v": 2, "model": model_digest(model), "device": device, "attack": list(attack),
                       "val": bytes_digest(val.x.numpy().tobytes() + val.y.numpy().tobytes()),
                       "shape": list(val.x.shape)})
    cache = ItemCache("train")
    if not cache.missing([key]):
        row = cache.get([key], ["clean", "robust"]).to_pylist()[0]
        return (row["clean"], row["robust"]), True
    clean, robust = evaluate()
    cache.put(pa.table({"key": [key], "clean": pa.array([clean], pa.float64()), "robust": pa.array([robust], pa.float64())}))
    return (clean, robust), False
