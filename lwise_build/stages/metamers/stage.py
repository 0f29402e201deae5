"""The ``metamers`` stage: generators x layers x references, judged by every judge model.

Writes ``data/<c>/metamers/`` (one row per reference, generator and layer), the recognisability
matrix to ``data/<c>/metrics/details/metamers.json`` and figures to ``data/<c>/plots/metamers/``. Each
(reference, generator, layer) is one cached item keyed by the generator's weights, the layer,
the reference and the schedule, so a rerun after a crash, a judge change or new references
only synthesises what is new. Validity as the reference code judges it (docs/methods.md,
"Metamers"): forced choices over the corpus's classes through scoring's class mapping, and a null
distribution of distinct pairs of natural training images (:mod:`~lwise_build.ops.metamer_stats`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from datasets import ClassLabel, Features, Image, Value

from ...errors import UserError
from ...io.digests import json_digest
from ...io.images import to_pngs, to_tensor
from ...io.scratch import ScratchRows
from ...io.tables import pngs_at, pngs_by_id, read_table, write_table
from ...models.inference import activations, logits
from ...models.store import model_digest
from ...ops import metamer as M
from ...ops import metamer_stats as MS
from ...ops.augment import augment
from ...ops.classmap import forced_choice
from ...seeding import seeded_int
from ..units import Item, UnitStage, group_by
from .figures import Synthesised, figures
from .helpers import deterministic_gpu, generator_layers, locations, select_references
from .spec import SPEC

ROWS_PER_SHARD = 2000
STATS = MS.STATS
#: Decoded null images kept in memory at most (floats); more are decoded per use.
MAX_NULL_PIXELS = 2**26


def judge_column(name: str) -> str:
    """The table column of a judge's predictions (``-`` is not allowed in column names)."""
    return f"judge_{name.replace('-', '_')}_pred"


def features(classes: Sequence[str], judges: Sequence[str]) -> Features:
    """The public schema of the metamers table."""
    label, f = ClassLabel(names=list(classes)), "float64"
    cols = {"reference_id": Value("string"), "label": label, "generator": Value("string"),
            "layer": Value("string"), "layer_depth": Value("int32"), "metamer": Image(), "loss": Value(f),
            **{s: Value(f) for s in STATS}, **{f"null_{s}": Value(f) for s in STATS},
            "passes": Value("bool"), "generator_pred": label, "reference_pred": label}
    cols.update({judge_column(j): label for j in judges})
    return Features(cols)


@dataclass(frozen=True)
class MetamerWork:
    """One reference (its row in the stage's references) at one generator layer."""

    generator: str
    layer: str
    ref: int


