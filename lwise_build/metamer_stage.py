"""The ``metamers`` stage: generators x layers x references, judged by every judge model.

Writes ``data/<c>/metamers/`` (one row per reference, generator and layer), the recognisability
matrix to ``data/<c>/metrics/metamers.json`` and figures to ``data/<c>/plots/metamers/``.
Synthesis results are cached per (generator weights, layer, references, schedule), so a rerun
after a crash or a judge change only synthesises what is new.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch
from datasets import ClassLabel, Features, Image, Value
from tqdm.auto import tqdm

from . import metamer as M
from .device import pick_device
from .errors import UserError
from .images import decode_png, to_pngs, to_tensor
from .models import Classifier, load_named
from .params import MetamerParams, Params
from .tables import (
    ShardCache,
    iter_shards,
    json_digest,
    read_features,
    read_table,
    stage_dir,
    staged_output,
    write_json,
    write_table,
)

CACHE_VERSION = 1
ROWS_PER_SHARD = 2000
STATS = ("spearman", "pearson", "snr_db")


@dataclass
class Setup:
    """Everything checked before any work: models, layers, references and null images."""

    corpus: str
    seed: int
    mp: MetamerParams
    classes: list[str]
    models: dict[str, Classifier]
    layers: dict[str, list[str]]
    judges: list[str]
    ref_ids: list[str]
    ref_labels: np.ndarray
    refs: torch.Tensor
    null_images: torch.Tensor
    pairs: np.ndarray
    label_maps: dict[str, np.ndarray] = field(default_factory=dict)


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


def run(params: Params, corpus: str) -> None:
    """Synthesise, measure and judge every metamer, then write the table, metrics and figures."""
    if not params.corpus(corpus).metamers.generators:
        return _write_disabled(corpus)
    setup = _setup(params, corpus)
    cells = [(g, layer) for g in setup.mp.generators for layer in setup.layers[g]]
    rows = _all_cells(setup, cells)
    table = {k: [v for r in rows for v in r[k]] for k in (rows[0] if rows else {})}
    n = len(table.get("reference_id", []))
    shards = [{k: v[i:i + ROWS_PER_SHARD] for k, v in table.items()} for i in range(0, n, ROWS_PER_SHARD)]
    with staged_output(stage_dir(corpus, "metamers")) as tmp:
        write_table(shards, features(setup.classes, setup.judges), tmp)
    _report(setup, table)


def _write_disabled(corpus: str) -> None:
    """No generators: an empty table (schema only), a metrics file saying so, an empty plots folder."""
    classes = read_features(stage_dir(corpus, "images"))["label"].names
    with staged_output(stage_dir(corpus, "metamers")) as tmp:
        write_table([], features(classes, []), tmp)
    write_json(stage_dir(corpus, "metrics") / "metamers.json", {"counts": {"metamers": 0}, "generators": {}})
    shutil.rmtree(stage_dir(corpus, "plots") / "metamers", ignore_errors=True)
    (stage_dir(corpus, "plots") / "metamers").mkdir(parents=True)


def _all_cells(setup: Setup, cells: list[tuple[str, str]]) -> list[dict[str, list]]:
    """Every (generator, layer) cell; on CPU, cells run side by side, one thread each.

    Small models on few cores run faster as parallel single-threaded cells than as one
    multi-threaded cell at a time, and single-threaded results do not depend on the core count.
    """
    device = next(iter(next(iter(setup.models.values())).buffers())).device if setup.models else None
    if device is None or device.type != "cpu":
        before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False  # rebuilds match
        try:
            return [_cell(setup, g, layer) for g, layer in tqdm(cells, desc="metamers", unit="layer")]
        finally:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before
    threads = torch.get_num_threads()
    deepest_first = sorted(range(len(cells)), key=lambda i: -setup.models[cells[i][0]].layers().index(cells[i][1]))
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max(1, min(threads, len(cells)))) as pool:
            futures = {i: pool.submit(_cell, setup, *cells[i]) for i in deepest_first}
            for _ in tqdm(as_completed(futures.values()), total=len(cells), desc="metamers", unit="layer"):
                pass
            return [futures[i].result() for i in range(len(cells))]
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- setup -----------------------
def _setup(params: Params, corpus: str) -> Setup:
    """Load models, check layers and classes, pick references and null pairs (seeded)."""
    mp = params.corpus(corpus).metamers
    where = f"corpora.{corpus}.metamers"
    judges = list(dict.fromkeys(mp.judges if mp.judges is not None else mp.generators))
    device = pick_device(params.device)
    models = {n: load_named(params, n, device) for n in dict.fromkeys([*mp.generators, *judges])}
    layers = {g: _layers(models[g], mp.layers.get(g), f"{where}.layers.{g}") for g in mp.generators}
    images = stage_dir(corpus, "images")
    classes = list(read_features(images)["label"].names)
    t = read_table(images, ["id", "label", "split"])
    ids, labels = t.column("id").to_pylist(), np.asarray(t.column("label").to_pylist())
    in_split = np.asarray(t.column("split").to_pylist(), dtype=object) == mp.split
    if in_split.sum() < 2:
        raise UserError(f"{where}.split: split {mp.split!r} needs at least 2 images (has {in_split.sum()})")
    chosen = select_references(ids, labels, in_split, mp.per_class, params.seed)
    pool = sorted(np.flatnonzero(in_split), key=lambda i: ids[i])
    pairs = M.null_pairs(len(pool), mp.null_pairs, params.seed)
    used, pairs = np.unique(pairs, return_inverse=True)  # decode only the images the null uses
    pngs = _pngs(images, [ids[i] for i in chosen] + [ids[pool[i]] for i in used])
    setup = Setup(corpus, params.seed, mp, classes, models, layers, judges, [ids[i] for i in chosen],
                  labels[chosen], to_tensor(pngs[:len(chosen)]), to_tensor(pngs[len(chosen):]),
                  pairs.reshape(-1, 2))
    setup.label_maps = {n: corpus_index(m, classes) for n, m in models.items()}
    return setup


def _pngs(images, wanted: Sequence[str]) -> list[bytes]:
    """PNG bytes of the images ``wanted`` (by id, in that order), one shard in memory at a time."""
    need, found = set(wanted), {}
    for shard in iter_shards(images, ["id", "image"]):
        keep = pa.array([i in need for i in shard.column("id").to_pylist()], pa.bool_())
        part = shard.filter(keep)
        found.update(zip(part.column("id").to_pylist(),
                         part.column("image").combine_chunks().field("bytes").to_pylist(), strict=True))
    return [found[i] for i in wanted]


def _layers(model: Classifier, wanted: Sequence[str] | None, where: str) -> list[str]:
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
    rank = lambda i: hashlib.sha256(f"{seed}:{ids[i]}".encode()).hexdigest()  # noqa: E731
    out: list[int] = []
    for c in sorted(set(labels[mask].tolist())):
        rows = [i for i in np.flatnonzero(mask & (labels == c))]
        out += sorted(rows, key=rank)[:per_class]
    return out


def corpus_index(model: Classifier, classes: Sequence[str]) -> np.ndarray:
    """Model class index -> corpus label index by name (-1 where the corpus lacks the class)."""
    where = {c: i for i, c in enumerate(classes)}
    return np.asarray([where.get(c, -1) for c in model.classes], dtype=np.int64)


# ---------------------------------------------------------------- one generator x layer -------
def _cell(setup: Setup, gen: str, layer: str) -> dict[str, list]:
    """The rows of one (generator, layer): synthesis (cached), stats on the stored pixels, judges."""
    model = setup.models[gen]
    pngs = _synthesised(setup, gen, layer)
    stored = to_tensor(pngs)
    ref_acts = M.activations(model, layer, setup.refs)
    met_acts = M.activations(model, layer, stored)
    null = M.null_thresholds(M.activations(model, layer, setup.null_images), setup.pairs)
    stats = M.match_stats(ref_acts, met_acts)
    loss = M.normalised_distance(torch.from_numpy(met_acts), torch.from_numpy(ref_acts)).numpy()
    preds = {n: predict(setup, n, stored) for n in dict.fromkeys([gen, *setup.judges])}
    ok = M.passes(stats, null, preds[gen] == setup.ref_labels)
    n = len(pngs)
    rows = {"reference_id": setup.ref_ids, "label": setup.ref_labels.tolist(), "generator": [gen] * n,
            "layer": [layer] * n, "layer_depth": [model.layers().index(layer)] * n,
            "metamer": [{"bytes": p, "path": None} for p in pngs], "loss": loss.tolist(),
            **{s: stats[s].tolist() for s in STATS}, **{f"null_{s}": [null[s]] * n for s in STATS},
            "passes": ok.tolist(), "generator_pred": preds[gen].tolist()}
    rows.update({judge_column(j): preds[j].tolist() for j in setup.judges})
    return rows


def _synthesised(setup: Setup, gen: str, layer: str) -> list[bytes]:
    """PNG metamers of every reference at ``layer`` of ``gen``, from the cache when present."""
    mp, model = setup.mp, setup.models[gen]
    lrs = M.get_schedule(mp.schedule).step_sizes(mp.step_size, mp.steps)
    key = json_digest({"v": CACHE_VERSION, "model": model.model_hash, "layer": layer, "refs": setup.ref_ids,
                       "lrs": json_digest(lrs), "noise": mp.init_noise, "seed": setup.seed,
                       "batch": mp.batch_size})  # rounding, hence pixels, depend on the batch size
    cache = ShardCache("metamers")
    hit = cache.get(key) if model.model_hash else None
    if hit is not None and hit.column("reference_id").to_pylist() == setup.ref_ids:
        return hit.column("png").to_pylist()
    x = M.metamers(model, layer, setup.refs, steps=mp.steps, schedule=mp.schedule, init_noise=mp.init_noise,
                   seed=setup.seed, ids=setup.ref_ids, step_size=mp.step_size, batch_size=mp.batch_size)
    pngs = to_pngs(x)
    if model.model_hash:
        cache.put(key, pa.table({"reference_id": setup.ref_ids, "png": pa.array(pngs, pa.binary())}))
    return pngs


def predict(setup: Setup, name: str, x: torch.Tensor) -> np.ndarray:
    """Corpus label index that model ``name`` assigns to each image (-1: not a corpus class)."""
    model = setup.models[name]
    device = next(iter(model.buffers())).device
    with torch.no_grad():
        out = [model(x[i:i + 256].to(device)).argmax(1).cpu() for i in range(0, len(x), 256)]
    idx = torch.cat(out).numpy() if out else np.empty(0, dtype=np.int64)
    return setup.label_maps[name][idx]


# ---------------------------------------------------------------- metrics and figures ---------
def _report(setup: Setup, table: dict[str, list]) -> None:
    """metrics/metamers.json, plots/metamers/{recognisability.png,.csv, gallery.png}."""
    cells = M.recognisability(table, {j: judge_column(j) for j in setup.judges})
    names = list(dict.fromkeys([*setup.judges, *setup.mp.generators]))
    metrics = {"counts": {"references": len(setup.ref_ids), "metamers": len(table.get("passes", [])),
                          "passing": int(sum(table.get("passes", [])))},
               "schedule": setup.mp.schedule, "steps": len(M.get_schedule(setup.mp.schedule).step_sizes(
                   setup.mp.step_size, setup.mp.steps)), "null_pairs": int(len(setup.pairs)),
               "generators": {g: {layer: cells[(g, layer)] for layer in setup.layers[g]}
                              for g in setup.mp.generators}}
    write_json(stage_dir(setup.corpus, "metrics") / "metamers.json", metrics)
    plots = stage_dir(setup.corpus, "plots") / "metamers"
    shutil.rmtree(plots, ignore_errors=True)
    plots.mkdir(parents=True)
    _write_csv(plots / "recognisability.csv", cells)
    _figures(setup, table, cells, names, plots)


def _write_csv(path, cells: dict[tuple[str, str], dict]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["generator", "layer", "layer_depth", "judge", "recognisability", "recognisability_all",
                "n_passing", "n"])
    for (g, layer), c in cells.items():
        for j, v in c["recognisability"].items():
            w.writerow([g, layer, c["layer_depth"], j, "" if v is None else f"{v:.6g}",
                        f"{c['recognisability_all'][j]:.6g}", c["n_passing"], c["n"]])
    path.write_text(buf.getvalue())


def _figures(setup: Setup, table: dict[str, list], cells: dict, names: list[str], plots) -> None:
    from . import figures

    mat = np.array([[np.nan if (v := c["recognisability"].get(j)) is None else v for j in names]
                    for c in cells.values()], dtype=float)
    rows = [f"{g} / {layer} ({c['pass_rate']:.0%} pass)" for (g, layer), c in cells.items()]
    figures.heatmap(mat, rows, names, plots / "recognisability.png",
                    title="Metamer recognisability (passing metamers judged correct)")
    _gallery(setup, table, list(cells), plots / "gallery.png")


def _gallery(setup: Setup, table: dict[str, list], cells: list[tuple[str, str]], path) -> None:
    """One reference per class (up to 10): the reference, then its metamer per generator/layer."""
    first = {}
    for i, c in enumerate(setup.ref_labels.tolist()):
        first.setdefault(c, i)
    picks = list(first.values())[:10]
    at = {(r, g, layer): i for i, (r, g, layer) in
          enumerate(zip(table["reference_id"], table["generator"], table["layer"], strict=True))}
    refs = [_as_image(to_pngs(setup.refs[i:i + 1])[0]) for i in picks]
    grid = [[refs[k], *[_as_image(table["metamer"][at[(setup.ref_ids[i], g, layer)]]["bytes"])
                        for g, layer in cells]] for k, i in enumerate(picks)]
    from . import figures

    figures.image_grid(np.asarray(grid), path, row_labels=[setup.classes[setup.ref_labels[i]] for i in picks],
                       col_labels=["reference", *[f"{g}\n{layer}" for g, layer in cells]],
                       title="Model metamers")


def _as_image(png: bytes) -> np.ndarray:
    """A stored PNG as a uint8 array for the figures (H, W) or (H, W, 3)."""
    arr = decode_png(png)
    return arr[..., 0] if arr.shape[-1] == 1 else arr
