"""The ``enhance`` stage: one table per budget in ``data/<corpus>/enhanced/eps=<b>/``.

Each (image, budget) is one cached item, keyed by the image, its target, the guide's hash and
every param that changes pixels: a rerun after a crash, after adding images or after adding a
budget computes only what is new, and gives the bytes of a clean build; output shard i of every
budget holds the images of input shard i. Stored images lie within their budget *after* rounding (:mod:`~lwise_build.ops.quantize`).
Metrics ask whether the change transfers: observers judge images enhanced by each guide on a
seeded sample; with ``export.stimulus_format: jpeg`` they also measure how much of each budget's
change survives JPEG (docs/methods.md, "Enhancement"). ``logit_diverge`` moves away from the other
classes of the corpus unless ``diverge_from`` names others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from datasets import ClassLabel, Features, Image, Value

from ...errors import UserError
from ...io.images import to_tensor
from ...io.paths import budget_dir
from ...io.tables import iter_shards, png_bytes, shard_paths, write_table
from ...models.store import model_digest
from ...ops.enhance import default_steps
from ..units import Item, UnitStage, attach_pngs, chunks
from .compute import enhance_images
from .figures import figures
from .metrics import Judge, Measured, budget_stats, jpeg_survival, judge, mean_or_zero, sample
from .spec import SPEC

NUMBERS = ["gt_logit_before", "gt_logit_after", "l2", "linf"]
RESULT_COLUMNS = ["image", *NUMBERS]
_TYPES = {"image": pa.binary(), **{c: pa.float64() for c in NUMBERS}}


def features(classes: Sequence[str]) -> Features:
    """The public schema of an enhanced table."""
    f = "float64"
    return Features({"id": Value("string"), "label": ClassLabel(names=list(classes)), "split": Value("string"),
                     "budget": Value(f), "image": Image(), "gt_logit_before": Value(f),
                     "gt_logit_after": Value(f), "l2": Value(f), "linf": Value(f)})


@dataclass(frozen=True)
class EnhanceWork:
    """One image at one budget by one guide: its id and target (head index); ``png`` once attached."""

    guide: str
    image_id: str
    target: int
    budget: float
    png: bytes | None = None


Shard = tuple[pa.Table, dict[float, list[Item]]]  # an images shard's enhanced rows, their items per budget


class Enhance(UnitStage, spec=SPEC):
    """L2/Linf steps towards the true class at every budget, from one shared trajectory."""

    headline_rows = True  # metrics/enhance/eps=<b>.json, eps=0 = the originals
    work_unit = "step"  # progress counts steps of the shared trajectories: done / total and an ETA

    def prepare(self) -> None:
        """Load and check the guide, observers, compare guides and splits before any work."""
        ep, ctx = self.p, self.ctx
        self.budgets = sorted({float(b) for b in ep.budgets})
        if ep.model is None:
            return
        self.guide = ctx.model(ep.model)
        self.observers = {o: ctx.model(o) for o in ep.observers}
        self.compare = {g: ctx.model(g) for g in ep.compare_guides if g != ep.model}
        for name in [ep.model, *self.compare, *self.observers]:
            ctx.groups(name)  # every corpus class maps onto the head (scoring's class mapping)
        for c in set(ep.diverge_from or ()) - set(ctx.classes):
            raise UserError(f"{self.where}.diverge_from: {c!r} is not a class of the corpus")
        have = {s for shard in iter_shards(ctx.dir("images"), ["split"]) for s in shard.column("split").to_pylist()}
        for s in ep.splits:
            if s not in have:
                raise UserError(f"{self.where}.splits: no images in split {s!r} "
                                f"(the corpus has {', '.join(sorted(have))})")

    def diverge_classes(self) -> list[str] | None:
        """What ``logit_diverge`` averages over: ``diverge_from``, else every class of the corpus
        (the reference's default: the classes present in the task, not the model's whole head)."""
        if self.p.diverge_from is not None:
            return list(self.p.diverge_from)
        return list(self.ctx.classes) if self.p.objective == "logit_diverge" else None

    def diverge_heads(self, guide: str) -> list[int] | None:
        """:meth:`diverge_classes` as head outputs of ``guide``, through scoring's class mapping."""
        names = self.diverge_classes()
        if names is None:
            return None
        groups = self.ctx.groups(guide)
        return sorted({int(h) for n in names for h in groups[self.ctx.classes.index(n)]})

    @property
    def columns(self) -> list[str]:
        """The images table's columns the items need: id, label, split and any target column."""
        col = self.ctx.spec.score.target_column
        return ["id", "label", "split", *([col] if col else [])]

    # ------------------------------------------------------------ items ------------------------
    def selected(self, shard: pa.Table) -> pa.Table:
        """The shard's rows of the enhanced splits, in stored order."""
        keep = np.isin(np.asarray(shard.column("split").to_pylist(), dtype=object), list(self.p.splits))
        return shard.filter(pa.array(keep, type=pa.bool_()))

    def items(self, rows: pa.Table, guide: str) -> dict[float, list[Item]]:
        """Per budget, one item per row (id, label) enhanced by ``guide``; the key hashes the
        image, its target class (scoring's class mapping), the guide's weights and every param
        that changes pixels."""
        prefix = self.key_prefix(model_hash=model_digest(self.ctx.model(guide)), diverge=self.diverge_heads(guide),
                                 device=self.compute_device)
        col = self.ctx.spec.score.target_column
        ids, labels = rows.column("id").to_pylist(), rows.column("label").to_pylist()
        heads = self.ctx.targets(guide, labels, rows.column(col).to_pylist() if col else None).tolist()
        return {b: [Item(self.cache_key.key(prefix, image_id=i, target=t, budget=b), EnhanceWork(guide, i, t, b))
                    for i, t in zip(ids, heads, strict=True)] for b in self.budgets}

    def ensure_rows(self, rows: pa.Table, guide: str, desc: str) -> dict[float, list[Item]]:
        """Every budget of ``rows`` (id, label) enhanced by ``guide``, in the cache."""
        per_budget = self.items(rows, guide)
        self.ensure([it for its in per_budget.values() for it in its], desc)
        return per_budget

    @cached_property
    def located(self) -> dict[str, tuple[str, int]]:
        """Image id -> (images shard file, row): where attach reads an image's bytes."""
        return {i: (p.name, row) for p in shard_paths(self.ctx.dir("images"))
                for row, i in enumerate(pq.read_table(p, columns=["id"]).column("id").to_pylist())}

    def attach(self, batch: list[Item]) -> list[Item]:
        return attach_pngs(self.ctx.dir("images"), batch, lambda it: self.located[it.payload.image_id])

    def batches(self, items: list[Item]) -> list[list[Item]]:
        """Images needing the same budgets of the same guide together, in fixed-size batches."""
        per_image: dict[tuple[str, str], list[Item]] = {}
        for it in items:
            per_image.setdefault((it.payload.guide, it.payload.image_id), []).append(it)
        groups: dict[tuple, list[tuple[str, str]]] = {}
        for (guide, image), its in per_image.items():
            groups.setdefault((guide, tuple(sorted(it.payload.budget for it in its))), []).append((guide, image))
        return [[it for img in part for it in per_image[img]]
                for imgs in groups.values() for part in chunks(imgs, self.p.batch_size)]

    def work_size(self, batch: list[Item]) -> int:
        """Steps of the batch's shared trajectory: its largest budget's, plus the final iterate."""
        ep = self.p
        return max(default_steps(it.payload.budget, ep.step_size, ep.steps) for it in batch) + 1

    def compute(self, batch: list[Item]) -> pa.Table:
        """Enhance the batch's images with its guide at its budgets (one shared trajectory)."""
        work: list[EnhanceWork] = [it.payload for it in batch]
        guide = self.ctx.model(work[0].guide)
        images = list(dict.fromkeys(w.image_id for w in work))
        first = {w.image_id: w for w in reversed(work)}
        budgets = sorted({w.budget for w in work})
        ep = replace(self.p, diverge_from=self.diverge_heads(work[0].guide))
        got = enhance_images(ep, guide, [first[i].png for i in images], [first[i].target for i in images],
                             budgets, on_step=self.tick)
        pos = {i: n for n, i in enumerate(images)}
        cols = {c: [got[w.budget][c][pos[w.image_id]] for w in work] for c in RESULT_COLUMNS}
        return pa.table({"key": [it.key for it in batch], **{c: pa.array(v, _TYPES[c]) for c, v in cols.items()}})

    # ------------------------------------------------------------ output -----------------------
    @cached_property
    def shards(self) -> list[Shard]:
        """Per images shard: its enhanced rows and their items per budget, every one in the cache."""
        out = []
        for path in shard_paths(self.ctx.dir("images")):
            rows = self.selected(pq.read_table(path, columns=self.columns))
            out.append((rows, self.ensure_rows(rows, self.p.model, f"shard {path.name}")))
        return out

    def write(self, tmp: Path) -> None:
        if self.p.model is None:
            return  # disabled: an empty folder, no budgets
        for b in self.budgets:
            write_table((_as_rows(self.budget_rows(rows, items[b])) for rows, items in self.shards),
                        features(self.ctx.classes), tmp / budget_dir(b))

    def budget_rows(self, rows: pa.Table, items: list[Item], columns: list[str] | None = None) -> pa.Table:
        """The output rows of one budget: the images' id, label and split with their cached results."""
        got = self.lookup([it.key for it in items], columns)
        out = rows.select(["id", "label", "split"]).append_column(
            "budget", pa.array([it.payload.budget for it in items], pa.float64()))
        for name in got.column_names:
            if name != "key":
                out = out.append_column(name, got.column(name))
        return out

    @cached_property
    def measured(self) -> Measured:
        """Gain and change sizes over every image; on the seeded sample, the transfer to observers
        (and compare guides) and, for JPEG stimuli, what survives JPEG."""
        ep, ctx = self.p, self.ctx
        light = pa.concat_tables(rows.select(["id", "split"]) for rows, _ in self.shards)
        images = (self.selected(t) for t in iter_shards(ctx.dir("images"), [*self.columns, "image"]))
        picked_sample = sample(images, light, ctx.seed, ep.metrics_sample)
        x0 = to_tensor(png_bytes(picked_sample))
        stats = {budget_dir(b): budget_stats(pa.concat_tables(
            [self.budget_rows(rows, items[b], ["key", *NUMBERS]) for rows, items in self.shards]), b, ep.norm)
            for b in self.budgets}
        per_guide = {ep.model: self._sampled(picked_sample, ep.model)}
        for name in self.compare:
            self.ensure_rows(picked_sample, name, f"sample for {name}")
            per_guide[name] = self._sampled(picked_sample, name)
        observers = {o: Judge(m, ctx.groups(o)) for o, m in self.observers.items()}
        transfer = {g: judge(picked_sample, Judge(ctx.model(g), ctx.groups(g)), observers, x0, per_b, self.budgets,
                             ep.batch_size) for g, per_b in per_guide.items()}
        jpeg = None
        if ctx.spec.export.stimulus_format == "jpeg":
            col = ctx.spec.score.target_column
            y = torch.from_numpy(ctx.targets(ep.model, picked_sample.column("label").to_pylist(),
                                             picked_sample.column(col).to_pylist() if col else None))
            jpeg = jpeg_survival(self.guide, picked_sample, y, x0, per_guide[ep.model],
                                 ctx.spec.export.jpeg_quality, ep.batch_size)
        return Measured(ep.model, self.budgets, list(self.observers), picked_sample, per_guide, transfer, stats,
                        light.num_rows, jpeg)

    def metrics(self) -> dict[str, Any]:
        if self.p.model is None:
            return {"guide": None, "budgets": {}}
        ep, m = self.p, self.measured
        out = {"guide": ep.model, "objective": ep.objective, "norm": ep.norm, "step_size": ep.step_size,
               "steps": ep.steps, "splits": list(ep.splits), "images": m.images, "budgets": m.stats,
               "transfer": {"sample": dict(sorted(Counter(m.sample.column("split").to_pylist()).items())),
                            "guides": m.transfer}}
        if ep.objective == "logit_diverge":
            out["diverge_from"] = self.diverge_classes()
        if m.jpeg is not None:
            out["jpeg"] = m.jpeg
        return out

    def _sampled(self, sample: pa.Table, guide: str) -> dict[float, pa.Table]:
        """Per budget, the sample's enhanced rows by ``guide`` (in the sample's order)."""
        return {b: self.budget_rows(sample, its) for b, its in self.items(sample, guide).items()}

    def headline(self, d: dict[str, Any]) -> dict[str, Any]:
        """Per budget (eps=0: the originals): the guide's mean gain and the observers' accuracy
        (``within_budget`` and the change sizes are in the details)."""
        if d["guide"] is None:
            return {}
        rows = {}
        for key, t in d["transfer"]["guides"][d["guide"]].items():
            b = d["budgets"].get(key, {"mean_gain": 0.0})
            obs = [o["all"] for o in t["observers"].values()]
            rows[key] = {"gain": b["mean_gain"], "observer_accuracy": mean_or_zero(obs) if obs else None}
        return rows

    def brief_reason(self, key: str) -> str:  # noqa: ARG002 - the hook's signature
        return "no enhance.observers"

    def null_reason(self, path: tuple[str, ...]) -> str:
        if path[-1] == "guide":
            return "enhancement is disabled (no enhance.model)"
        if path[-1] == "observer_accuracy":
            return "no enhance.observers to judge the enhanced images"
        return super().null_reason(path)

    def plots(self, folder: Path) -> None:
        if self.p.model is None:
            return  # no guide, no figures
        figures(self.measured, folder, self.p.norm, self.ctx.classes, self.p.grid_images)

    def summary(self) -> str:
        if self.p.model is None:
            return "disabled (no enhance.model)"
        computed = sum(c for _, _, c in self.counts)
        top = budget_dir(self.budgets[-1])
        gain = self.measured.transfer[self.p.model][top]["mean_gain"]
        return (f"{len(self.shards)} shards x {len(self.budgets)} budgets ({', '.join(f'{b:g}' for b in self.budgets)}); "
                f"{computed} images x budgets computed; mean gt-logit gain {gain:.2f} at {top} (sample)")


def _as_rows(table: pa.Table) -> dict[str, list]:
    """A cached result as the column lists ``write_table`` encodes."""
    rows = table.to_pydict()
    rows["image"] = [{"bytes": b, "path": None} for b in rows["image"]]
    return rows


