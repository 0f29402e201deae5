"""The ``export`` stage: ``data/<corpus>/hub/`` becomes the exact Hugging Face dataset repository.

No loading script: Parquet shards per config and split (:mod:`~lwise_build.hub.configs`), a README
dataset card (:mod:`~lwise_build.hub.card`), ``CITATION.cff``, the build's figures and ``provenance.json`` (package and
library versions, dvc.lock hashes, params, model hashes, sha256 of every file; ``publish`` adds
the git commit). The folder depends only on the inputs and params, never on the git state.
Every config is loaded back with ``datasets.load_dataset`` before the folder replaces the old one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config.checks import corpus_models
from ...config.schema import to_plain
from ...errors import UserError
from ...hub import card, croissant
from ...hub.citation import DatasetCitation, validate_cff
from ...hub.configs import (
    ConfigInfo,
    Encoder,
    enhanced_tables,
    image_lookup,
    write_curricula,
    write_default,
    write_passthrough,
    write_responses,
)
from ...hub.pairs import write_pairs
from ...hub.provenance import data_digest, data_hashes, write_provenance
from ...io.images import png_to_jpeg
from ...io.paths import budget_dir, details_path, model_dir, public_path, stage_dir
from ...io.psychds import data_file
from ...io.staging import write_json
from ...io.tables import class_names, has_table, read_table
from ...models.cfg import CONFIG_FILE, read_config
from ..base import Stage
from ..registry import SPECS
from .spec import SPEC

#: The stages whose figures (plots/<stage>/*.png) the dataset carries, in pipeline order.
FIGURE_STAGES = tuple(s.name for s in SPECS if s.draws_figures)
#: The stage reports the datasheet quotes (metrics/details/<stage>.json; dvc.yaml lists them).
DETAIL_STAGES = ("ingest", "score")


@dataclass
class Inputs:
    """The stage outputs export reads; optional ones are None (or empty) when not built."""

    images: Path
    scores: Path | None
    enhanced: dict[float, Path]
    curricula: Path | None
    metamers: Path | None
    plots: Path
    experiment: Path | None = None  # a built experiment folder (its manifest.json)
    calibration: dict[str, Any] | None = None  # analysis/calibration.json
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> metrics/details/<stage>.json
    responses: Path | None = None  # analysis/psychds's data file (export.responses: true)

    @classmethod
    def locate(cls, corpus: str, responses: bool = False) -> Inputs:
        images = stage_dir(corpus, "images")
        if not has_table(images):
            raise UserError(f"{images}: no images table; run `lwise-build ingest {corpus}` first")
        opt = {s: stage_dir(corpus, s) for s in ("scores", "curricula", "metamers")}
        experiment = stage_dir(corpus, "experiment")
        return cls(images=images, enhanced=enhanced_tables(stage_dir(corpus, "enhanced")),
                   plots=stage_dir(corpus, "plots"), **{k: v if has_table(v) else None for k, v in opt.items()},
                   experiment=experiment if (experiment / "manifest.json").is_file() else None,
                   calibration=read_calibration(stage_dir(corpus, "analysis") / "calibration.json"),
                   details=read_details(corpus),
                   responses=responses_file(corpus) if responses else None)


def read_details(corpus: str) -> dict[str, dict[str, Any]]:
    """The stage reports the datasheet quotes, for those stages that wrote one."""
    paths = {stage: details_path(corpus, stage) for stage in DETAIL_STAGES}
    return {s: json.loads(p.read_text(encoding="utf-8")) for s, p in paths.items() if p.is_file()}


def responses_file(corpus: str) -> Path:
    """The de-identified trial data ``analyze`` wrote (Psych-DS), for the opt-in responses config."""
    path = stage_dir(corpus, "analysis") / "psychds" / data_file(corpus)
    if not path.is_file():
        raise UserError(f"export.responses: {path} does not exist; run `lwise-build analyze {corpus} --responses DIR` "
                        "first (or set export.responses: false)")
    return path


def read_calibration(path: Path) -> dict[str, Any] | None:
    """The calibration ``analyze`` wrote (score -> predicted human accuracy), or None."""
    if not path.is_file():
        return None
    try:
        cal = json.loads(path.read_text(encoding="utf-8"))
        float(cal["slope"]), float(cal["intercept"]), str(cal["score"])
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a calibration (score, slope, intercept); rerun `lwise-build analyze`") from None
    return cal


def copy_experiment(folder: Path | None, root: Path) -> list[str]:
    """The built experiment into ``experiment/`` (a downloadable artefact, not a config)."""
    if folder is None:
        return []
    shutil.copytree(folder, root / "experiment")
    return sorted(p.relative_to(root).as_posix() for p in (root / "experiment").rglob("*") if p.is_file())


def build_configs(inputs: Inputs, root: Path, max_bytes: int, encode: Encoder = None,
                  pairs: list[float] | None = None) -> list[ConfigInfo]:
    """Write every config whose input exists: default, enhanced-<b>, pairs-<b>, curriculum-<name>, metamers,
    and the opt-in responses.

    ``encode`` re-encodes the stimuli (enhanced and curriculum images); the default config (the
    canonical images every number refers to) and the metamers stay lossless PNG. ``pairs``: the
    budgets with a pairs config (None: every built budget).
    """
    names = class_names(inputs.images)
    configs = [write_default(inputs.images, inputs.scores, root, max_bytes, inputs.calibration)]
    for budget, folder in inputs.enhanced.items():
        configs.append(write_passthrough(folder, f"enhanced-{budget:g}", "enhanced", budget, names, root, max_bytes,
                                         encode=encode))
    for budget in pair_budgets(pairs, list(inputs.enhanced)):
        configs.append(write_pairs(inputs.images, inputs.enhanced[budget], budget, names, root, max_bytes, encode))
    if inputs.curricula is not None:
        configs += write_curricula(inputs.curricula, inputs.images, inputs.enhanced, names, root, max_bytes, encode)
    if inputs.metamers is not None:
        refs = set(read_table(inputs.metamers, columns=["reference_id"]).column("reference_id").to_pylist())
        found = image_lookup(inputs.images, refs)
        extra = {"reference": lambda row: found.get(row["reference_id"])}
        configs.append(write_passthrough(inputs.metamers, "metamers", "metamers", None, names, root,
                                         max_bytes, split_column=None, extra=extra))
    if inputs.responses is not None:
        configs.append(write_responses(inputs.responses, root, max_bytes))
    return [c for c in configs if c.total > 0]


def pair_budgets(wanted: list[float] | None, built: list[float]) -> list[float]:
    """The budgets that get a ``pairs-<b>`` config: ``export.pairs``, or every built budget."""
    if wanted is None:
        return built
    missing = [b for b in wanted if float(b) not in built]
    if missing:
        raise UserError(f"export.pairs: budget {missing[0]:g} has no enhanced/{budget_dir(missing[0])} table (built: "
                        f"{', '.join(f'{b:g}' for b in built) or 'none'}); add it to enhance.budgets or drop it")
    return sorted({float(b) for b in wanted})


def copy_figures(plots: Path, root: Path) -> list[str]:
    """The stages' PNG figures into ``figures/<stage>/``; returns their paths in the folder."""
    out = []
    for stage in FIGURE_STAGES:
        for png in sorted((plots / stage).glob("*.png")) if (plots / stage).is_dir() else []:
            target = root / "figures" / stage / png.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, target)
            out.append(target.relative_to(root).as_posix())
    return out


