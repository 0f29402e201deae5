"""Whether a metamer is valid: match statistics against a null distribution of natural pairs.

Feather et al. (2023) and model_metamers_pytorch (docs/methods.md, "Metamers"): a metamer passes when
the generator's forced choice on it equals its choice on the natural reference, and its Spearman rho,
Pearson r and SNR to the reference's activations at the layer all beat every pair of a null
distribution of random pairs of natural training images. The null here is vectorised: each image's
activations (and ranks) are computed once, the pair statistics in chunks; rows that do not fit in
memory go to a scratch file (:func:`null_stats`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np
from scipy.stats import pearsonr, rankdata

from ..errors import UserError
from ..seeding import seeded_rng

STATS = ("spearman", "pearson", "snr_db")
#: A statistic within this of the null's best counts as reaching it (a tie at a correlation of 1).
TIE = 1e-12
#: Bytes of null rows (activations and ranks) kept in memory; above this they go to a scratch file.
MAX_BYTES = 2**28
#: Floats per chunk of gathered pair rows.
CHUNK_VALUES = 2**22
#: Bytes for the rows of two blocks of null images read back for the statistics (about 24 bytes
#: per value of each image: its stored row and its float64 rebuild).
BLOCK_BYTES = 2**28


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


class RowStore(Protocol):
    """Fixed-width rows appended once and read back by index (memory, or a scratch file)."""

    def append(self, rows: np.ndarray) -> None: ...

    def take(self, idx: np.ndarray) -> np.ndarray: ...


Spill = Callable[[int, np.dtype], RowStore]  # (row width, dtype) -> a store outside memory


class MemoryRows:
    """A :class:`RowStore` in memory."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def append(self, rows: np.ndarray) -> None:
        self.parts.append(np.array(rows))

    def take(self, idx: np.ndarray) -> np.ndarray:
        if len(self.parts) != 1:
            self.parts = [np.concatenate(self.parts)]
        return self.parts[0][idx]


