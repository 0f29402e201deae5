"""Curricula: one seeded trial sequence per participant (which image, how enhanced, which block).

Semantics (REFERENCE.md section 1). Each (curriculum seed, curriculum name, sequence index) has its
own RNG, so sequences and curricula are independent. Per class, in this order: the test blocks'
images are drawn uniformly without replacement from the test split; the natural set-aside training
blocks' images (L-WISE blocks 7-8) likewise from the training split (never enhanced); if the two
splits are the same, the test images leave the pool first. What remains of the training split is
the curriculum pool: block b with ``easiest = f`` ranks it by the guide's within-class difficulty
(ties by id) and samples ``trials_per_class`` images without replacement from the easiest
``round(pool * f)`` (Python's ``round``); ``easiest = None`` samples the whole pool. Shuffled
curricula pool the curriculum blocks' trials per class and redistribute them over the same slots
(budget and selection travel with the image; no image twice in a block where avoidable). Trials
are shuffled within each block. ``trial`` counts from 0 in presentation order within a sequence;
``block`` counts from 1. The table has one shard per curriculum, in params order.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, Features, Value
from tqdm import tqdm

from . import figures
from .curriculum_presets import expand_blocks, is_shuffled
from .errors import UserError
from .images import decode_png
from .params import BlockParams
from .tables import iter_shards, read_features, read_table, stage_dir, staged_output, write_table

#: Trial numbers start here (presentation order within a sequence).
FIRST_TRIAL = 0


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
    digest = hashlib.sha256(f"{seed}:{name}:{sequence}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


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
                self.fail(i, c, f"the {what} has {size} (pool of {len(pool.ids)} after setting aside)")
            picks = self.rng.choice(size, size=block.trials_per_class, replace=False)
            self.slots[i][c] = [self.trial(i, c, pool, int(j)) for j in picks]

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


def sequence_rows(name: str, sequences: Sequence[Sequence[Trial]]) -> dict[str, list[Any]]:
    """Table columns for all sequences of one curriculum, in presentation order."""
    rows: dict[str, list[Any]] = {k: [] for k in ("curriculum", "sequence", "trial", *Trial.__annotations__)}
    for s, trials in enumerate(sequences):
        for n, t in enumerate(trials, start=FIRST_TRIAL):
            for key, value in {"curriculum": name, "sequence": s, "trial": n, **vars(t)}.items():
                rows[key].append(value)
    return rows


def run(params: Any, corpus: str) -> None:
    """``lwise-build curriculum <corpus>``: every curriculum's sequences into data/<corpus>/curricula/."""
    c = params.corpus(corpus)
    where = f"corpora.{corpus}.curricula"
    plans = {name: (expand_blocks(cur, f"{where}.{name}"), is_shuffled(cur))
             for name, cur in c.curricula.items()}
    check_budgets(corpus, where, {name: blocks for name, (blocks, _) in plans.items()})
    classes = tuple(read_features(stage_dir(corpus, "images"))["label"].names)
    loaded: dict[tuple[str, str, str], tuple[ClassPools, dict[str, float]]] = {}
    built: dict[str, list[list[Trial]]] = {}
    keys: dict[str, tuple[str, str, str]] = {}
    with tqdm(total=sum(cur.sequences for cur in c.curricula.values()), desc="curricula",
              unit="seq", file=sys.stderr, disable=None) as bar:
        for name, cur in c.curricula.items():
            key = keys[name] = (cur.difficulty or next(iter(c.score.models)), cur.train_split,
                                cur.test_split)
            if key not in loaded:
                loaded[key] = load_pools(stage_dir(corpus, "scores"), classes, *key)
            blocks, shuffled = plans[name]
            built[name] = []
            for s in range(cur.sequences):
                built[name].append(build_sequence(name, blocks, loaded[key][0], cur.seed, s, shuffled))
                bar.update()
    check_enhanced(corpus, built)
    with staged_output(stage_dir(corpus, "curricula")) as tmp:
        write_table([sequence_rows(n, seqs) for n, seqs in built.items()], table_features(classes), tmp)
    write_plots(corpus, built, {name: loaded[keys[name]][1] for name in built})
    for name, seqs in built.items():
        click.echo(f"{name}: {len(seqs)} sequences x {len(seqs[0])} trials", err=True)