# ---------------------------------------------------------------- models and methods -----------
def model_records(params: Any, corpus: str) -> dict[str, dict[str, Any]]:
    """name -> arch, weights sha256 (from the built folder's config.json) and training recipe."""
    out = {}
    for name in corpus_models(params, corpus):
        folder = model_dir(params.model(name).corpus, name)
        cfg = read_config(folder) if (folder / CONFIG_FILE).is_file() else {}
        spec = params.model(name)
        out[name] = {"arch": cfg.get("arch", spec.arch), "sha256": cfg.get("sha256"), "built_with": cfg.get("built_with"),
                     "checkpoint": spec.checkpoint and public_path(spec.checkpoint), "train": to_plain(spec.train)}
    return out


def methods_used(models: dict[str, dict[str, Any]], configs: list[ConfigInfo]) -> tuple[str, ...]:
    """Keys of :data:`citation.METHODS` this build relies on."""
    trains = [m["train"] or {} for m in models.values()]
    methods = ["lwise"]
    if any(t.get("adversarial") for t in trains):
        methods.append("madry2018")
    if any(c.kind == "metamers" for c in configs):
        methods.append("feather2023")
    if any(t.get("blur") for t in trains):
        methods.append("jang2024")
    return tuple(methods)


# ---------------------------------------------------------------- verification -----------------
def verify_loads(root: Path, configs: list[ConfigInfo]) -> None:
    """Load every config with ``datasets.load_dataset`` (fresh cache); fail naming the config."""
    import datasets
    from datasets.utils.tqdm import are_progress_bars_disabled

    quiet = are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        with tempfile.TemporaryDirectory(prefix="lwise-export-check-") as cache:
            for cfg in configs:
                _verify_one(datasets, root, cfg, cache)
    finally:
        if not quiet:
            datasets.enable_progress_bars()