class NullImages:
    """The null images' activations at one layer, added once per image in order, in any batches.

    Each image keeps its activations as computed (float32 for a float32 model) and its ranks
    (exact in float32 below 2**23 values) in a :class:`RowStore`, plus float64 scalars: mean,
    squared norm of the centred values, rank mean and rank norm. Pair statistics rebuild the
    centred values and unit ranks of a block of rows at a time from these, bit for bit as if
    all were held in float64, so memory does not grow with the number of images.
    """

    def __init__(self, n_images: int, spill: Spill | None = None, max_bytes: int = MAX_BYTES):
        self.n_images, self.spill, self.max_bytes = n_images, spill, max_bytes
        self.store: RowStore = MemoryRows()
        self.dim, self.dtype = 0, np.dtype(np.float64)
        self.mu, self.c2, self.zero, self.rank_mu, self.rank_norm = ([] for _ in range(5))

    def _open(self, x: np.ndarray) -> None:
        """Row width and dtype from the first batch; a scratch store when all rows exceed ``max_bytes``."""
        self.dim = x.shape[1]
        exact32 = np.array_equal(x.astype(np.float32), x) and self.dim < 2**23
        self.dtype = np.dtype(np.float32 if exact32 else np.float64)
        if self.spill is not None and self.n_images * 2 * self.dim * self.dtype.itemsize > self.max_bytes:
            self.store = self.spill(2 * self.dim, self.dtype)

    def add(self, acts: np.ndarray) -> None:
        """Append the activations ``(b, D)`` of the next ``b`` images (a few rows at a time, so the
        float64 work arrays stay near ``CHUNK_VALUES`` floats whatever the batch)."""
        acts = np.asarray(acts)
        if not self.dim:
            self._open(np.asarray(acts, dtype=np.float64))
        step = max(1, CHUNK_VALUES // max(1, self.dim))
        for lo in range(0, len(acts), step):
            self._add_rows(np.asarray(acts[lo:lo + step], dtype=np.float64))

    def _add_rows(self, x: np.ndarray) -> None:
        mu = x.mean(axis=1)
        xc = x - mu[:, None]
        self.mu.append(mu)
        self.c2.append(np.einsum("nd,nd->n", xc, xc))
        del xc
        ranks = rankdata(_as_float32_if_exact(x), axis=1)
        rank_mu = ranks.mean(axis=1, keepdims=True)
        self.zero.append(~x.any(axis=1))
        self.rank_mu.append(rank_mu[:, 0])
        self.rank_norm.append(np.linalg.norm(ranks - rank_mu, axis=1))
        rows = np.empty((len(x), 2 * self.dim), dtype=self.dtype)
        rows[:, : self.dim], rows[:, self.dim:] = x, ranks
        if not np.array_equal(rows[:, : self.dim], x):  # float32 rows, but these values need float64
            raise ValueError("null activations: a later batch is not exact in float32 (mixed precisions)")
        self.store.append(rows)

    def scalars(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(getattr(self, k)) for k in ("mu", "c2", "zero", "rank_mu", "rank_norm")}

    def rows(self, idx: np.ndarray, sc: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Centred activations and unit ranks (float64, views of one buffer) of images ``idx``."""
        both = np.asarray(self.store.take(idx), dtype=np.float64)
        xc, r = both[:, : self.dim], both[:, self.dim:]
        xc -= sc["mu"][idx, None]
        r -= sc["rank_mu"][idx, None]
        norm = sc["rank_norm"][idx, None]
        np.divide(r, norm, out=r, where=norm > 0)
        r[norm[:, 0] <= 0] = 0.0  # a constant row has no ranking: 0, as _unit_rows gives it
        return xc, r

    def pair_stats(self, pairs: np.ndarray, block: int) -> dict[str, np.ndarray]:
        """Statistics of ``pairs`` (image ``i`` the reference), ``block`` images' rows read at a
        time: pairs are taken block pair by block pair, each block pair's rows read once."""
        sc, out = self.scalars(), {s: np.empty(len(pairs)) for s in STATS}
        keys = (pairs[:, 0] // block) * (pairs[:, 1].max(initial=0) // block + 1) + pairs[:, 1] // block
        order = np.argsort(keys, kind="stable")
        cuts = np.flatnonzero(np.diff(keys[order])) + 1
        for sel in np.split(order, cuts):
            used, local = np.unique(pairs[sel], return_inverse=True)
            xc, r = self.rows(used, sc)
            part = _pair_stats(xc, r, {k: v[used] for k, v in sc.items()}, local.reshape(-1, 2), self.dim)
            for s in STATS:
                out[s][sel] = part[s]
        return out


def _as_float32_if_exact(a: np.ndarray) -> np.ndarray:
    """``a`` in float32 when that changes no value (same ranks, sorted about twice as fast)."""
    a32 = a.astype(np.float32)
    return a32 if np.array_equal(a32, a) else a


def _pair_stats(xc: np.ndarray, r: np.ndarray, sc: dict[str, np.ndarray], pairs: np.ndarray,
                dim: int) -> dict[str, np.ndarray]:
    """Pair statistics from two dot products per pair, in chunks of at most ``CHUNK_VALUES``
    floats: with ``x = xc + mu``, Pearson is ``xc_i.xc_j / (|xc_i| |xc_j|)`` and
    ``|x_i - x_j|^2 = |xc_i|^2 + |xc_j|^2 - 2 xc_i.xc_j + D (mu_i - mu_j)^2``."""
    mu, c2, zero = sc["mu"], sc["c2"], sc["zero"]
    out = {s: np.empty(len(pairs)) for s in STATS}
    step = max(1, CHUNK_VALUES // max(1, dim))
    for lo in range(0, len(pairs), step):
        i, j = pairs[lo:lo + step, 0], pairs[lo:lo + step, 1]
        dot = np.einsum("nd,nd->n", xc[i], xc[j])
        denom = np.sqrt(c2[i] * c2[j])
        err2 = np.maximum(c2[i] + c2[j] - 2 * dot + dim * (mu[i] - mu[j]) ** 2, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            pearson = np.where(denom > 0, dot / np.where(denom > 0, denom, 1), 0.0)
            snr = 5 * (np.log10(c2[i] + dim * mu[i] ** 2) - np.log10(np.maximum(err2, 1e-300)))
        part = {"spearman": np.einsum("nd,nd->n", r[i], r[j]), "pearson": pearson, "snr_db": snr}
        dead = zero[i] | zero[j]  # the reference scores an all-zero activation as 0
        for s in STATS:
            out[s][lo:lo + step] = np.where(dead, 0.0, part[s])
    return out


def null_stats(batches: Iterable[np.ndarray], pairs: np.ndarray, n_images: int,
               spill: Spill | None = None, max_bytes: int = MAX_BYTES) -> dict[str, np.ndarray]:
    """The statistics of every null pair (image ``i`` as the reference).

    ``batches`` yields the flattened activations ``(b, D)`` of the ``n_images`` images in order,
    each image once (so each is computed once). Their rows stay in memory when they fit in
    ``max_bytes``, else in ``spill(width, dtype)`` (a scratch file, closed at the end); the
    statistics then read blocks of rows back, so their memory does not grow with the null's size.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    null = NullImages(n_images, spill, max_bytes)
    try:
        for acts in batches:
            null.add(acts)
        if not null.dim or not len(pairs):
            return {s: np.empty(0) for s in STATS}
        return null.pair_stats(pairs, max(1, min(n_images, BLOCK_BYTES // (48 * null.dim))))
    finally:
        getattr(null.store, "close", lambda: None)()


def thresholds(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """The rule a metamer must beat: the largest value of each statistic over the null pairs."""
    return {s: float(np.max(v)) if len(v) else -np.inf for s, v in stats.items()}


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
