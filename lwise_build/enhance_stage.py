"""``lwise-build enhance <corpus>``: one table per budget in ``data/<corpus>/enhanced/eps=<b>/``.

Output shard i of every budget depends only on input shard i. Finished (shard, budget) results
live in ``ShardCache("enhance")`` keyed by the shard's content, the guide's hash and every param
that changes pixels, so a rerun after a crash, or after adding one budget, computes only what is
new. Stored images are quantized so that they lie within their budget *after* rounding. Metrics
ask whether the change transfers: observers judge images enhanced by each guide on a sample.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from datasets import ClassLabel, Features, Image, Value
from tqdm.auto import tqdm

from . import figures, tables
from .device import pick_device
from .enhancement import change_sizes, enhance, quantize_within
from .errors import UserError
from .images import decode_png, to_pngs, to_tensor
from .models import Classifier, load_named
from .params import EnhanceParams, Params

CACHE_VERSION = 1
INPUT_COLUMNS = ["id", "label", "split", "image"]


@dataclass
class Setup:
    """What the stage reads once: params, the loaded models, class names and budgets."""

    corpus: str
    seed: int
    ep: EnhanceParams
    guide: Classifier
    classes: list[str]
    budgets: list[float]
    observers: dict[str, Classifier] = field(default_factory=dict)
    compare: dict[str, Classifier] = field(default_factory=dict)


def budget_dir(budget: float) -> str:
    """The folder (and metrics key) of one budget, e.g. ``eps=0.25``."""
    return f"eps={budget:g}"


def features(classes: Sequence[str]) -> Features:
    """The public schema of an enhanced table."""
    f = "float64"
    return Features({"id": Value("string"), "label": ClassLabel(names=list(classes)), "split": Value("string"),
                     "budget": Value(f), "image": Image(), "gt_logit_before": Value(f),
                     "gt_logit_after": Value(f), "l2": Value(f), "linf": Value(f)})


def run(params: Params, corpus: str) -> None:
    """Enhance the listed splits at every budget, then write metrics and figures."""
    setup = _setup(params, corpus)
    if setup is None:
        return _write_disabled(corpus)
    images_dir = tables.stage_dir(corpus, "images")
    shards = tqdm(tables.iter_shards(images_dir, INPUT_COLUMNS), desc="enhance shards", unit="shard")
    keys = [_ensure_cached(setup, _selected(setup, shard)) for shard in shards]
    cache = tables.ShardCache("enhance")
    with tables.staged_output(tables.stage_dir(corpus, "enhanced")) as tmp:
        for b in setup.budgets:
            tables.write_table((_as_rows(cache.get(k[b])) for k in keys), features(setup.classes), tmp / budget_dir(b))
    _report(setup, keys)


def _setup(params: Params, corpus: str) -> Setup | None:
    """Load and check everything before any work: guide, observers, compare guides, splits."""
    ep = params.corpus(corpus).enhance
    if ep.model is None:
        return None
    device = pick_device(params.device)
    load = lambda name: load_named(params, name, device)  # noqa: E731
    images_dir = tables.stage_dir(corpus, "images")
    classes = list(tables.read_features(images_dir)["label"].names)
    setup = Setup(corpus, params.seed, ep, load(ep.model), classes, sorted({float(b) for b in ep.budgets}),
                  {o: load(o) for o in ep.observers}, {g: load(g) for g in ep.compare_guides if g != ep.model})
    for name, m in [(ep.model, setup.guide), *setup.compare.items()]:
        label_index(m, classes, f"corpora.{corpus}.enhance: model {name!r}")
    for c in set(ep.diverge_from or ()) - set(classes):
        raise UserError(f"corpora.{corpus}.enhance.diverge_from: {c!r} is not a class of the corpus")
    have = {s for shard in tables.iter_shards(images_dir, ["split"]) for s in shard.column("split").to_pylist()}
    for s in ep.splits:
        if s not in have:
            raise UserError(f"corpora.{corpus}.enhance.splits: no images in split {s!r} "
                            f"(the corpus has {', '.join(sorted(have))})")
    return setup


def _write_disabled(corpus: str) -> None:
    """No guide: an empty enhanced folder (no budgets), a metrics file saying so, empty plots."""
    with tables.staged_output(tables.stage_dir(corpus, "enhanced")):
        pass
    tables.write_json(tables.stage_dir(corpus, "metrics") / "enhance.json", {"guide": None, "budgets": {}})
    plots = _fresh_plots(corpus)
    (plots / "gain.csv").write_text("budget,guide,mean_gain,guide_accuracy\n")


def _fresh_plots(corpus: str):
    plots = tables.stage_dir(corpus, "plots") / "enhance"
    shutil.rmtree(plots, ignore_errors=True)
    plots.mkdir(parents=True)
    return plots


def label_index(model: Classifier, classes: Sequence[str], where: str) -> torch.Tensor:
    """Corpus label -> index in ``model``'s head, by class name; a missing class is a UserError."""
    if list(model.classes) == list(classes):
        return torch.arange(len(classes))
    missing = [c for c in classes if c not in model.classes]
    if missing:
        raise UserError(f"{where} has no class {missing[0]!r} (its classes: {', '.join(model.classes[:10])})")
    return torch.tensor([model.classes.index(c) for c in classes])