class Metamers(UnitStage, spec=SPEC):
    """Metamers per generator and layer, their match statistics against a null, and judges."""

    headline_rows = True  # metrics/metamers/<generator>.json
    parallel_units = True
    work_unit = "step"  # progress counts synthesis steps: done / total and an ETA

    def prepare(self) -> None:
        """Load models, check layers, pick references and null pairs (seeded) before any work."""
        p, ctx = self.p, self.ctx
        self.judges = list(dict.fromkeys(p.judges if p.judges is not None else p.generators))
        if not p.generators:
            return
        self.models = {n: ctx.model(n) for n in dict.fromkeys([*p.generators, *self.judges])}
        self.layers = {g: generator_layers(self.models[g], p.layers.get(g), f"{self.where}.layers.{g}") for g in p.generators}
        t = read_table(ctx.dir("images"), ["id", "label", "split"])
        ids, labels = t.column("id").to_pylist(), np.asarray(t.column("label").to_pylist())
        split = np.asarray(t.column("split").to_pylist(), dtype=object)
        for key, name in (("split", p.split), ("null_split", p.null_split)):
            if (split == name).sum() < 2:
                raise UserError(f"{self.where}.{key}: split {name!r} needs at least 2 images (has {(split == name).sum()})")
        chosen = select_references(ids, labels, split == p.split, p.per_class, ctx.seed)
        pool = sorted(np.flatnonzero(split == p.null_split), key=lambda i: ids[i])
        used, pairs = np.unique(MS.null_pairs(len(pool), p.null_pairs, ctx.seed), return_inverse=True)
        self.pairs = pairs.reshape(-1, 2)  # decode only the images the null uses
        self.null_ids = [ids[pool[i]] for i in used]
        self.null_at = locations(ctx.dir("images"), self.null_ids)
        found = pngs_by_id(ctx.dir("images"), [ids[i] for i in chosen])
        self.ref_ids, self.ref_labels = [ids[i] for i in chosen], labels[chosen]
        self.refs = to_tensor([found[i] for i in self.ref_ids])
        self.null_images = self._decode_null(np.arange(len(self.null_ids))) if (
            len(self.null_ids) * self.refs[0].numel() <= MAX_NULL_PIXELS) else None
        self.groups = {n: ctx.groups(n) for n in self.models}  # scoring's class mapping

    def _decode_null(self, idx: np.ndarray) -> torch.Tensor:
        """Null images ``idx`` as the model sees them (train-time augmentation seeded per image),
        read from the images table (only the row groups holding them)."""
        x = to_tensor(pngs_at(self.ctx.dir("images"), [self.null_at[i] for i in idx]))
        kinds = tuple(self.p.null_augment)
        if kinds:
            x = torch.cat([augment(x[k:k + 1], kinds, torch.Generator().manual_seed(
                seeded_int(self.ctx.seed, "null-augment", self.null_ids[i]))) for k, i in enumerate(idx)])
        return x

    def _null(self, model: Any, layer: str) -> dict[str, float]:
        """The null thresholds at ``layer``: each image's activations once, in batches of the
        stage's batch size (rows past memory go to a scratch file), the statistics in blocks."""
        n, bs = len(self.null_ids), self.p.batch_size

        def batches() -> Iterator[np.ndarray]:
            for lo in range(0, n, bs):
                idx = np.arange(lo, min(n, lo + bs))
                x = self.null_images[idx] if self.null_images is not None else self._decode_null(idx)
                yield activations(model, layer, x, bs)

        return MS.thresholds(MS.null_stats(batches(), self.pairs, n, spill=ScratchRows))

    def choices(self, name: str, x: torch.Tensor) -> np.ndarray:
        """Model ``name``'s forced choice over the corpus's classes (corpus label indices)."""
        return forced_choice(logits(self.models[name], x, self.p.batch_size).numpy(), self.groups[name])

    def cell_items(self) -> dict[tuple[str, str], list[Item]]:
        """Per (generator, layer), one item per reference, keyed by the generator's weights, the
        layer, the reference, the schedule's steps as run and the params :data:`.key.KEY` names."""
        p = self.p
        lrs = json_digest(M.get_schedule(p.schedule).step_sizes(p.step_size, p.steps))
        out = {}
        for g in p.generators:
            for layer in self.layers[g]:
                prefix = self.key_prefix(model_hash=model_digest(self.models[g]), layer=layer, step_sizes=lrs,
                                         device=self.compute_device)
                out[(g, layer)] = [Item(self.cache_key.key(prefix, reference_id=i), MetamerWork(g, layer, r))
                                   for r, i in enumerate(self.ref_ids)]
        return out

    def batches(self, items: list[Item]) -> list[list[Item]]:
        """References of one (generator, layer) together, deepest layers first (they take longest)."""
        def cell(it: Item) -> tuple[str, str]:
            return it.payload.generator, it.payload.layer

        depth = {(g, layer): -self.models[g].layers().index(layer) for g, layer in map(cell, items)}
        return group_by(sorted(items, key=lambda it: depth[cell(it)]), cell, self.p.batch_size)

    @cached_property
    def synthesis_models(self) -> dict[str, Any]:
        """One synthesis copy per generator (:func:`~lwise_build.ops.metamer.synthesis_model`),
        shared by every batch and thread (not one copy per batch)."""
        return {g: M.synthesis_model(self.models[g]) for g in self.p.generators}

    def work_size(self, batch: list[Item]) -> int:  # noqa: ARG002 - the hook's signature
        """Synthesis steps of one batch (its references go together)."""
        p = self.p
        return len(M.get_schedule(p.schedule).step_sizes(p.step_size, p.steps))

    def compute(self, batch: list[Item]) -> pa.Table:
        gen, layer = batch[0].payload.generator, batch[0].payload.layer
        rows = [it.payload.ref for it in batch]
        p = self.p
        with deterministic_gpu(self.ctx.device):  # here, not only in the driver: Ray actors run this
            x = M.metamers(self.synthesis_models[gen], layer, self.refs[rows], [self.ref_ids[r] for r in rows],
                           steps=p.steps, schedule=p.schedule, init_noise=p.init_noise, seed=self.ctx.seed,
                           step_size=p.step_size, batch_size=p.batch_size, fake_relu=p.fake_relu, on_step=self.tick)
        return pa.table({"key": [it.key for it in batch], "png": pa.array(to_pngs(x), pa.binary())})

    @cached_property
    def ref_choice(self) -> dict[str, np.ndarray]:
        """Each generator's forced choice on the references (what its metamers must match)."""
        return {g: self.choices(g, self.refs) for g in self.p.generators}

    @cached_property
    def result(self) -> Synthesised:
        """Every metamer from the cache or synthesised, its rows (statistics against the null,
        the judges' choices) and the judges' rates per (generator, layer)."""
        if not self.p.generators:
            return Synthesised({}, {}, self.judges, [], None, [], np.zeros(0, np.int64))
        cells = self.cell_items()
        self.ref_choice  # noqa: B018 - on the references before the deterministic kernels, as always
        with deterministic_gpu(self.ctx.device):
            self.ensure([it for its in cells.values() for it in its], "metamers")
            rows = self.map_units(lambda c: self._rows(c, cells[c]), list(cells), "metamer stats")
        table = {k: [v for r in rows for v in r[k]] for k in rows[0]}
        rates = M.judge_rates(table, {j: judge_column(j) for j in self.judges})
        return Synthesised(table, rates, self.judges, list(self.p.generators), self.refs, self.ref_ids, self.ref_labels)

    def write(self, tmp: Path) -> None:
        table = self.result.table
        if not table:
            write_table([], features(self.ctx.classes, []), tmp)
            return
        n = len(table["reference_id"])
        shards = [{k: v[i:i + ROWS_PER_SHARD] for k, v in table.items()} for i in range(0, n, ROWS_PER_SHARD)]
        write_table(shards, features(self.ctx.classes, self.judges), tmp)

    def _rows(self, cell: tuple[str, str], items: list[Item]) -> dict[str, list]:
        """The rows of one cell: stats on the stored pixels against the null, then the judges."""
        gen, layer = cell
        model = self.models[gen]
        pngs = self.lookup([it.key for it in items], ["png"]).column("png").to_pylist()
        stored = to_tensor(pngs)
        bs = self.p.batch_size
        ref_acts, met_acts = activations(model, layer, self.refs, bs), activations(model, layer, stored, bs)
        null = self._null(model, layer)
        stats = MS.match_stats(ref_acts, met_acts)
        loss = M.normalised_distance(torch.from_numpy(met_acts), torch.from_numpy(ref_acts)).numpy()
        preds = {n: self.choices(n, stored) for n in dict.fromkeys([gen, *self.judges])}
        on_ref = self.ref_choice[gen]
        ok = MS.passes(stats, null, preds[gen] == on_ref)
        n = len(pngs)
        rows = {"reference_id": self.ref_ids, "label": self.ref_labels.tolist(), "generator": [gen] * n,
                "layer": [layer] * n, "layer_depth": [model.layers().index(layer)] * n,
                "metamer": [{"bytes": p, "path": None} for p in pngs], "loss": loss.tolist(),
                **{s: stats[s].tolist() for s in STATS}, **{f"null_{s}": [null[s]] * n for s in STATS},
                "passes": ok.tolist(), "generator_pred": preds[gen].tolist(), "reference_pred": on_ref.tolist()}
        rows.update({judge_column(j): preds[j].tolist() for j in self.judges})
        return rows

    def metrics(self) -> dict[str, Any]:
        if not self.p.generators:
            return {"counts": {"metamers": 0}, "generators": {}}
        p, r = self.p, self.result
        steps = len(M.get_schedule(p.schedule).step_sizes(p.step_size, p.steps))
        return {"counts": {"references": len(r.ref_ids), "metamers": len(r.table["passes"]),
                           "passing": int(sum(r.table["passes"])), "null_pairs": int(len(self.pairs)),
                           "null_images": len(self.null_ids)},
                "schedule": p.schedule, "steps": steps, "null_split": p.null_split,
                "null_augment": list(p.null_augment), "fake_relu": p.fake_relu,
                "null_rule": "every statistic >= its maximum over the null pairs",
                "generators": {g: {layer: r.cells[(g, layer)] for layer in self.layers[g]} for g in p.generators}}

    def headline(self, d: dict[str, Any]) -> dict[str, Any]:
        """Per generator over its layers: metamers, passing, and how often other models recognise them."""
        rows = {}
        for g, layers in d.get("generators", {}).items():
            cross = [c["recognisability_others"] for c in layers.values() if c.get("recognisability_others") is not None]
            n, passing = sum(c["n"] for c in layers.values()), sum(c["n_passing"] for c in layers.values())
            rows[g] = {"pass_rate": passing / n if n else 0.0, "recognised": float(np.mean(cross)) if cross else None}
        return rows

    def brief_reason(self, key: str) -> str:  # noqa: ARG002 - the hook's signature
        return "no passing metamers"

    def null_reason(self, path: tuple[str, ...]) -> str:
        if path[-1] in ("recognisability", "recognisability_others"):
            return "no passing metamers judged by another model (all failed the null check, or no other judges)"
        if "recognisability" in path:
            return "no passing metamers at this layer"
        if path[-1] == "mean_loss":
            return "the table has no loss column"
        return super().null_reason(path)

    def plots(self, folder: Path) -> None:
        if self.p.generators:
            figures(self.result, folder, self.ctx.classes)

    def summary(self) -> str:
        table = self.result.table
        n = len(table.get("passes", []))
        if not n:
            return "no generators configured (metamers.generators is empty)"
        cells = sum(len(v) for v in self.layers.values())
        return (f"{n} metamers ({len(self.ref_ids)} references x {cells} generator layers), "
                f"{int(sum(table['passes']))} passing the null check")
