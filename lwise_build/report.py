"""The report stage: one self-contained ``data/<corpus>/report/index.html`` to check a build by eye.

Everything is inline (stored PNGs as data: URIs, the data as JSON, CSS and JS from ``assets/``),
so the page opens from disk with no server and no network. Only a seeded, class-stratified sample
of images (and the images the embedded curricula and metamers need) goes into the page; every
section says "not built" when its input table is missing. Same inputs + params -> same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from .errors import UserError
from .tables import read_features, read_table, shard_paths, stage_dir, staged_output

ASSETS = Path(__file__).parent / "assets"
SPLIT_ORDER = ("train", "validation", "test")
STAGE_ORDER = ("score", "enhance", "curriculum", "metamers")
TRIAL_COLUMNS = ("trial", "block", "phase", "budget", "feedback", "id", "label", "difficulty",
                 "selection")


def run(params: Any, corpus: str) -> Path:
    """Build the report for ``corpus`` and write ``data/<corpus>/report/index.html``."""
    page = render(collect(params, corpus))
    with staged_output(stage_dir(corpus, "report")) as tmp:
        (tmp / "index.html").write_text(page, encoding="utf-8")
    out = stage_dir(corpus, "report") / "index.html"
    print(f"report: wrote {out} ({len(page.encode()) / 1e6:.1f} MB)", file=sys.stderr)
    return out


# ---------------------------------------------------------------- helpers --------------------
def built(folder: Path) -> bool:
    """Whether a stage table exists in ``folder``."""
    return any(Path(folder).glob("data-*-of-*.parquet"))


def sample_key(seed: int, image_id: str) -> str:
    """The seeded sort key of an image: the sample never depends on table order."""
    return hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest()


def stratified_sample(ids: list[str], labels: list[Any], n: int, seed: int) -> list[int]:
    """Indices of ``n`` items drawn round-robin over classes, each class in seeded order."""
    by_class: dict[Any, list[int]] = defaultdict(list)
    for i in sorted(range(len(ids)), key=lambda i: sample_key(seed, ids[i])):
        by_class[labels[i]].append(i)
    queues = [by_class[c] for c in sorted(by_class, key=label_order)]
    picked: list[int] = []
    depth = 0
    while len(picked) < min(n, len(ids)):
        picked += [q[depth] for q in queues if depth < len(q)][: n - len(picked)]
        depth += 1
    return sorted(picked, key=lambda i: (label_order(labels[i]), sample_key(seed, ids[i])))


def label_order(label: Any) -> tuple:
    """Sort labels numerically (class indices) or by name; unknown (None) last."""
    return (label is None, label if label is not None else 0)


def data_uri(png: bytes) -> str:
    """A PNG as an inline ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def num(v: Any, digits: int = 4) -> float | None:
    """A JSON-safe rounded float (NaN and None become null)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return round(float(v), digits)


def budget_key(b: float) -> str:
    """A budget as written in folder names (``eps=<b>``)."""
    return f"{float(b):g}"


def label_index(v: Any, classes: list[str]) -> int | None:
    """A label stored as a ClassLabel index or as a class name -> its index."""
    if v is None:
        return None
    if isinstance(v, str):
        return classes.index(v) if v in classes else None
    return int(v)


def pick_rows(folder: Path, ids: Iterable[str], columns: list[str], key: str = "id",
              desc: str = "") -> pa.Table:
    """The rows of a table whose ``key`` is in ``ids``, shard by shard (bounded memory)."""
    wanted = pa.array(sorted(set(ids)), type=pa.string())
    parts = []
    for path in tqdm(shard_paths(folder), desc=f"report: {desc}", leave=False, disable=None):
        t = pq.read_table(path, columns=columns)
        parts.append(t.filter(pc.is_in(t[key], value_set=wanted)))
    return pa.concat_tables(parts)


def pngs_by_id(table: pa.Table, column: str = "image", key: str = "id") -> dict[str, bytes]:
    """``id -> PNG bytes`` from a table with an Image struct column."""
    pngs = table[column].combine_chunks().field("bytes").to_pylist()
    return dict(zip(table[key].to_pylist(), pngs, strict=True))


# ---------------------------------------------------------------- sections -------------------
def load_scores(corpus: str, ids: list[str]) -> tuple[list[str], dict[str, list[float | None]]]:
    """Score aliases and each sampled image's within-class difficulty per alias."""
    folder = stage_dir(corpus, "scores")
    if not built(folder):
        return [], {}
    names = pq.read_schema(shard_paths(folder)[0]).names
    aliases = [c[: -len("_difficulty")] for c in names if c.endswith("_difficulty")]
    cols = [f"{a}_difficulty" for a in aliases]
    t = pick_rows(folder, ids, ["id", *cols], desc="scores")
    rows = zip(t["id"].to_pylist(), *(t[c].to_pylist() for c in cols), strict=True)
    return aliases, {r[0]: [num(v) for v in r[1:]] for r in rows}


