"""Drawing one participant's trial sequence: pure, seeded, no IO (the curriculum stage's algorithm).

Semantics (docs/methods.md, "Curricula"), as the L-WISE reference generator draws them. Each
(curriculum seed, curriculum name, sequence index) has its own RNG, so sequences and curricula are
independent. Per class, in this order: the test blocks' images are drawn uniformly without
replacement from the test split; the natural set-aside training blocks' images (L-WISE blocks 7-8)
likewise from the training split (never enhanced); if the two splits are the same, the test images
leave the pool first. What remains of the training split is the curriculum pool.

A curriculum **with difficulty selection** (any curriculum block has ``easiest``) draws every
curriculum block from that pool without removing what earlier blocks showed: block b with
``easiest = f`` ranks the pool by the guide's within-class difficulty (ties by id) and samples
``trials_per_class`` images without replacement from the easiest ``round(pool * f)`` (Python's
``round``), so an easy image may recur across curriculum blocks but never within one. A curriculum
**without selection** removes each block's images from the pool before the next block draws, so no
image is shown twice to a participant. Shuffled curricula pool the curriculum blocks' trials per
class and redistribute them over the same slots (budget and selection travel with the image; no
image twice in a block where avoidable, a deviation from the reference, which allows it). Trials
are shuffled within each block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..config.params import BlockParams
from ..errors import UserError
from ..seeding import seeded_rng


@dataclass(frozen=True)
class Pool:
    """One class's candidate images in one split, ranked easiest first (difficulty, then id)."""

    ids: tuple[str, ...]
    difficulty: tuple[float, ...]

    def subset(self, keep: Sequence[int]) -> Pool:
        return Pool(tuple(self.ids[i] for i in keep), tuple(self.difficulty[i] for i in keep))


@dataclass(frozen=True)
class ClassPools:
    """Per class (label index) the ranked training and test pools of one difficulty alias."""

    classes: tuple[str, ...]
    train: tuple[Pool, ...]
    test: tuple[Pool, ...]
    splits: tuple[str, str] = ("train", "test")

    @property
    def same_split(self) -> bool:
        return self.splits[0] == self.splits[1]


@dataclass(frozen=True)
class Trial:
    """One row of a sequence (without its curriculum/sequence/trial numbers)."""

    block: int
    phase: str
    feedback: bool
    id: str
    label: int
    budget: float
    difficulty: float
    selection: str

    def key(self) -> tuple[str, int, float, float, str]:
        """What a shuffle must preserve: the image, how it is shown and how it was drawn."""
        return (self.id, self.label, self.budget, self.difficulty, self.selection)


def rank_pool(ids: Sequence[str], difficulty: Sequence[float]) -> Pool:
    """Rank images easiest first; ties (and missing difficulties, ranked last) broken by id."""
    order = sorted(range(len(ids)), key=lambda i: (math.isnan(difficulty[i]),
                                                   0.0 if math.isnan(difficulty[i]) else difficulty[i], ids[i]))
    return Pool(tuple(ids[i] for i in order), tuple(float(difficulty[i]) for i in order))


def sequence_rng(seed: int, name: str, sequence: int) -> np.random.Generator:
    """The RNG of one sequence: independent of every other curriculum and sequence."""
    return seeded_rng(seed, name, sequence)


def selection_label(block: BlockParams) -> str:
    """How a block draws its images: ``easiest:0.10``, ``random``, ``set_aside`` or ``test``."""
    if block.phase == "test":
        return "test"
    if block.set_aside:
        return "set_aside"
    if block.easiest is None:
        return "random"
    f = block.easiest
    return f"easiest:{f:.2f}" if round(f, 2) == f else f"easiest:{f:g}"


def selects(blocks: Sequence[BlockParams]) -> bool:
    """Whether a curriculum uses difficulty selection (then easy images may recur across blocks)."""
    return any(b.easiest is not None for b in blocks if b.phase == "train" and not b.set_aside)


def build_sequence(name: str, blocks: Sequence[BlockParams], pools: ClassPools, seed: int,
                   sequence: int, shuffle: bool = False) -> list[Trial]:
    """All trials of one participant's sequence, in presentation order."""
    draw = _Draw(name, blocks, pools, sequence_rng(seed, name, sequence))
    for c in range(len(pools.classes)):
        draw.fill_class(c)
    if shuffle:
        draw.redistribute()
    trials: list[Trial] = []
    for block_slots in draw.slots:
        flat = [t for cls in block_slots for t in cls]
        trials += [flat[i] for i in draw.rng.permutation(len(flat))]
    return trials


