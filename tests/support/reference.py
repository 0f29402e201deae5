"""Computations the package no longer ships, kept as references the tests (and bench_enhance)
check the package against: the page's assignment hash, the independent per-budget enhancement,
how many participants the built sequences serve, and a null's thresholds from activations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from torch import Tensor, nn

from lwise_build.config.curricula import condition_slots
from lwise_build.config.params import CurriculumParams
from lwise_build.ops.enhance import enhance
from lwise_build.ops.metamer_stats import null_stats, thresholds


def fnv1a(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes: the page's hash (experiment.js), kept identical here."""
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def assign(participant: str, weights: Mapping[str, float], sequences: Mapping[str, int],
           seed: int) -> tuple[str, int]:
    """The condition (by weight) and sequence a participant id gets, as the page computes them."""
    total = sum(weights.values())
    u = fnv1a(f"{seed}:{participant}:condition") / 2**32
    acc, pick = 0.0, next(iter(weights))
    for name, w in weights.items():
        acc += w / total
        pick = name
        if u < acc:
            break
    return pick, fnv1a(f"{seed}:{participant}:sequence:{pick}") % sequences[pick]


def participants_covered(curricula: Mapping[str, CurriculumParams]) -> int:
    """How many participants (0 .. n-1) get a sequence before some curriculum runs out of them."""
    slots = condition_slots(curricula)
    if not slots:
        return 0
    first_short = []
    for name, cur in curricula.items():
        at = [k for k, s in enumerate(slots) if s == name]
        rounds, j = divmod(cur.sequences, cur.weight)
        first_short.append(rounds * len(slots) + at[j])
    return min(first_short)


def null_thresholds(acts: np.ndarray, pairs: np.ndarray) -> dict[str, float]:
    """:func:`thresholds` of the null pairs of ``acts`` (one row per natural image)."""
    acts = np.asarray(acts)
    return thresholds(null_stats([acts], pairs, len(acts)))


def enhance_reference(model: nn.Module, images: Tensor, labels: Tensor | Sequence[int], **kwargs) -> dict[float, Tensor]:
    """The plain independent loop, one full run per budget (tests and benchmarks compare against it)."""
    return enhance(model, images, labels, shared=False, **kwargs)