# ---------------------------------------------------------------- one shard -------------------
def _selected(setup: Setup, shard: pa.Table) -> pa.Table:
    """The shard's rows of the enhanced splits, in stored order."""
    keep = np.isin(np.asarray(shard.column("split").to_pylist(), dtype=object), list(setup.ep.splits))
    return shard.filter(pa.array(keep, type=pa.bool_()))


def cache_key(setup: Setup, shard: pa.Table, budget: float, guide: Classifier) -> str:
    """Key of one (input shard, budget, guide) result: content, model hash, pixel-changing params."""
    ep = setup.ep
    content = tables.json_digest([shard.column(c).to_pylist() for c in ("id", "label", "split")] + [setup.classes])
    return tables.json_digest({
        "v": CACHE_VERSION, "shard": content, "guide": guide.model_hash, "objective": ep.objective,
        "norm": ep.norm, "step": ep.step_size, "steps": ep.steps, "budget": budget,
        "diverge": sorted(ep.diverge_from) if ep.diverge_from is not None else None,
    })


def _ensure_cached(setup: Setup, shard: pa.Table, guide: Classifier | None = None) -> dict[float, str]:
    """Compute and cache this shard's budgets that are not cached yet; return every budget's key."""
    cache, guide = tables.ShardCache("enhance"), guide or setup.guide
    keys = {b: cache_key(setup, shard, b, guide) for b in setup.budgets}
    missing = [b for b in setup.budgets if not cache.path(keys[b]).exists()]
    if missing:
        for b, table in enhance_shard(setup, shard, missing, guide).items():
            cache.put(keys[b], table)
    return keys


def enhance_shard(setup: Setup, shard: pa.Table, budgets: Sequence[float], guide: Classifier) -> dict[float, pa.Table]:
    """Enhance one shard's rows with ``guide`` at ``budgets``; the output columns per budget."""
    ep, n = setup.ep, shard.num_rows
    x0 = to_tensor([d["bytes"] for d in shard.column("image").to_pylist()]) if n else torch.empty(0, 1, 1, 1)
    labels = shard.column("label").to_pylist()
    y = label_index(guide, setup.classes, "guide")[torch.tensor(labels, dtype=torch.long)]
    out = enhance(guide, x0, y, budgets=budgets, objective=ep.objective, step_size=ep.step_size, norm=ep.norm,
                  steps=ep.steps, diverge_from=ep.diverge_from, batch_size=ep.batch_size,
                  progress=True) if n else {b: x0 for b in budgets}
    before = gt_logits(guide, x0, y, ep.batch_size)
    result = {}
    for b in budgets:
        stored = quantize_within(x0, out[b], b, ep.norm)
        l2, linf = change_sizes(x0, stored)
        result[b] = pa.table({
            "id": shard.column("id"), "label": pa.array(labels, pa.int64()), "split": shard.column("split"),
            "budget": pa.array([b] * n, pa.float64()), "image": pa.array(to_pngs(stored) if n else [], pa.binary()),
            "gt_logit_before": pa.array(before, pa.float64()),
            "gt_logit_after": pa.array(gt_logits(guide, stored, y, ep.batch_size), pa.float64()),
            "l2": pa.array(l2.tolist(), pa.float64()), "linf": pa.array(linf.tolist(), pa.float64()),
        })
    return result


def _as_rows(table: pa.Table | None) -> dict[str, list]:
    """A cached result as the column lists ``write_table`` encodes."""
    if table is None:
        raise UserError("an enhance cache entry vanished during the run; rerun `lwise-build enhance`")
    rows = table.to_pydict()
    rows["image"] = [{"bytes": b, "path": None} for b in rows["image"]]
    return rows