def _verify_one(datasets: Any, root: Path, cfg: ConfigInfo, cache: str) -> None:
    try:
        ds = datasets.load_dataset(str(root), cfg.name, cache_dir=cache)
    except Exception as exc:  # noqa: BLE001 - any failure means the config does not load
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"export: config {cfg.name!r} does not load with datasets.load_dataset: {first}") from None
    got = {s: ds[s].num_rows for s in ds}
    if got != cfg.rows:
        raise UserError(f"export: config {cfg.name!r} loads {got} rows per split, expected {cfg.rows}")
    for split in ds:
        if ds[split].features != cfg.features:
            raise UserError(f"export: config {cfg.name!r} split {split!r} loads with different features")


# ---------------------------------------------------------------- the stage --------------------
class Export(Stage, spec=SPEC):
    """``lwise-build export <corpus>``: the Hub folder; the old one stays until the new one loads."""

    def prepare(self) -> None:
        self.inputs = Inputs.locate(self.ctx.corpus, self.p.responses)

    def write(self, tmp: Path) -> None:
        params, corpus, ep = self.ctx.params, self.ctx.corpus, self.p
        encode = (lambda png: png_to_jpeg(png, ep.jpeg_quality)) if ep.stimulus_format == "jpeg" else None
        self.configs = build_configs(self.inputs, tmp, ep.max_shard_mb * 1_000_000, encode, ep.pairs)
        figures = copy_figures(self.inputs.plots, tmp)
        artefacts = {"experiment": copy_experiment(self.inputs.experiment, tmp),
                     "calibration": copy_calibration(self.inputs.calibration, tmp)}
        artefacts = {k: v for k, v in artefacts.items() if v}
        models = model_records(params, corpus)
        build: dict[str, Any] = {}  # the git state goes in at publish time: this folder does not depend on it
        hashes = data_hashes(tmp)  # the content; the documents written below describe it
        meta = DatasetCitation(
            title=ep.pretty_name or f"{corpus} (lwise-build)", version=ep.version, repo_id=ep.repo_id,
            authors=tuple(ep.authors), license=ep.license, date=str(ep.date) if ep.date else None,
            doi=ep.doi, methods=methods_used(models, self.configs), keywords=tuple(ep.tags),
            data_sha256=data_digest(hashes),
        )
        ctx = card.CardContext(params=params, corpus=corpus, configs=self.configs, figures=figures,
                               models=models, meta=meta, build=build, calibration=self.inputs.calibration,
                               experiment=_manifest(self.inputs.experiment), details=self.inputs.details)
        self.record_sets = croissant.validate(croissant.write(tmp, croissant.document(ctx, hashes, meta.data_sha256)))
        (tmp / "README.md").write_text(card.render(ctx), encoding="utf-8")
        write_citation(tmp, meta, corpus)
        write_provenance(tmp, params, corpus, self.configs, models, meta, build, artefacts, known=hashes)
        verify_loads(tmp, self.configs)

    def summary(self) -> str:
        rows = sum(c.total for c in self.configs)
        extra = " and the experiment folder" if self.inputs.experiment is not None else ""
        repo = self.p.repo_id or "no export.repo_id (set it to publish)"
        return (f"{len(self.configs)} configs ({', '.join(c.name for c in self.configs)}), {rows} rows{extra}, "
                f"croissant.json ({self.record_sets} record sets, mlcroissant-validated), for {repo} v{self.p.version}")


def write_citation(root: Path, meta: DatasetCitation, corpus: str) -> None:
    """``CITATION.cff``, checked against the CFF 1.2.0 schema before it is written."""
    text = meta.cff()
    try:
        validate_cff(text)
    except UserError as exc:
        raise UserError(f"export: {exc}; check corpora.{corpus}.export (authors, doi, date, license)") from None
    (root / "CITATION.cff").write_text(text, encoding="utf-8")


def copy_calibration(calibration: dict[str, Any] | None, root: Path) -> list[str]:
    """The calibration behind ``predicted_accuracy`` as ``analysis/calibration.json``."""
    if calibration is None:
        return []
    write_json(root / "analysis" / "calibration.json", calibration)
    return ["analysis/calibration.json"]


def _manifest(folder: Path | None) -> dict[str, Any] | None:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8")) if folder is not None else None
