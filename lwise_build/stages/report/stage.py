"""The ``report`` stage: one self-contained ``data/<corpus>/report/index.html`` to check a build by eye.

Everything is inline (stored images as data: URIs, the data as JSON, CSS and JS from ``assets/``),
so the page opens from disk with no server and no network. Images larger than
``report.thumbnail_px`` go in as JPEG thumbnails (a 224-px corpus made a 104 MB page of full
PNGs); the full images are in the tables. Only a seeded, class-stratified sample
of images (and the images the embedded curricula and metamers need) goes into the page; every
section says "not built" when its input table is missing. Same inputs + params -> same bytes.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from ...config.constants import SPLITS
from ...errors import UserError
from ...hub.configs import enhanced_tables
from ...io.images import thumbnail
from ...io.paths import enhanced_dir, stage_dir
from ...io.tables import (
    class_names,
    column_names,
    has_table,
    png_bytes,
    pngs_by_id,
    read_table,
    rows_by_id,
)
from ...ops.metamer import judge_rates
from ...seeding import seeded_hex
from ..base import Stage
from ..registry import SPECS
from .spec import SPEC

ASSETS = Path(__file__).resolve().parents[2] / "assets"
STAGE_ORDER = tuple(s.name for s in SPECS)  # figures follow the pipeline
TRIAL_COLUMNS = ("trial", "block", "phase", "budget", "feedback", "id", "label", "difficulty",
                 "selection")


class Report(Stage, spec=SPEC):
    """``lwise-build report <corpus>``: the self-contained explorer ``data/<c>/report/index.html``."""

    def write(self, tmp: Path) -> None:
        self.page = render(collect(self.ctx.params, self.ctx.corpus))
        (tmp / "index.html").write_text(self.page, encoding="utf-8")

    def summary(self) -> str:
        return f"index.html, {len(self.page.encode()) / 1e6:.1f} MB (open it in a browser; no server needed)"


# ---------------------------------------------------------------- helpers --------------------
def stratified_sample(ids: list[str], labels: list[Any], n: int, seed: int) -> list[int]:
    """Indices of ``n`` items drawn round-robin over classes, each class in seeded order."""
    by_class: dict[Any, list[int]] = defaultdict(list)
    for i in sorted(range(len(ids)), key=lambda i: seeded_hex(seed, ids[i])):
        by_class[labels[i]].append(i)
    queues = [by_class[c] for c in sorted(by_class, key=label_order)]
    picked: list[int] = []
    depth = 0
    while len(picked) < min(n, len(ids)):
        picked += [q[depth] for q in queues if depth < len(q)][: n - len(picked)]
        depth += 1
    return sorted(picked, key=lambda i: (label_order(labels[i]), seeded_hex(seed, ids[i])))


def label_order(label: Any) -> tuple:
    """Sort labels numerically (class indices) or by name; unknown (None) last."""
    return (label is None, label if label is not None else 0)


def data_uri(png: bytes, px: int | None = None) -> str:
    """A PNG as an inline ``data:`` URI; with ``px``, its thumbnail (at most ``px`` a side)."""
    mime, data = thumbnail(png, px) if px else ("image/png", png)
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def num(v: Any, digits: int = 4) -> float | None:
    """A JSON-safe rounded float (NaN and None become null)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return round(float(v), digits)


# ---------------------------------------------------------------- sections -------------------
def load_scores(corpus: str, ids: list[str]) -> tuple[list[str], dict[str, list[float | None]]]:
    """Score aliases and each sampled image's within-class difficulty per alias."""
    folder = stage_dir(corpus, "scores")
    if not has_table(folder):
        return [], {}
    aliases = [c[: -len("_difficulty")] for c in column_names(folder) if c.endswith("_difficulty")]
    cols = [f"{a}_difficulty" for a in aliases]
    t = rows_by_id(folder, ids, ["id", *cols])
    rows = zip(t["id"].to_pylist(), *(t[c].to_pylist() for c in cols), strict=True)
    return aliases, {r[0]: [num(v) for v in r[1:]] for r in rows}


def enhanced_budgets(corpus: str) -> list[str]:
    """Built budgets (folder ``eps=<b>`` holding a table) as written in folder names, by value."""
    return [f"{b:g}" for b in enhanced_tables(stage_dir(corpus, "enhanced"))]