def logits(model: Classifier, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's logits (batched, no grads, on the CPU)."""
    dev = next(model.parameters()).device
    with torch.inference_mode():
        out = [model(x[lo:lo + batch_size].to(dev)).cpu() for lo in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, model.num_classes)


def gt_logits(model: Classifier, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> list[float]:
    """The model's ground-truth logit per image."""
    return logits(model, x, batch_size).gather(1, y[:, None])[:, 0].double().tolist()


# ---------------------------------------------------------------- metrics and figures ----------
def _report(setup: Setup, keys: list[dict[float, str]]) -> None:
    """Per-budget gain, observer transfer per guide on a sample, the grids, curves and gain.csv."""
    ep, cache = setup.ep, tables.ShardCache("enhance")
    light = pa.concat_tables(pq.read_table(cache.path(k[setup.budgets[0]]), columns=["id", "split"]) for k in keys)
    sample = _sample(setup, light)
    x0 = to_tensor([d["bytes"] for d in sample.column("image").to_pylist()])
    stats, picked = {}, {}
    for b in setup.budgets:
        parts = [cache.get(k[b]) for k in keys]
        stats[budget_dir(b)] = _budget_stats(pa.concat_tables(p.drop_columns(["image"]) for p in parts), b, ep.norm)
        picked[b] = _pick(parts, sample)
    guides = {ep.model: (setup.guide, picked)}
    for name, model in setup.compare.items():
        ck = _ensure_cached(setup, sample.select(INPUT_COLUMNS), model)
        guides[name] = (model, {b: _pick([cache.get(ck[b])], sample) for b in setup.budgets})
    transfer = {g: _judge(setup, m, x0, sample, per_b) for g, (m, per_b) in guides.items()}
    tables.write_json(tables.stage_dir(setup.corpus, "metrics") / "enhance.json", {
        "guide": ep.model, "objective": ep.objective, "norm": ep.norm, "step_size": ep.step_size,
        "steps": ep.steps, "splits": list(ep.splits), "images": light.num_rows, "budgets": stats,
        "transfer": {"sample": dict(sorted(Counter(sample.column("split").to_pylist()).items())), "guides": transfer},
    })
    _figures(setup, sample, {g: per_b for g, (_, per_b) in guides.items()}, transfer)


def _sample(setup: Setup, light: pa.Table) -> pa.Table:
    """Up to ``metrics_sample`` images per split, by seeded hash of the id (order independent)."""
    ranked = sorted((s, _rank(setup.seed, i), i) for i, s in zip(light.column("id").to_pylist(),
                                                                  light.column("split").to_pylist(), strict=True))
    chosen, seen = [], {}
    for s, _, i in ranked:
        seen[s] = seen.get(s, 0) + 1
        if seen[s] <= setup.ep.metrics_sample:
            chosen.append(i)
    shards = [_selected(setup, t) for t in tables.iter_shards(tables.stage_dir(setup.corpus, "images"), INPUT_COLUMNS)]
    return _pick(shards, pa.table({"id": chosen}))


def _rank(seed: int, image_id: str) -> str:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest()


def _pick(parts: Sequence[pa.Table], sample: pa.Table) -> pa.Table:
    """The rows of ``parts`` whose ids are in ``sample``, in the sample's order."""
    ids = sample.column("id")
    sub = pa.concat_tables(p.filter(pc.is_in(p.column("id"), value_set=ids)) for p in parts)
    pos = {i: n for n, i in enumerate(sub.column("id").to_pylist())}
    return sub.take(pa.array([pos[i] for i in ids.to_pylist()], pa.int64()))


def _budget_stats(t: pa.Table, b: float, norm: str) -> dict:
    gain = np.asarray(t.column("gt_logit_after")) - np.asarray(t.column("gt_logit_before"))
    l2, linf = np.asarray(t.column("l2")), np.asarray(t.column("linf"))
    size = linf if norm == "linf" else l2
    return {"mean_gain": _mean(gain), "mean_l2": _mean(l2), "max_l2": float(l2.max(initial=0.0)),
            "max_linf": float(linf.max(initial=0.0)), "within_budget": bool((size <= b).all())}


def _mean(a) -> float:
    return float(np.mean(a)) if len(a) else 0.0


def _judge(setup: Setup, guide: Classifier, x0: torch.Tensor, sample: pa.Table, per_b: dict[float, pa.Table]) -> dict:
    """Per budget (0 = original): mean gain and guide/observer accuracy on the sample, per split."""
    labels = torch.tensor(sample.column("label").to_pylist(), dtype=torch.long)
    splits = np.asarray(sample.column("split").to_pylist(), dtype=object)
    out = {}
    for b in [0.0, *setup.budgets]:
        t = per_b.get(b)
        x = x0 if t is None else to_tensor(t.column("image").to_pylist())
        gain = 0.0 if t is None else _mean(np.asarray(t.column("gt_logit_after")) - np.asarray(t.column("gt_logit_before")))
        obs = {name: _accuracy(setup, m, x, labels, splits) for name, m in setup.observers.items()}
        out[budget_dir(b)] = {"mean_gain": gain, "guide_accuracy": _accuracy(setup, guide, x, labels, splits),
                              "observers": obs}
    return out


def _accuracy(setup: Setup, model: Classifier, x: torch.Tensor, labels: torch.Tensor, splits: np.ndarray) -> dict:
    """Accuracy over the sample and per split (observer classes mapped to corpus labels by name)."""
    to_corpus = torch.tensor([setup.classes.index(c) if c in setup.classes else -1 for c in model.classes])
    hit = (to_corpus[logits(model, x, setup.ep.batch_size).argmax(1)] == labels).numpy()
    return {"all": _mean(hit), **{s: _mean(hit[splits == s]) for s in sorted(set(splits))}}


def _figures(setup: Setup, sample: pa.Table, guides: dict, transfer: dict) -> None:
    """grid.png (grid_<guide>.png per compare guide), gain_vs_budget.png, observer_accuracy.png, gain.csv."""
    plots, bs = _fresh_plots(setup.corpus), setup.budgets
    for g, per_b in guides.items():
        _grid(setup, sample, per_b, plots / ("grid.png" if g == setup.ep.model else f"grid_{g}.png"), g)
    series = {g: [t[budget_dir(b)]["mean_gain"] for b in bs] for g, t in transfer.items()}
    figures.lines(bs, series, plots / "gain_vs_budget.png", title="gt-logit gain of each guide",
                  xlabel=f"{setup.ep.norm.upper()} budget", ylabel="mean gt-logit gain", logx=True)
    acc = {f"{o} on {g}-enhanced": [t[budget_dir(b)]["observers"][o]["all"] for b in [0.0, *bs]]
           for g, t in transfer.items() for o in setup.observers}
    if acc:
        figures.lines([0.0, *bs], acc, plots / "observer_accuracy.png", title="observer accuracy (sample)",
                      xlabel="budget (0 = original)", ylabel="accuracy")
    _write_csv(plots / "gain.csv", setup, transfer)


def _grid(setup: Setup, sample: pa.Table, per_b: dict[float, pa.Table], path, guide: str) -> None:
    """Example images (rows) x [original, each budget] (columns)."""
    rows = _grid_rows(setup, sample)
    originals = sample.column("image").to_pylist()
    grid = np.asarray([[decode_png(originals[r]["bytes"])]
                       + [decode_png(per_b[b].column("image")[r].as_py()) for b in setup.budgets] for r in rows])
    figures.image_grid(grid[..., 0] if grid.shape[-1] == 1 else grid, path,
                       row_labels=[setup.classes[sample.column("label")[r].as_py()] for r in rows],
                       col_labels=["original"] + [budget_dir(b) for b in setup.budgets], title=f"enhanced by {guide}")


def _grid_rows(setup: Setup, sample: pa.Table) -> list[int]:
    """Example rows for the grid: test split first, classes in turn."""
    splits, labels = sample.column("split").to_pylist(), sample.column("label").to_pylist()
    turn, seen = {}, Counter()
    for r in sorted(range(len(splits)), key=lambda r: (splits[r] != "test", r)):
        turn[r], seen[labels[r]] = (seen[labels[r]], labels[r]), seen[labels[r]] + 1
    return sorted(turn, key=turn.__getitem__)[: setup.ep.grid_images]


def _write_csv(path, setup: Setup, transfer: dict) -> None:
    """gain.csv for ``dvc plots``: budget, guide, mean_gain, observer accuracy columns."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["budget", "guide", "mean_gain", "guide_accuracy", *[f"acc_{o.replace('-', '_')}" for o in setup.observers]])
    for g, t in transfer.items():
        for b in [0.0, *setup.budgets]:
            m = t[budget_dir(b)]
            accs = [m["guide_accuracy"]["all"], *[m["observers"][o]["all"] for o in setup.observers]]
            w.writerow([f"{b:g}", g, f"{m['mean_gain']:.6g}", *[f"{a:.6g}" for a in accs]])
    path.write_text(buf.getvalue())