def check_budgets(corpus: str, where: str, plans: dict[str, list[BlockParams]]) -> None:
    """Every budget a curriculum shows must have a built enhanced table (checked before any work)."""
    for name, blocks in plans.items():
        for b in sorted({blk.budget for blk in blocks} - {0.0}):
            folder = enhanced_dir(corpus, b)
            if not any(folder.glob("data-*-of-*.parquet")):
                raise UserError(f"{where}.{name}: budget {b:g} has no enhanced table at {folder}; "
                                f"build it first (enhance.budgets, `lwise-build enhance {corpus}`)")


def enhanced_dir(corpus: str, budget: float) -> Path:
    """``data/<corpus>/enhanced/eps=<b>``."""
    return stage_dir(corpus, "enhanced") / f"eps={budget:g}"


def load_pools(scores: Path, classes: Sequence[str], alias: str, train_split: str,
               test_split: str) -> tuple[ClassPools, dict[str, float]]:
    """Ranked pools per class from the scores table, and each image's within-class rank quantile."""
    col = f"{alias}_difficulty"
    if col not in read_features(scores):
        raise UserError(f"{scores}: no column {col!r}; rerun `lwise-build score` for alias {alias!r}")
    tab = read_table(scores, columns=["id", "label", "split", col]).to_pydict()
    members: dict[tuple[str, int], tuple[list[str], list[float]]] = {}
    for i, label, split, d in zip(tab["id"], tab["label"], tab["split"], tab[col], strict=True):
        ids, diffs = members.setdefault((split, label), ([], []))
        ids.append(i)
        diffs.append(math.nan if d is None else float(d))
    ranked = {key: rank_pool(*v) for key, v in members.items()}
    quantiles = {i: r / max(1, len(pool.ids) - 1) for pool in ranked.values() for r, i in enumerate(pool.ids)}
    empty = Pool((), ())

    def per_class(split: str) -> tuple[Pool, ...]:
        return tuple(ranked.get((split, c), empty) for c in range(len(classes)))

    pools = ClassPools(tuple(classes), per_class(train_split), per_class(test_split),
                       (train_split, test_split))
    return pools, quantiles


def check_enhanced(corpus: str, built: dict[str, list[list[Trial]]]) -> None:
    """Every enhanced trial's image must exist in its budget's table (enhance.splits may omit it)."""
    wanted: dict[float, dict[str, str]] = {}
    for name, seqs in built.items():
        for t in (t for seq in seqs for t in seq if t.budget):
            wanted.setdefault(t.budget, {}).setdefault(t.id, name)
    for budget, ids in sorted(wanted.items()):
        have = set(read_table(enhanced_dir(corpus, budget), columns=["id"]).column("id").to_pylist())
        missing = sorted(set(ids) - have)
        if missing:
            raise UserError(f"curriculum {ids[missing[0]]!r}: image {missing[0]} is not in "
                            f"{enhanced_dir(corpus, budget)} ({len(missing)} missing); check enhance.splits")


def table_features(classes: Sequence[str]) -> Features:
    """The curricula table schema (public column names)."""
    ints = {k: Value("int32") for k in ("sequence", "trial", "block")}
    return Features({"curriculum": Value("string"), **ints, "phase": Value("string"),
                     "feedback": Value("bool"), "id": Value("string"),
                     "label": ClassLabel(names=list(classes)), "budget": Value("float64"),
                     "difficulty": Value("float64"), "selection": Value("string")})


