"""The ``curriculum`` stage: every curriculum's sequences as one table, plus schedule plots.

Reads the scores table's within-class difficulty into ranked pools, checks that every shown budget
has its enhanced images, and writes ``data/<corpus>/curricula/`` (one shard per curriculum, in
params order) plus ``data/<corpus>/plots/curriculum/``. ``trial`` counts from 0 in presentation
order within a sequence; ``block`` counts from 1. The drawing semantics are in
:mod:`~lwise_build.ops.curriculum_draw`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Features, Value

from ... import console
from ...config.curricula import expand_blocks, is_shuffled
from ...config.params import BlockParams
from ...errors import UserError
from ...io import figures
from ...io.images import decode_png
from ...io.paths import enhanced_dir, stage_dir
from ...io.tables import has_table, pngs_by_id, read_features, read_table, write_table
from ...ops.curriculum_draw import ClassPools, Pool, Trial, build_sequence, rank_pool
from ..base import Stage
from .spec import SPEC

#: Trial numbers start here (presentation order within a sequence).
FIRST_TRIAL = 0


def sequence_rows(name: str, sequences: Sequence[Sequence[Trial]]) -> dict[str, list[Any]]:
    """Table columns for all sequences of one curriculum, in presentation order."""
    rows: dict[str, list[Any]] = {k: [] for k in ("curriculum", "sequence", "trial", *Trial.__annotations__)}
    for s, trials in enumerate(sequences):
        for n, t in enumerate(trials, start=FIRST_TRIAL):
            for key, value in {"curriculum": name, "sequence": s, "trial": n, **vars(t)}.items():
                rows[key].append(value)
    return rows


class Curriculum(Stage, spec=SPEC):
    """``lwise-build curriculum <corpus>``: every curriculum's sequences into ``data/<c>/curricula/``."""

    def prepare(self) -> None:
        curricula = self.ctx.spec.curricula
        self.plans = {name: (expand_blocks(cur, f"{self.where}.{name}"), is_shuffled(cur))
                      for name, cur in curricula.items()}
        check_budgets(self.ctx.corpus, self.where, {n: blocks for n, (blocks, _) in self.plans.items()})

    def write(self, tmp: Path) -> None:
        ctx, curricula = self.ctx, self.ctx.spec.curricula
        classes = tuple(ctx.classes)
        loaded: dict[tuple[str, str, str], tuple[ClassPools, dict[str, float]]] = {}
        self.built: dict[str, list[list[Trial]]] = {}
        self.quantiles: dict[str, dict[str, float]] = {}
        with console.progress(total=sum(c.sequences for c in curricula.values()), desc="curricula", unit="seq") as bar:
            for name, cur in curricula.items():
                key = (cur.difficulty or next(iter(ctx.spec.score.models)), cur.train_split, cur.test_split)
                if key not in loaded:
                    loaded[key] = load_pools(ctx.dir("scores"), classes, *key)
                blocks, shuffled = self.plans[name]
                self.built[name] = []
                for s in range(cur.sequences):
                    self.built[name].append(build_sequence(name, blocks, loaded[key][0], cur.seed, s, shuffled))
                    bar.update()
                self.quantiles[name] = loaded[key][1]
        check_enhanced(ctx.corpus, self.built)
        write_table([sequence_rows(n, seqs) for n, seqs in self.built.items()], table_features(classes), tmp)

    def plots(self, folder: Path) -> None:
        write_plots(self.ctx.corpus, self.built, self.quantiles, folder)

    def summary(self) -> str:
        return ", ".join(f"{n}: {len(seqs)} sequences x {len(seqs[0])} trials"
                         for n, seqs in self.built.items()) or "no curricula configured"


def check_budgets(corpus: str, where: str, plans: dict[str, list[BlockParams]]) -> None:
    """Every budget a curriculum shows must have a built enhanced table (checked before any work)."""
    for name, blocks in plans.items():
        for b in sorted({blk.budget for blk in blocks} - {0.0}):
            folder = enhanced_dir(corpus, b)
            if not has_table(folder):
                raise UserError(f"{where}.{name}: budget {b:g} has no enhanced table at {folder}; "
                                f"build it first (enhance.budgets, `lwise-build enhance {corpus}`)")


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
                quantiles: dict[str, dict[str, float]], out: Path) -> None:
    """schedule-<name>.csv per curriculum (dvc plots: x = block, y = budget, one series each),
    schedule.png (budget and difficulty per block) and strip.png (one sequence's images)."""
    rows = schedule_rows(built, quantiles)
    cols = ["curriculum", "block", "phase", "trials", "budget", "difficulty_quantile"]
    for name in built:
        lines = [",".join(cols)] + [",".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k])
                                             for k in cols) for r in rows if r["curriculum"] == name]
        (out / f"schedule-{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
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
    pngs = {(i, 0.0): p for i, p in pngs_by_id(stage_dir(corpus, "images"), {t.id for t in trials if not t.budget}).items()}
    for b in sorted({t.budget for t in trials} - {0.0}):
        found = pngs_by_id(enhanced_dir(corpus, b), {t.id for t in trials if t.budget == b})
        pngs |= {(i, b): p for i, p in found.items()}
    rows, labels = [], []
    for block in sorted({t.block for t in trials}):
        shown = [t for t in trials if t.block == block]
        rows.append([_pixels(pngs[(t.id, t.budget)]) for t in shown])
        budgets = {t.budget for t in shown}
        eps = f"eps={budgets.pop():g}" if len(budgets) == 1 else "eps mixed"
        labels.append(f"block {block} {shown[0].phase}, {eps}")
    figures.image_rows(rows, path, row_labels=labels, title=f"{corpus}: {name}, sequence 0")


def _pixels(png: bytes) -> np.ndarray:
    arr = decode_png(png)
    return arr[..., 0] if arr.shape[-1] == 1 else arr