def load_enhanced(corpus: str, wanted: dict[str, set[str]], px: int) -> dict[str, dict[str, list]]:
    """``budget -> id -> [data URI (thumbnail), gt-logit gain]`` for the wanted ids of each built budget."""
    out = {}
    for b, ids in wanted.items():
        t = rows_by_id(enhanced_dir(corpus, float(b)), ids, ["id", "image", "gt_logit_before", "gt_logit_after"])
        gains = pc.subtract(t["gt_logit_after"], t["gt_logit_before"]).to_pylist()
        pngs = dict(zip(t["id"].to_pylist(), png_bytes(t), strict=True))
        pairs = zip(t["id"].to_pylist(), gains, strict=True)
        out[b] = {i: [data_uri(pngs[i], px), num(g, 3)] for i, g in pairs}
    return out


def load_curricula(corpus: str, cap: int) -> dict[str, Any] | None:
    """All trial rows per curriculum and sequence, in order; images only for ``cap`` sequences."""
    folder = stage_dir(corpus, "curricula")
    if not has_table(folder):
        return None
    t = read_table(folder, ["curriculum", "sequence", *TRIAL_COLUMNS]).to_pylist()
    groups: dict[str, dict[Any, list]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(t, key=lambda r: (r["curriculum"], r["sequence"], r["trial"])):
        r["budget"] = f"{float(r['budget'] or 0.0):g}"
        r["difficulty"] = num(r["difficulty"])
        groups[r["curriculum"]][r["sequence"]].append([r[c] for c in TRIAL_COLUMNS])
    items = []
    for name, seqs in groups.items():
        items.append({"name": name, "sequences": [
            {"name": str(s), "embedded": k < cap, "trials": rows}
            for k, (s, rows) in enumerate(seqs.items())
        ]})
    return {"columns": list(TRIAL_COLUMNS), "cap": cap, "items": items}


def curriculum_needs(cur: dict[str, Any] | None) -> set[tuple[str, str]]:
    """``(budget, id)`` pairs of the trials whose images are embedded."""
    if cur is None:
        return set()
    b, i = TRIAL_COLUMNS.index("budget"), TRIAL_COLUMNS.index("id")
    return {(row[b], row[i]) for item in cur["items"] for seq in item["sequences"]
            if seq["embedded"] for row in seq["trials"]}


def load_metamers(corpus: str, n: int, seed: int, px: int) -> dict[str, Any] | None:
    """Recognisability matrix over all metamers plus a gallery of ``n`` sampled references."""
    folder = stage_dir(corpus, "metamers")
    if not has_table(folder):
        return None
    names = column_names(folder)
    judges = [c for c in names if c.startswith("judge_") and c.endswith("_pred")]
    cols = ["reference_id", "label", "generator", "layer", "layer_depth", "passes", "loss",
            "generator_pred", *judges]
    rows = read_table(folder, [c for c in cols if c in names]).to_pylist()
    rows.sort(key=lambda r: (r["generator"], r["layer_depth"], r["layer"], r["reference_id"]))
    refs = sorted({r["reference_id"]: r["label"] for r in rows}.items())
    picked = stratified_sample([r[0] for r in refs], [r[1] for r in refs], n, seed)
    chosen = [refs[i][0] for i in picked]
    return {"matrix": recognisability_matrix(rows, judges), "total": len(refs),
            "refs": gallery(folder, rows, chosen, px)}


def recognisability_matrix(rows: list[dict], judges: list[str]) -> dict[str, Any]:
    """Rows generator/layer; columns pass rate, the generator itself, then each judge (all metamers)."""
    known = {r["generator"].replace("-", "_"): r["generator"] for r in rows}  # undo '-' -> '_'
    names = [known.get(j[6:-5], j[6:-5]) for j in judges]
    table = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
    cells = judge_rates(table, dict(zip(names, judges, strict=True))) if rows else {}
    values = [[num(c["pass_rate"], 3), *(num(c["recognisability_all"][j], 3) for j in (g, *names))]
              for (g, _), c in cells.items()]
    return {"rows": [f"{g} / {layer}" for g, layer in cells], "cols": ["passes", "generator", *names],
            "values": values}


def gallery(folder: Path, rows: list[dict], chosen: list[str], px: int) -> list[dict]:
    """Each chosen reference with its metamers (per generator, by layer depth) and pass/fail."""
    t = rows_by_id(folder, chosen, ["reference_id", "generator", "layer", "metamer"], key="reference_id")
    keys = zip(*(t[c].to_pylist() for c in ("reference_id", "generator", "layer")), strict=True)
    pngs = dict(zip(keys, png_bytes(t, "metamer"), strict=True))
    by_ref: dict[str, list] = defaultdict(list)
    for r in rows:
        key = (r["reference_id"], r["generator"], r["layer"])
        if key in pngs:
            pred = r.get("generator_pred")
            by_ref[r["reference_id"]].append([r["generator"], r["layer"], data_uri(pngs[key], px),
                                              r.get("passes"), pred if pred is None else str(pred)])
    label = {r["reference_id"]: r["label"] for r in rows}
    return [{"id": i, "label": label[i], "metamers": by_ref[i]} for i in chosen]


def stage_rank(stage: str) -> int:
    """Figures follow the pipeline: scores, enhancement, curricula, metamers, then the rest."""
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)


