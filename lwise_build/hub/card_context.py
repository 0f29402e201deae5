"""What the dataset card is written from (one object the card, its datasheet and Croissant read),
apart from the card so that the datasheet can name it without importing the card back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .citation import DatasetCitation
from .configs import ConfigInfo


@dataclass
class CardContext:
    params: Any
    corpus: str
    configs: list[ConfigInfo]
    figures: list[str]
    models: dict[str, dict[str, Any]]
    meta: DatasetCitation
    build: dict[str, Any]
    calibration: dict[str, Any] | None = None  # analysis/calibration.json, when analyze has run
    experiment: dict[str, Any] | None = None  # experiment/manifest.json, when the experiment is built
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> metrics/details/<stage>.json
