"""What ``lwise-build check`` can tell from the params alone (no files): one finding per line.

Loading (:mod:`.load`) already rejects what can never run (unknown keys, types, names); these
checks compare sections with each other the way the stages later will: a model's input size and
channels against its corpus's images, the corpora that use a model against the one it is built
for, and the images a curriculum needs per class (:func:`class_needs`). Checks that read the
source (paths, manifest columns, class counts) are in :mod:`lwise_build.stages.check`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from .curricula import expand_blocks
from .datasheet import unwritten
from .params import BlockParams, CorpusParams, Params


@dataclass(frozen=True)
class Finding:
    """One line of ``check``: an error (a stage would fail) or a warning (unusual, it may work)."""

    level: Literal["error", "warning"]
    text: str


def error(text: str) -> Finding:
    return Finding("error", text)


def warning(text: str) -> Finding:
    return Finding("warning", text)


def params_findings(p: Params) -> list[Finding]:
    """Every cross-section problem of ``p`` that needs no file."""
    out = []
    for mname, m in p.models.items():
        out += _model_vs_corpus(mname, p.corpus(m.corpus), m.corpus, m.input_size, m.in_channels)
    for cname, c in p.corpora.items():
        out += list(_foreign_models(p, cname, c))
        out += list(_curricula_without_guide(cname, c))
        out += list(_export_findings(cname, c))
    return out


def _export_findings(cname: str, c: CorpusParams) -> Iterator[Finding]:
    """Pairs of budgets enhance does not build; and, for a corpus to publish, the datasheet's
    parts only its authors can write (the card marks them until they are set)."""
    where = f"corpora.{cname}.export"
    for b in c.export.pairs or ():
        if c.enhance.model is None or float(b) not in {float(x) for x in c.enhance.budgets}:
            yield error(f"{where}.pairs: budget {b:g} is not in corpora.{cname}.enhance.budgets; add it there or drop it")
    gaps = unwritten(c.ingest.source, c.export.datasheet, c.export.authors) if c.export.repo_id else []
    if gaps:
        yield warning(f"{where}: the datasheet leaves {', '.join(gaps)} to the authors (the card marks them); "
                      "set them before `lwise-build publish`")


def _model_vs_corpus(mname: str, c: CorpusParams, cname: str, size: int | None, channels: int) -> list[Finding]:
    """A model's input size and channels must match its corpus's canonical images."""
    out, ing = [], c.ingest
    if size is not None and size != ing.image_size:
        out.append(error(f"models.{mname}.input_size: {size}, but corpora.{cname}.ingest.image_size is "
                         f"{ing.image_size}; make them equal (the images are stored at image_size)"))
    want = 1 if ing.grayscale else 3
    if channels != want:
        what = "grayscale: true (1-channel images)" if ing.grayscale else "grayscale: false (RGB images)"
        out.append(error(f"models.{mname}.in_channels: {channels}, but corpora.{cname}.ingest.{what}; "
                         f"set in_channels: {want}" + (", or grayscale: false for a 3-channel architecture" if ing.grayscale else "")))
    return out


def used_models(cname: str, c: CorpusParams) -> Iterator[tuple[str, str]]:
    """(key path, model name) of every model a corpus's sections name."""
    base = f"corpora.{cname}"
    yield from ((f"{base}.score.models.{a}", m) for a, m in c.score.models.items())
    yield from ((f"{base}.score.observers[{i}]", m) for i, m in enumerate(c.score.observers or ()))
    if c.enhance.model:
        yield f"{base}.enhance.model", c.enhance.model
    for key in ("compare_guides", "observers"):
        yield from ((f"{base}.enhance.{key}[{i}]", m) for i, m in enumerate(getattr(c.enhance, key)))
    yield from ((f"{base}.metamers.generators[{i}]", m) for i, m in enumerate(c.metamers.generators))
    yield from ((f"{base}.metamers.judges[{i}]", m) for i, m in enumerate(c.metamers.judges or ()))


def corpus_models(params: Params, corpus: str) -> list[str]:
    """Every model a corpus's sections name, then the models trained on it, each once (stable order)."""
    names = [m for _, m in used_models(corpus, params.corpus(corpus))]
    names += [n for n, m in params.models.items() if m.corpus == corpus]
    return list(dict.fromkeys(names))


def _foreign_models(p: Params, cname: str, c: CorpusParams) -> Iterator[Finding]:
    """A corpus may only use models built for it: dvc.yaml orders and rebuilds by data/<c>/models."""
    for where, name in used_models(cname, c):
        home = p.model(name).corpus
        if home != cname:
            yield error(f"{where}: model {name!r} is built for corpus {home!r} (models.{name}.corpus), not "
                        f"{cname!r}; add a model with corpus: {cname} (a checkpoint import of the same weights)")


def _curricula_without_guide(cname: str, c: CorpusParams) -> Iterator[Finding]:
    """Curricula that show enhanced images need an enhance guide."""
    if c.enhance.model:
        return
    for name, cur in c.curricula.items():
        budgets = sorted({b.budget for b in expand_blocks(cur, f"corpora.{cname}.curricula.{name}")} - {0.0})
        if budgets:
            yield error(f"corpora.{cname}.curricula.{name}: shows enhanced images (budgets "
                        f"{', '.join(f'{b:g}' for b in budgets)}) but corpora.{cname}.enhance.model is not set")


def min_pool(trials: int, easiest: float) -> int:
    """The smallest pool whose easiest ``easiest`` fraction (Python's round) holds ``trials`` images."""
    n = trials
    while round(n * easiest) < trials:
        n += 1
    return n


def class_needs(blocks: Sequence[BlockParams]) -> tuple[int, int]:
    """Images of each class a curriculum needs in (its train split, its test split).

    Test and set-aside blocks draw distinct images; the curriculum blocks then need the larger of
    every random block's trials together and the pool whose easiest fraction holds a selecting
    block's trials (docs/methods.md, "Curricula"). An estimate: duplicates and unreadable images
    found by ingest come off the counts.
    """
    test = sum(b.trials_per_class for b in blocks if b.phase == "test")
    aside = sum(b.trials_per_class for b in blocks if b.phase == "train" and b.set_aside)
    curriculum = [b for b in blocks if b.phase == "train" and not b.set_aside]
    random = sum(b.trials_per_class for b in curriculum if b.easiest is None)
    selecting = [min_pool(b.trials_per_class, b.easiest) for b in curriculum if b.easiest is not None]
    return aside + max([random, *selecting]), test
