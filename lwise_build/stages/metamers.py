"""The ``metamers`` stage: generators x layers x references, judged by every judge model.

Writes ``data/<c>/metamers/`` (one row per reference, generator and layer), the recognisability
matrix to ``data/<c>/metrics/metamers.json`` and figures to ``data/<c>/plots/metamers/``. Each
(reference, generator, layer) is one cached item keyed by the generator's weights, the layer,
the reference and the schedule, so a rerun after a crash, a judge change or new references
only synthesises what is new (docs/methods.md, "Metamers").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from datasets import ClassLabel, Features, Image, Value

from ..errors import UserError
from ..io.digests import bytes_digest, json_digest
from ..io.images import to_pngs, to_tensor
from ..io.tables import pngs_by_id, read_table, write_table
from ..models.inference import activations, predictions
from ..ops import metamer as M
from ..ops.classmap import corpus_index
from ..seeding import seeded_hex
from .base import Item, UnitStage, group_by
from .metamers_figures import figures

CACHE_VERSION = 2
ROWS_PER_SHARD = 2000
STATS = ("spearman", "pearson", "snr_db")


def judge_column(name: str) -> str:
    """The table column of a judge's predictions (``-`` is not allowed in column names)."""
    return f"judge_{name.replace('-', '_')}_pred"


def features(classes: Sequence[str], judges: Sequence[str]) -> Features:
    """The public schema of the metamers table."""
    label, f = ClassLabel(names=list(classes)), "float64"
    cols = {"reference_id": Value("string"), "label": label, "generator": Value("string"),
            "layer": Value("string"), "layer_depth": Value("int32"), "metamer": Image(), "loss": Value(f),
            **{s: Value(f) for s in STATS}, **{f"null_{s}": Value(f) for s in STATS},
            "passes": Value("bool"), "generator_pred": label}
    cols.update({judge_column(j): label for j in judges})
    return Features(cols)