class _Draw:
    """One sequence being drawn: ``slots[block][class]`` holds that block's trials of that class."""

    def __init__(self, name: str, blocks: Sequence[BlockParams], pools: ClassPools,
                 rng: np.random.Generator):
        self.name, self.blocks, self.pools, self.rng = name, blocks, pools, rng
        self.slots: list[list[list[Trial]]] = [[[] for _ in pools.classes] for _ in blocks]
        self.curriculum = [i for i, b in enumerate(blocks) if b.phase == "train" and not b.set_aside]
        self.selects = selects(blocks)

    def fill_class(self, c: int) -> None:
        """Draw class ``c``'s images for every block: test, then set-aside, then curriculum."""
        blocks, pools = self.blocks, self.pools
        train = pools.train[c]
        test = self.set_aside(c, [i for i, b in enumerate(blocks) if b.phase == "test"],
                              train if pools.same_split else pools.test[c], pools.splits[1])
        aside = [i for i, b in enumerate(blocks) if b.phase == "train" and b.set_aside]
        pool = self.set_aside(c, aside, test if pools.same_split else train, pools.splits[0])
        for i in self.curriculum:
            block = blocks[i]
            size = len(pool.ids) if block.easiest is None else round(len(pool.ids) * block.easiest)
            if size < block.trials_per_class:
                what = "pool" if block.easiest is None else f"easiest {block.easiest:g} of the pool"
                after = "setting aside" if self.selects else "setting aside and removing earlier blocks"
                self.fail(i, c, f"the {what} has {size} (pool of {len(pool.ids)} after {after})")
            picks = self.rng.choice(size, size=block.trials_per_class, replace=False)
            self.slots[i][c] = [self.trial(i, c, pool, int(j)) for j in picks]
            if not self.selects:  # no difficulty selection: nothing is ever shown twice
                pool = pool.subset(np.setdiff1d(np.arange(len(pool.ids)), picks).tolist())

    def set_aside(self, c: int, wanted: list[int], pool: Pool, split: str) -> Pool:
        """Draw distinct images uniformly for the ``wanted`` blocks; return what remains of ``pool``."""
        need = 0
        for i in wanted:
            need += self.blocks[i].trials_per_class
            if need > len(pool.ids):
                left = len(pool.ids) - need + self.blocks[i].trials_per_class
                self.fail(i, c, f"only {left} of split {split!r} are left to set aside")
        picks = self.rng.choice(len(pool.ids), size=need, replace=False)
        start = 0
        for i in wanted:
            k = self.blocks[i].trials_per_class
            self.slots[i][c] = [self.trial(i, c, pool, int(j)) for j in picks[start:start + k]]
            start += k
        return pool.subset(np.setdiff1d(np.arange(len(pool.ids)), picks).tolist())

    def fail(self, i: int, c: int, why: str) -> None:
        raise UserError(f"curriculum {self.name!r}: block {i + 1} needs {self.blocks[i].trials_per_class} "
                        f"images of class {self.pools.classes[c]!r} but {why}")

    def trial(self, i: int, c: int, pool: Pool, j: int) -> Trial:
        b = self.blocks[i]
        return Trial(block=i + 1, phase=b.phase, feedback=bool(b.feedback), id=pool.ids[j], label=c,
                     budget=float(b.budget), difficulty=pool.difficulty[j], selection=selection_label(b))

    def redistribute(self) -> None:
        """Per class, pool the curriculum blocks' trials and deal them back over the same slots."""
        for c in range(len(self.pools.classes)):
            pooled = [t for i in self.curriculum for t in self.slots[i][c]]
            order = self.rng.permutation(len(pooled))
            groups, start = [], 0
            for i in self.curriculum:
                k = len(self.slots[i][c])
                groups.append([pooled[j] for j in order[start:start + k]])
                start += k
            _dedupe(groups, self.rng)
            for i, group in zip(self.curriculum, groups, strict=True):
                fb = bool(self.blocks[i].feedback)
                self.slots[i][c] = [replace(t, block=i + 1, feedback=fb) for t in group]


def _dedupe(groups: list[list[Trial]], rng: np.random.Generator) -> None:
    """Swap trials between groups so no image repeats within one, where a swap exists."""
    for g, group in enumerate(groups):
        for s in range(len(group)):
            if sum(t.id == group[s].id for t in group) < 2:
                continue
            for h in rng.permutation(len(groups)):
                other = groups[h]
                if h == g or group[s].id in {t.id for t in other}:
                    continue
                here = {t.id for t in group}
                u = next((int(u) for u in rng.permutation(len(other)) if other[u].id not in here), None)
                if u is not None:
                    group[s], other[u] = other[u], group[s]
                    break
