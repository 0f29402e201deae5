"""Whether a metamer is valid: match statistics against a null distribution of natural pairs.

Feather et al. (2023) and model_metamers_pytorch (docs/methods.md, "Metamers"): a metamer passes when
the generator's forced choice on it equals its choice on the natural reference, and its Spearman rho,
Pearson r and SNR to the reference's activations at the layer all beat every pair of a null
distribution of random pairs of natural training images. The null here is vectorised: each image's
activations (and ranks) are computed once, the pair statistics in chunks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import pearsonr, rankdata

from ..errors import UserError
from ..seeding import seeded_rng

STATS = ("spearman", "pearson", "snr_db")
#: A statistic within this of the null's best counts as reaching it (a tie at a correlation of 1).
TIE = 1e-12
#: Activations held at once for the null (floats): above this, pairs are streamed in chunks.
MAX_VALUES = 2**24
#: Floats per chunk of gathered pair rows.
CHUNK_VALUES = 2**22


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson r (``scipy.stats.pearsonr`` along rows); a constant row scores 0, as the
    reference scores a pair with an all-zero activation."""
    flat = (np.ptp(a, axis=1) == 0) | (np.ptp(b, axis=1) == 0)
    r = np.zeros(len(a))
    if (~flat).any():
        r[~flat] = pearsonr(a[~flat], b[~flat], axis=1).statistic
    return r


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm (all-constant rows become 0): dot products of two
    such rows are Pearson correlations."""
    a = a - a.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, norm, out=np.zeros_like(a), where=norm > 0)


def _unit_ranks(a: np.ndarray) -> np.ndarray:
    """Each row's ranks (ties averaged), as unit rows: their dot products are Spearman's rho.
    Sorted in float32 when that changes no value (activations of a float32 model): same ranks,
    about twice as fast."""
    a32 = a.astype(np.float32)
    return _unit_rows(rankdata(a32 if np.array_equal(a32, a) else a, axis=1))


def match_stats(ref: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    """Row-wise Spearman rho, Pearson r and SNR dB ``10 log10(||a|| / ||a - b||)`` (a = reference).

    Spearman is computed exactly as for the null pairs, so two identical rankings give the same
    value on both sides (a rank correlation of 1 occurs in the null of low-dimensional layers).
    """
    ref, other = np.asarray(ref, dtype=np.float64), np.asarray(other, dtype=np.float64)
    err = np.linalg.norm(ref - other, axis=1)
    with np.errstate(divide="ignore"):
        snr = 10 * np.log10(np.linalg.norm(ref, axis=1) / np.maximum(err, 1e-300))
    spearman = np.einsum("nd,nd->n", _unit_ranks(ref), _unit_ranks(other))
    return {"spearman": spearman, "pearson": _pearson(ref, other), "snr_db": snr}


def null_pairs(n_images: int, n_pairs: int, seed: int) -> np.ndarray:
    """``min(n_pairs, n(n-1)/2)`` distinct unordered pairs ``(i, j)``, ``i < j``, seeded; every pair
    (in order) when no more exist. Rows index images sorted by id, so the draw is order-free."""
    if n_images < 2:
        raise UserError(f"metamers: the null distribution needs at least 2 natural images, got {n_images}")
    total = n_images * (n_images - 1) // 2
    if n_pairs >= total:
        k = np.arange(total, dtype=np.int64)
    else:
        k = np.sort(seeded_rng(seed, "metamer-null").choice(total, size=n_pairs, replace=False))
    starts = np.cumsum(np.arange(n_images - 1, 0, -1, dtype=np.int64)) - np.arange(n_images - 1, 0, -1)
    i = np.searchsorted(starts, k, side="right") - 1
    return np.stack([i, i + 1 + k - starts[i]], axis=1).astype(np.int64)


class _PerImage:
    """Per image, computed once: centred activations, their norms and means, unit ranks."""

    def __init__(self, acts: np.ndarray):
        x = np.asarray(acts, dtype=np.float64)
        self.dim = x.shape[1]
        self.mu = x.mean(axis=1)
        self.xc = x - self.mu[:, None]
        self.c2 = np.einsum("nd,nd->n", self.xc, self.xc)
        self.r = _unit_ranks(x)
        self.zero = ~x.any(axis=1)

    def pair_stats(self, pairs: np.ndarray) -> dict[str, np.ndarray]:
        """Statistics of pairs of rows of this set from two dot products per pair, in chunks of at
        most ``CHUNK_VALUES`` floats: with ``x = xc + mu``, Pearson is ``xc_i.xc_j / (|xc_i| |xc_j|)``
        and ``|x_i - x_j|^2 = |xc_i|^2 + |xc_j|^2 - 2 xc_i.xc_j + D (mu_i - mu_j)^2``."""
        out = {s: np.empty(len(pairs)) for s in STATS}
        step = max(1, CHUNK_VALUES // max(1, self.dim))
        for lo in range(0, len(pairs), step):
            i, j = pairs[lo:lo + step, 0], pairs[lo:lo + step, 1]
            dot = np.einsum("nd,nd->n", self.xc[i], self.xc[j])
            denom = np.sqrt(self.c2[i] * self.c2[j])
            err2 = np.maximum(self.c2[i] + self.c2[j] - 2 * dot + self.dim * (self.mu[i] - self.mu[j]) ** 2, 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                pearson = np.where(denom > 0, dot / np.where(denom > 0, denom, 1), 0.0)
                snr = 5 * (np.log10(self.c2[i] + self.dim * self.mu[i] ** 2) - np.log10(np.maximum(err2, 1e-300)))
            part = {"spearman": np.einsum("nd,nd->n", self.r[i], self.r[j]), "pearson": pearson, "snr_db": snr}
            dead = self.zero[i] | self.zero[j]  # the reference scores an all-zero activation as 0
            for s in STATS:
                out[s][lo:lo + step] = np.where(dead, 0.0, part[s])
        return out


def null_stats(acts_of: Callable[[np.ndarray], np.ndarray], pairs: np.ndarray,
               max_values: int = MAX_VALUES) -> dict[str, np.ndarray]:
    """The statistics of every null pair (image ``i`` as the reference).

    ``acts_of(idx)`` gives the flattened activations ``(len(idx), D)`` of images ``idx``. When the
    activations of every image the pairs use fit in ``max_values`` floats, each is computed once;
    otherwise the pairs are streamed in chunks (an image is then computed once per chunk it is in).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    used, inverse = np.unique(pairs, return_inverse=True)
    if not len(used):
        return {s: np.empty(0) for s in STATS}
    first = np.asarray(acts_of(used[:1]))
    dim = first.shape[1]
    if len(used) * dim <= max_values:
        return _PerImage(acts_of(used)).pair_stats(inverse.reshape(-1, 2))
    out: dict[str, list[np.ndarray]] = {s: [] for s in STATS}
    step = max(1, max_values // (2 * dim))
    for lo in range(0, len(pairs), step):
        chunk = pairs[lo:lo + step]
        ids, inv = np.unique(chunk, return_inverse=True)
        for s, v in _PerImage(acts_of(ids)).pair_stats(inv.reshape(-1, 2)).items():
            out[s].append(v)
    return {s: np.concatenate(v) for s, v in out.items()}


def thresholds(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """The rule a metamer must beat: the largest value of each statistic over the null pairs."""
    return {s: float(np.max(v)) if len(v) else -np.inf for s, v in stats.items()}


def null_thresholds(acts: np.ndarray, pairs: np.ndarray) -> dict[str, float]:
    """:func:`thresholds` of the null pairs of ``acts`` (one row per natural image)."""
    acts = np.asarray(acts)
    return thresholds(null_stats(lambda idx: acts[idx], pairs))


def passes(stats: dict[str, np.ndarray], null: dict[str, float], same_choice: np.ndarray) -> np.ndarray:
    """Valid: the generator chooses for the metamer what it chooses for the reference, and all three
    statistics beat the null.

    A tie (within :data:`TIE`) counts as beating it: ties only happen at a rank correlation of
    exactly 1 (e.g. two images of one class with the same ranking of 10 logits), which no metamer
    can exceed.
    """
    ok = np.asarray(same_choice, dtype=bool).copy()
    for key, threshold in null.items():
        ok &= stats[key] >= threshold - TIE
    return ok