def enhanced_budgets(corpus: str) -> list[str]:
    """Built budgets (folder ``eps=<b>`` holding a table), sorted by value."""
    root = stage_dir(corpus, "enhanced")
    found = [p.name[4:] for p in root.glob("eps=*") if built(p)] if root.is_dir() else []
    return sorted(found, key=float)


def load_enhanced(corpus: str, wanted: dict[str, set[str]]) -> dict[str, dict[str, list]]:
    """``budget -> id -> [data URI, gt-logit gain]`` for the wanted ids of each built budget."""
    out = {}
    for b, ids in wanted.items():
        folder = stage_dir(corpus, "enhanced") / f"eps={b}"
        t = pick_rows(folder, ids, ["id", "image", "gt_logit_before", "gt_logit_after"],
                      desc=f"enhanced eps={b}")
        gains = pc.subtract(t["gt_logit_after"], t["gt_logit_before"]).to_pylist()
        pngs = pngs_by_id(t)
        pairs = zip(t["id"].to_pylist(), gains, strict=True)
        out[b] = {i: [data_uri(pngs[i]), num(g, 3)] for i, g in pairs}
    return out


def load_curricula(corpus: str, classes: list[str], cap: int) -> dict[str, Any] | None:
    """All trial rows per curriculum and sequence, in order; images only for ``cap`` sequences."""
    folder = stage_dir(corpus, "curricula")
    if not built(folder):
        return None
    t = read_table(folder, ["curriculum", "sequence", *TRIAL_COLUMNS]).to_pylist()
    groups: dict[str, dict[Any, list]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(t, key=lambda r: (r["curriculum"], r["sequence"], r["trial"])):
        r["label"] = label_index(r["label"], classes)
        r["budget"] = budget_key(r["budget"] or 0.0)
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


def load_metamers(corpus: str, classes: list[str], n: int, seed: int) -> dict[str, Any] | None:
    """Recognisability matrix over all metamers plus a gallery of ``n`` sampled references."""
    folder = stage_dir(corpus, "metamers")
    if not built(folder):
        return None
    names = pq.read_schema(shard_paths(folder)[0]).names
    judges = [c for c in names if c.startswith("judge_") and c.endswith("_pred")]
    cols = ["reference_id", "label", "generator", "layer", "layer_depth", "passes",
            "generator_pred", *judges]
    rows = read_table(folder, [c for c in cols if c in names]).to_pylist()
    for r in rows:
        r["label"] = label_index(r["label"], classes)
        r["ok"] = {j: correct(r.get(j), r["label"], classes) for j in ["generator_pred", *judges]}
    rows.sort(key=lambda r: (r["generator"], r.get("layer_depth") or 0, r["layer"],
                             r["reference_id"]))
    refs = sorted({r["reference_id"]: r["label"] for r in rows}.items())
    picked = stratified_sample([r[0] for r in refs], [r[1] for r in refs], n, seed)
    chosen = [refs[i][0] for i in picked]
    return {"matrix": recognisability(rows, judges), "total": len(refs),
            "refs": gallery(folder, rows, chosen)}


def correct(pred: Any, label: int | None, classes: list[str]) -> bool | None:
    """Whether a prediction (class index or name) names the reference's class."""
    if pred is None or label is None:
        return None
    return pred == classes[label] if isinstance(pred, str) else int(pred) == label


def recognisability(rows: list[dict], judges: list[str]) -> dict[str, Any]:
    """Rows generator/layer; columns pass rate, the generator itself, then each judge."""
    cols = ["passes", "generator_pred", *judges]
    known = {r["generator"].replace("-", "_"): r["generator"] for r in rows}  # undo '-' -> '_'
    heads = ["passes", "generator", *(known.get(j[6:-5], j[6:-5]) for j in judges)]
    cells: dict[tuple[str, str], dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        cell = cells[(r["generator"], r["layer"])]
        if r.get("passes") is not None:
            cell["passes"].append(bool(r["passes"]))
        for c in cols[1:]:
            if r["ok"].get(c) is not None:
                cell[c].append(r["ok"][c])
    values = [[num(sum(v) / len(v), 3) if (v := cell.get(c)) else None for c in cols]
              for cell in cells.values()]
    return {"rows": [f"{g} / {layer}" for g, layer in cells], "cols": heads, "values": values}


def gallery(folder: Path, rows: list[dict], chosen: list[str]) -> list[dict]:
    """Each chosen reference with its metamers (per generator, by layer depth) and pass/fail."""
    t = pick_rows(folder, chosen, ["reference_id", "generator", "layer", "metamer"],
                  key="reference_id", desc="metamers")
    keys = zip(*(t[c].to_pylist() for c in ("reference_id", "generator", "layer")), strict=True)
    pngs = dict(zip(keys, t["metamer"].combine_chunks().field("bytes").to_pylist(), strict=True))
    by_ref: dict[str, list] = defaultdict(list)
    for r in rows:
        key = (r["reference_id"], r["generator"], r["layer"])
        if key in pngs:
            pred = r.get("generator_pred")
            by_ref[r["reference_id"]].append([r["generator"], r["layer"], data_uri(pngs[key]),
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
    if not built(folder):
        raise UserError(f"{folder}: no images table; run `lwise-build ingest {corpus}` first")
    classes = list(read_features(folder)["label"].names)
    meta = read_table(folder, ["id", "label", "split"])
    ids, labels, splits = (meta[c].to_pylist() for c in ("id", "label", "split"))
    picked = stratified_sample(ids, labels, rp.sample, params.seed)
    sample = [ids[i] for i in picked]
    aliases, diffs = load_scores(corpus, sample)
    cur = load_curricula(corpus, classes, rp.curriculum_sequences)
    needs = curriculum_needs(cur)
    budgets = enhanced_budgets(corpus)
    enh = load_enhanced(corpus, {b: {*sample, *(i for bb, i in needs if bb == b)} for b in budgets})
    met = load_metamers(corpus, classes, rp.metamer_sample, params.seed)
    originals = set(sample) | {i for b, i in needs if i not in enh.get(b, {})}
    originals |= {r["id"] for r in met["refs"]} if met else set()
    pngs = pngs_by_id(pick_rows(folder, originals, ["id", "image"], desc="images"))
    return {
        "title": f"{corpus}: lwise-build report", "corpus": corpus, "classes": classes,
        "total": len(ids), "splitCounts": split_counts(splits), "aliases": aliases,
        "budgets": budgets, "scoresBuilt": bool(aliases), "pixelated": small(pngs),
        "items": [[ids[i], labels[i], splits[i], diffs.get(ids[i])] for i in picked],
        "src": {i: data_uri(p) for i, p in pngs.items()}, "enh": enh,
        "curricula": cur, "metamers": met, "figures": load_figures(corpus),
        "params": {"sample": rp.sample, "metamer_sample": rp.metamer_sample,
                   "curriculum_sequences": rp.curriculum_sequences},
    }


def split_counts(splits: list[str]) -> list[list]:
    """``[[split, count], ...]`` with train, validation, test first."""
    counts: dict[str, int] = defaultdict(int)
    for s in splits:
        counts[s] += 1
    order = sorted(counts, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 9, s))
    return [[s, counts[s]] for s in order]


def small(pngs: dict[str, bytes]) -> bool:
    """Whether images are tiny (then the page upscales them with crisp pixels)."""
    first = next(iter(pngs.values()), b"")
    return len(first) > 24 and int.from_bytes(first[16:20], "big") < 96


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