def load_figures(corpus: str) -> list[dict[str, str]]:
    """Every PNG the stages drew under ``data/<corpus>/plots/`` (the same files as card and dvc)."""
    root = stage_dir(corpus, "plots")
    if not root.is_dir():
        return []
    paths = sorted(root.rglob("*.png"), key=lambda p: (stage_rank(p.parent.name), p.as_posix()))
    return [{"stage": p.parent.relative_to(root).as_posix() if p.parent != root else "",
             "name": p.stem, "src": data_uri(p.read_bytes())} for p in paths]


# ---------------------------------------------------------------- the page -------------------
def collect(params: Any, corpus: str) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-ready data."""
    rp = params.corpus(corpus).report
    folder = stage_dir(corpus, "images")
    if not has_table(folder):
        raise UserError(f"{folder}: no images table; run `lwise-build ingest {corpus}` first")
    classes = class_names(folder)
    meta = read_table(folder, ["id", "label", "split"])
    ids, labels, splits = (meta[c].to_pylist() for c in ("id", "label", "split"))
    picked = stratified_sample(ids, labels, rp.sample, params.seed)
    sample = [ids[i] for i in picked]
    aliases, diffs = load_scores(corpus, sample)
    cur = load_curricula(corpus, rp.curriculum_sequences)
    needs = curriculum_needs(cur)
    budgets = enhanced_budgets(corpus)
    px = rp.thumbnail_px
    enh = load_enhanced(corpus, {b: {*sample, *(i for bb, i in needs if bb == b)} for b in budgets}, px)
    met = load_metamers(corpus, rp.metamer_sample, params.seed, px)
    originals = set(sample) | {i for b, i in needs if i not in enh.get(b, {})}
    originals |= {r["id"] for r in met["refs"]} if met else set()
    pngs = pngs_by_id(folder, originals)
    return {
        "title": f"{corpus}: lwise-build report", "corpus": corpus, "classes": classes,
        "total": len(ids), "splitCounts": split_counts(splits), "aliases": aliases,
        "budgets": budgets, "scoresBuilt": bool(aliases), "pixelated": small(pngs),
        "items": [[ids[i], labels[i], splits[i], diffs.get(ids[i])] for i in picked],
        "src": {i: data_uri(p, px) for i, p in pngs.items()}, "enh": enh,
        "curricula": cur, "metamers": met, "figures": load_figures(corpus),
        "params": {"sample": rp.sample, "metamer_sample": rp.metamer_sample,
                   "curriculum_sequences": rp.curriculum_sequences, "thumbnail_px": px},
        "configured": configured(params, corpus), "configKeys": CONFIG_KEYS,
    }


#: The optional stages by params section, and the key that turns each on (their specs' ``enabled_by``).
CONFIG_KEYS = {s.section: s.enabled_by for s in SPECS if s.section and s.enabled_by}


def configured(params: Any, corpus: str) -> dict[str, bool]:
    """Which optional stages the params turn on (the page says "none configured", not "not built")."""
    return {s.section: s.enabled(params, corpus) for s in SPECS if s.section and s.enabled_by}


def split_counts(splits: list[str]) -> list[list]:
    """``[[split, count], ...]`` with train, validation, test first."""
    counts: dict[str, int] = defaultdict(int)
    for s in splits:
        counts[s] += 1
    order = sorted(counts, key=lambda s: (SPLITS.index(s) if s in SPLITS else 9, s))
    return [[s, counts[s]] for s in order]


def small(pngs: dict[str, bytes]) -> bool:
    """Whether images are tiny (then the page upscales them with crisp pixels)."""
    from io import BytesIO

    from PIL import Image

    first = next(iter(pngs.values()), b"")
    if not first:
        return False
    with Image.open(BytesIO(first)) as im:  # reads the header only: no pixels decoded
        return im.width < 96


def render(data: dict[str, Any]) -> str:
    """Fill the HTML template with the inline CSS, JS and JSON (``<`` escaped in the JSON)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    parts = {
        "title": html.escape(data["title"]),
        "css": (ASSETS / "report.css").read_text(encoding="utf-8"),
        "js": (ASSETS / "report.js").read_text(encoding="utf-8"),
        "data": blob.replace("<", "\\u003c"),
    }
    template = (ASSETS / "report.html").read_text(encoding="utf-8")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], template)