def schedule_rows(built: dict[str, list[list[Trial]]],
                  quantiles: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Per curriculum and block: phase, mean budget and mean difficulty quantile over all sequences."""
    rows = []
    for name, seqs in built.items():
        for block in sorted({t.block for seq in seqs for t in seq}):
            shown = [t for seq in seqs for t in seq if t.block == block]
            rows.append({"curriculum": name, "block": block, "phase": shown[0].phase,
                         "budget": float(np.mean([t.budget for t in shown])),
                         "difficulty_quantile": float(np.mean([quantiles[name][t.id] for t in shown])),
                         "trials": len(shown) // len(seqs)})
    return rows


def write_plots(corpus: str, built: dict[str, list[list[Trial]]],
                quantiles: dict[str, dict[str, float]]) -> None:
    """schedule.csv/png (budget and difficulty per block) and strip.png (one sequence's images)."""
    out = stage_dir(corpus, "plots") / "curriculum"
    out.mkdir(parents=True, exist_ok=True)
    for old in ("schedule.csv", "schedule.png", "strip.png"):
        (out / old).unlink(missing_ok=True)
    rows = schedule_rows(built, quantiles)
    cols = ["curriculum", "block", "phase", "trials", "budget", "difficulty_quantile"]  # dvc: y = last
    lines = [",".join(cols)] + [",".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k])
                                         for k in cols) for r in rows]
    (out / "schedule.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if not built:
        return
    n_blocks = max(r["block"] for r in rows)
    panels = {key: {name: [r[key] for r in rows if r["curriculum"] == name] for name in built}
              for key in ("budget", "difficulty_quantile")}
    named = {"mean budget (L2)": panels["budget"],
             "mean difficulty quantile (0 = easiest)": panels["difficulty_quantile"]}
    figures.line_panels(range(1, n_blocks + 1), named, out / "schedule.png",
                        title=f"{corpus}: curriculum schedules", xlabel="block")
    write_strip(corpus, built, out / "strip.png")


def write_strip(corpus: str, built: dict[str, list[list[Trial]]], path: Path) -> None:
    """Sequence 0 of the first enhancing curriculum (``lwise`` if present), one row per block."""
    enhancing = [n for n, seqs in built.items() if any(t.budget for t in seqs[0])]
    name = "lwise" if "lwise" in built else (enhancing or list(built))[0]
    trials = built[name][0]
    pngs = fetch_pngs(stage_dir(corpus, "images"), {t.id for t in trials if not t.budget}, 0.0)
    for b in sorted({t.budget for t in trials} - {0.0}):
        pngs |= fetch_pngs(enhanced_dir(corpus, b), {t.id for t in trials if t.budget == b}, b)
    rows, labels = [], []
    for block in sorted({t.block for t in trials}):
        shown = [t for t in trials if t.block == block]
        rows.append([_pixels(pngs[(t.id, t.budget)]) for t in shown])
        budgets = {t.budget for t in shown}
        eps = f"eps={budgets.pop():g}" if len(budgets) == 1 else "eps mixed"
        labels.append(f"block {block} {shown[0].phase}, {eps}")
    figures.image_rows(rows, path, row_labels=labels, title=f"{corpus}: {name}, sequence 0")


def fetch_pngs(folder: Path, ids: set[str], budget: float) -> dict[tuple[str, float], bytes]:
    """PNG bytes of ``ids`` from a table with ``id`` and ``image`` columns, shard by shard."""
    found: dict[tuple[str, float], bytes] = {}
    for shard in iter_shards(folder, columns=["id", "image"]):
        hit = shard.filter(pc.is_in(shard.column("id"), value_set=pa.array(sorted(ids), pa.string())))
        for i, img in zip(hit.column("id").to_pylist(), hit.column("image").to_pylist(), strict=True):
            found[(i, budget)] = img["bytes"]
    return found


def _pixels(png: bytes) -> np.ndarray:
    arr = decode_png(png)
    return arr[..., 0] if arr.shape[-1] == 1 else arr
