"""``lwise-build check``: everything knowable without running a stage, one line per finding.

Besides the params-only checks (:mod:`lwise_build.config.checks`) it looks at what the stages will
meet: architecture names (with a did-you-mean) and the inputs they take, each corpus's source
(the folder or manifest exists, the manifest's header has the image, label and ``group_by``
columns, the files it names exist) and, from the source listing alone (no image is decoded), how
many images of each class each split will get, against what the curricula and metamers need.
Errors are what a stage would fail on; warnings are unusual but may be intended.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from ..config.checks import Finding, class_needs, error, params_findings, used_models, warning
from ..config.constants import SPLITS
from ..config.curricula import expand_blocks
from ..config.params import CorpusParams, Params
from ..errors import UserError, quote
from ..io.manifest import column_problem, manifest_columns
from ..io.sources import RawItem, load_source
from ..models.registry import check_arch, fixed_channels, input_rule
from ..ops.classmap import model_targets
from .ingest.stage import assign_splits
from .registry import SPECS
from .resolving import is_local

Counts = dict[str, Counter]  # split -> label -> images


def check_project(params: Params) -> list[Finding]:
    """Every finding for ``params``: the params alone, the architectures and checkpoints, then each source."""
    out = params_findings(params) + arch_findings(params) + checkpoint_findings(params)
    for cname, c in params.corpora.items():
        out += source_findings(params, cname, c)
    return out


def arch_findings(params: Params) -> list[Finding]:
    """Unknown architectures, and inputs an architecture cannot take (channels, size)."""
    out = []
    for name, m in params.models.items():
        problem = check_arch(m.arch)
        if problem:
            out.append(error(f"models.{name}.arch: {problem}"))
            continue
        if m.arch.startswith("timm:"):
            continue
        channels = fixed_channels(m.arch)
        if channels is not None and m.in_channels != channels:
            out.append(error(f"models.{name}.in_channels: {m.arch} takes {channels} channels, got {m.in_channels}"))
        size = params.corpus(m.corpus).ingest.image_size
        least, exact = input_rule(m.arch)
        if (exact and size != least) or size < least:
            need = f"exactly {least}" if exact else f"at least {least}"
            out.append(error(f"models.{name}.arch: {m.arch} needs images of {need} px, but "
                             f"corpora.{m.corpus}.ingest.image_size is {size}"))
    return out


def checkpoint_findings(params: Params) -> list[Finding]:
    """A checkpoint given as a file path must exist (URLs and ``hf://`` are fetched by train)."""
    out = []
    for name, m in params.models.items():
        if m.checkpoint and is_local(m.checkpoint) and not Path(m.checkpoint).expanduser().is_file():
            out.append(error(f"models.{name}.checkpoint: file {m.checkpoint!r} not found; give the path of the "
                             "checkpoint file (relative to where you run lwise-build), an http(s):// URL or "
                             "hf://org/repo/file"))
    return out


def head_classes(params: Params, name: str) -> list[str] | None:
    """A model's head classes as its params give them (``classes``; "0".."n-1" for an imported
    ``num_classes`` head), None when they are its corpus's labels (it is trained on them)."""
    m = params.model(name)
    if m.classes:
        return list(m.classes)
    return [str(i) for i in range(m.num_classes)] if m.num_classes and not m.train else None


def _mapping_findings(params: Params, cname: str, c: CorpusParams, labels: list[str]) -> list[Finding]:
    """Every corpus label must reach every model the corpus uses through scoring's class mapping
    (``score.class_map``), the one mapping score, enhance, metamers and train apply."""
    out, where = [], f"corpora.{cname}.score"
    if c.score.target_column:
        return out  # per-image targets: checked by the stages against the images table
    for model in dict.fromkeys(m for _, m in used_models(cname, c)):
        classes = head_classes(params, model)
        if classes is None:
            continue
        try:
            model_targets(classes, labels, range(len(labels)), f"{where} (model {model})", class_map=c.score.class_map)
        except UserError as exc:
            out.append(error(str(exc)))
    return out


# ---------------------------------------------------------------- sources ---------------------
def source_findings(params: Params, cname: str, c: CorpusParams) -> list[Finding]:
    """The source's paths and columns, then (if those are fine) what each split will hold."""
    sec = f"corpora.{cname}.ingest"
    found = _source_layout(c, sec)
    if found or c.ingest.source.startswith("hf:"):
        return found  # Hub datasets are not downloaded by check
    try:
        items = load_source(c.ingest, sec)
    except UserError as exc:
        return [error(str(exc))]
    found += _bad_entries(items, c, sec)
    try:
        kept = [{"id": it.source, "label": it.label, "split": it.split, "meta": it.meta} for it in items]
        splits = assign_splits(kept, c.ingest, params.seed, sec)
    except UserError as exc:
        return [*found, error(str(exc))]
    counts: Counts = defaultdict(Counter)
    for it, s in zip(items, splits, strict=True):
        counts[s][it.label] += 1
    labels = sorted({it.label for it in items})
    return found + _split_findings(c, sec, counts, labels, all(it.split for it in items)) + \
        _use_findings(params, cname, counts, labels) + _mapping_findings(params, cname, c, labels)


def _source_layout(c: CorpusParams, sec: str) -> list[Finding]:
    """The source exists; a manifest's header has the columns; group_by has metadata to group."""
    ing = c.ingest
    scheme, _, rest = ing.source.partition(":")
    path, group = Path(rest).expanduser(), ing.splits.group_by
    if scheme == "imagefolder" and not path.is_dir():
        return [error(f"{sec}.source: folder {str(path)!r} not found")]
    if scheme == "manifest" and not path.is_file():
        return [error(f"{sec}.source: manifest {str(path)!r} not found")]
    if scheme in ("imagefolder", "builtin") and group:
        kind = "an image folder" if scheme == "imagefolder" else f"{ing.source}"
        return [error(f"{sec}.splits.group_by: {group!r}, but {kind} has no metadata columns; "
                      "use a manifest with that column, or remove group_by")]
    if scheme != "manifest":
        return []
    try:
        columns = manifest_columns(path, f"{sec}.source")
    except UserError as exc:
        return [error(str(exc))]
    problem = column_problem(ing, columns, sec, f"manifest {path}")
    if problem:
        return [error(problem)]
    if group and group not in columns:
        return [error(f"{sec}.splits.group_by: manifest {path} has no column {group!r} (columns: {', '.join(columns)})")]
    return []


def _bad_entries(items: list[RawItem], c: CorpusParams, sec: str) -> list[Finding]:
    """Entries ingest will skip as bad inputs, without decoding: files that do not exist,
    dangling symlinks, loops, folders, pipes (too many fail it)."""
    bad = [(it.source, it.meta["_bad"]) for it in items if it.data is None and it.meta.get("_bad")]
    if not bad:
        return []
    frac = len(bad) / max(1, len(items))
    source, why = bad[0]
    text = f"{len(bad)} of {len(items)} entries of the source are not readable files (e.g. {quote(source)}: {why})"
    if frac > c.ingest.max_bad_fraction:
        return [error(f"{sec}.source: {text}; more than max_bad_fraction {c.ingest.max_bad_fraction:g}")]
    return [warning(f"{sec}.source: {text}; ingest skips and lists them")]


def _split_findings(c: CorpusParams, sec: str, counts: Counts, labels: list[str], given: bool) -> list[Finding]:
    """A split that gets no image of a class (e.g. a class with one image: train only)."""
    fracs = {"train": c.ingest.splits.train, "validation": c.ingest.splits.validation, "test": c.ingest.splits.test}
    out = []
    if given and c.ingest.splits.group_by:
        out.append(warning(f"{sec}.splits.group_by: the source gives every image its split, so group_by is not used"))
    for split in SPLITS:
        if not given and fracs[split] == 0:
            continue
        empty = [lab for lab in labels if not counts[split][lab]]
        if empty and len(empty) == len(labels):
            out.append(warning(f"{sec}.splits: the {split} split gets no images"))
        elif empty:
            sizes = ", ".join(f"{lab!r} ({sum(counts[s][lab] for s in SPLITS)} images)" for lab in empty[:5])
            more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
            out.append(warning(f"{sec}.splits: the {split} split gets no image of class {sizes}{more}"))
    return out


def _use_findings(params: Params, cname: str, counts: Counts, labels: list[str]) -> list[Finding]:
    """Splits the stages read must hold images; curricula need enough images of every class."""
    base, out, c = f"corpora.{cname}", [], params.corpus(cname)
    total = {s: sum(counts[s].values()) for s in SPLITS}
    for spec in (s for s in SPECS if s.splits and s.enabled(params, cname)):
        for key, split, least in spec.splits(params, cname):
            if total.get(split, 0) < least:
                out.append(error(f"{base}.{key}: the {split} split will have {total.get(split, 0)} images; "
                                 f"{spec.name} needs at least {least}"))
    for name, cur in c.curricula.items():
        train_need, test_need = class_needs(expand_blocks(cur, f"{base}.curricula.{name}"))
        if cur.train_split == cur.test_split:
            train_need, test_need = train_need + test_need, 0
        for split, need in ((cur.train_split, train_need), (cur.test_split, test_need)):
            short = [(counts[split][lab], lab) for lab in labels if need and counts[split][lab] < need]
            if short:
                worst = ", ".join(f"{lab!r} ({n})" for n, lab in sorted(short)[:5])
                out.append(warning(f"{base}.curricula.{name}: {len(short)} of {len(labels)} classes have fewer "
                                   f"than the {need} {split} images per class it needs: {worst}"))
    return out
