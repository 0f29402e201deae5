"""Params builders: one corpus ``toy`` with the sections a test names, and toy model definitions."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lwise_build.config.load import parse_params
from lwise_build.config.params import Params

#: A tiny grayscale CNN definition whose weights a test saves itself (``checkpoint`` is never read).
TOY_MODEL = {"arch": "smallcnn-tiny", "corpus": "toy", "in_channels": 1, "checkpoint": "unused.pt"}
#: The 16-px grayscale digits corpus most stage tests ingest.
DIGITS_16 = {"source": "builtin:digits", "image_size": 16, "grayscale": True}


def toy_models(*names: str, **overrides: Any) -> dict[str, dict]:
    """``{name: TOY_MODEL (+ overrides)}`` for each name, in order."""
    return {n: {**TOY_MODEL, **overrides} for n in names}


def toy_params(sections: Mapping[str, Any] | None = None, *, ingest: Mapping[str, Any] | None = None,
               models: Mapping[str, dict] | None = None, **top: Any) -> Params:
    """Params of one corpus ``toy``: its ``ingest`` (default: builtin digits, defaults otherwise),
    the stage ``sections`` (score, enhance, ...), ``models`` and top-level keys (seed, device)."""
    data: dict[str, Any] = dict(top)
    if models is not None:
        data["models"] = dict(models)
    data["corpora"] = {"toy": {"ingest": dict(ingest or {"source": "builtin:digits"}), **(sections or {})}}
    return parse_params(data)


def folder_corpus_params(raw: Path, aliases: dict[str, str] | None = None, rgb: bool = False) -> Params:
    """Ingest the image folder ``raw`` (16 px), score with two models, enhance, metamers: the
    incremental and Ray builds' corpus (models guide, observer, extra; see toy_models.save_smallcnns)."""
    sections = {
        "score": {"models": aliases or {"robust": "guide", "standard": "observer"}, "batch_size": 16},
        "enhance": {"model": "guide", "budgets": [0.5, 1.0], "batch_size": 16, "observers": ["observer"],
                    "metrics_sample": 6, "grid_images": 2},
        "metamers": {"generators": ["guide"], "layers": {"guide": ["block1"]}, "judges": ["observer"],
                     "per_class": 2, "split": "train", "schedule": "test", "null_pairs": 20, "batch_size": 16}}
    ingest = {"source": f"imagefolder:{raw}", "image_size": 16, "grayscale": not rgb,
              "splits": {"train": 0.5, "validation": 0.25, "test": 0.25}}
    return toy_params(sections, ingest=ingest, models=toy_models("guide", "observer", "extra", in_channels=3 if rgb else 1),
                      seed=0, device="cpu")