class Metamers(UnitStage):
    """Metamers per generator and layer, their match statistics against a null, and judges."""

    name, output, section, has_plots = "metamers", "metamers", "metamers", True
    parallel_units = True

    def prepare(self) -> None:
        """Load models, check layers, pick references and null pairs (seeded) before any work."""
        p, ctx = self.p, self.ctx
        self.judges = list(dict.fromkeys(p.judges if p.judges is not None else p.generators))
        if not p.generators:
            return
        self.models = {n: ctx.model(n) for n in dict.fromkeys([*p.generators, *self.judges])}
        self.layers = {g: _layers(self.models[g], p.layers.get(g), f"{self.where}.layers.{g}") for g in p.generators}
        t = read_table(ctx.dir("images"), ["id", "label", "split"])
        ids, labels = t.column("id").to_pylist(), np.asarray(t.column("label").to_pylist())
        in_split = np.asarray(t.column("split").to_pylist(), dtype=object) == p.split
        if in_split.sum() < 2:
            raise UserError(f"{self.where}.split: split {p.split!r} needs at least 2 images (has {in_split.sum()})")
        chosen = select_references(ids, labels, in_split, p.per_class, ctx.seed)
        pool = sorted(np.flatnonzero(in_split), key=lambda i: ids[i])
        used, pairs = np.unique(M.null_pairs(len(pool), p.null_pairs, ctx.seed), return_inverse=True)
        self.pairs = pairs.reshape(-1, 2)  # decode only the images the null uses
        wanted = [ids[i] for i in chosen] + [ids[pool[i]] for i in used]
        found = pngs_by_id(ctx.dir("images"), wanted)
        pngs = [found[i] for i in wanted]
        self.ref_ids, self.ref_labels = [ids[i] for i in chosen], labels[chosen]
        self.refs, self.null_images = to_tensor(pngs[:len(chosen)]), to_tensor(pngs[len(chosen):])
        self.label_maps = {n: corpus_index(m.classes, ctx.classes) for n, m in self.models.items()}

    def cell_items(self) -> dict[tuple[str, str], list[Item]]:
        """Per (generator, layer), one item per reference, keyed by the generator's weights, the
        layer, the reference, the schedule, the noise, the seed and the batch size."""
        p = self.p
        lrs = M.get_schedule(p.schedule).step_sizes(p.step_size, p.steps)
        out = {}
        for g in p.generators:
            for layer in self.layers[g]:
                prefix = json_digest({"v": CACHE_VERSION, "model": self.models[g].model_hash, "layer": layer,
                                      "lrs": json_digest(lrs), "noise": p.init_noise, "seed": self.ctx.seed,
                                      "batch": p.batch_size})
                out[(g, layer)] = [Item(bytes_digest(f"{prefix}:{i}".encode()), (g, layer, r))
                                   for r, i in enumerate(self.ref_ids)]
        return out

    def batches(self, items: list[Item]) -> list[list[Item]]:
        """References of one (generator, layer) together, deepest layers first (they take longest)."""
        depth = {(g, layer): -self.models[g].layers().index(layer) for g, layer, _ in (it.payload for it in items)}
        ordered = sorted(items, key=lambda it: depth[it.payload[:2]])
        return group_by(ordered, lambda it: it.payload[:2], self.p.batch_size)

    def compute(self, batch: list[Item]) -> pa.Table:
        gen, layer = batch[0].payload[:2]
        rows = [it.payload[2] for it in batch]
        p = self.p
        x = M.metamers(self.models[gen], layer, self.refs[rows], [self.ref_ids[r] for r in rows], steps=p.steps,
                       schedule=p.schedule, init_noise=p.init_noise, seed=self.ctx.seed, step_size=p.step_size,
                       batch_size=p.batch_size)
        return pa.table({"key": [it.key for it in batch], "png": pa.array(to_pngs(x), pa.binary())})

    def write(self, tmp: Path) -> None:
        self.table: dict[str, list] = {}
        if not self.p.generators:
            write_table([], features(self.ctx.classes, []), tmp)
            return
        cells = self.cell_items()
        with _deterministic_gpu(self.ctx.device):
            self.ensure([it for its in cells.values() for it in its], "metamers")
            rows = self.map_units(lambda c: self._rows(c, cells[c]), list(cells), "metamer stats")
        self.table = {k: [v for r in rows for v in r[k]] for k in rows[0]}
        n = len(self.table["reference_id"])
        shards = [{k: v[i:i + ROWS_PER_SHARD] for k, v in self.table.items()} for i in range(0, n, ROWS_PER_SHARD)]
        write_table(shards, features(self.ctx.classes, self.judges), tmp)

    def _rows(self, cell: tuple[str, str], items: list[Item]) -> dict[str, list]:
        """The rows of one cell: stats on the stored pixels against the null, then the judges."""
        gen, layer = cell
        model = self.models[gen]
        pngs = self.lookup([it.key for it in items], ["png"]).column("png").to_pylist()
        stored = to_tensor(pngs)
        ref_acts, met_acts = activations(model, layer, self.refs), activations(model, layer, stored)
        null = M.null_thresholds(activations(model, layer, self.null_images), self.pairs)
        stats = M.match_stats(ref_acts, met_acts)
        loss = M.normalised_distance(torch.from_numpy(met_acts), torch.from_numpy(ref_acts)).numpy()
        preds = {n: self.label_maps[n][predictions(self.models[n], stored)] for n in dict.fromkeys([gen, *self.judges])}
        ok = M.passes(stats, null, preds[gen] == self.ref_labels)
        n = len(pngs)
        rows = {"reference_id": self.ref_ids, "label": self.ref_labels.tolist(), "generator": [gen] * n,
                "layer": [layer] * n, "layer_depth": [model.layers().index(layer)] * n,
                "metamer": [{"bytes": p, "path": None} for p in pngs], "loss": loss.tolist(),
                **{s: stats[s].tolist() for s in STATS}, **{f"null_{s}": [null[s]] * n for s in STATS},
                "passes": ok.tolist(), "generator_pred": preds[gen].tolist()}
        rows.update({judge_column(j): preds[j].tolist() for j in self.judges})
        return rows

    def metrics(self) -> dict[str, Any]:
        if not self.p.generators:
            return {"counts": {"metamers": 0}, "generators": {}}
        p = self.p
        self.cells = M.judge_rates(self.table, {j: judge_column(j) for j in self.judges})
        steps = len(M.get_schedule(p.schedule).step_sizes(p.step_size, p.steps))
        return {"counts": {"references": len(self.ref_ids), "metamers": len(self.table["passes"]),
                           "passing": int(sum(self.table["passes"]))},
                "schedule": p.schedule, "steps": steps, "null_pairs": int(len(self.pairs)),
                "generators": {g: {layer: self.cells[(g, layer)] for layer in self.layers[g]} for g in p.generators}}

    def plots(self, folder: Path) -> None:
        if self.p.generators:
            figures(self, folder)

    def summary(self) -> str:
        n = len(self.table.get("passes", []))
        return f"{n} metamers, {int(sum(self.table.get('passes', [])))} passing" if n else "no generators configured"


@contextlib.contextmanager
def _deterministic_gpu(device: torch.device) -> Iterator[None]:
    """cuDNN's deterministic kernels on a GPU, so rebuilds give the same pixels."""
    if device.type == "cpu":
        yield
        return
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


def _layers(model: Any, wanted: Sequence[str] | None, where: str) -> list[str]:
    """The generator's layers to use (all its stages by default); unknown names are errors."""
    stages = model.layers()
    if not stages:
        raise UserError(f"{where}: this model has no named stages to stop at (arch {model.arch!r})")
    for name in wanted or ():
        if name not in stages:
            raise UserError(f"{where}: unknown layer {name!r} (stages: {', '.join(stages)})")
    return sorted(wanted, key=stages.index) if wanted else stages


def select_references(ids: Sequence[str], labels: np.ndarray, mask: np.ndarray, per_class: int,
                      seed: int) -> list[int]:
    """``per_class`` rows per class among ``mask``, ranked by a hash of (seed, id): order-free."""
    out: list[int] = []
    for c in sorted(set(labels[mask].tolist())):
        rows = list(np.flatnonzero(mask & (labels == c)))
        out += sorted(rows, key=lambda i: seeded_hex(seed, ids[i]))[:per_class]
    return out
