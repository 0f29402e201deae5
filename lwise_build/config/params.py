"""The typed ``params.yaml``: one frozen dataclass per section, validated before any work starts.

Layout: global ``seed``/``device``; ``models`` (name -> model); ``corpora`` (name -> corpus, each
with one section per stage: ``ingest``, ``score``, ``enhance``, ``curricula``, ``metamers``,
``export``, ``report``, ``experiment``, ``analysis``). DVC stages depend on exactly the section they read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from ..errors import UserError
from .analysis import AnalysisParams
from .constants import FIXED_BATCH_DOC, NORMS, OBJECTIVES, SOURCE_SCHEMES, fixed_batch, image_side
from .datasheet import DatasheetParams
from .executor import ExecutorParams
from .experiment import ExperimentParams
from .model_params import ModelParams
from .schema import each, fraction, non_negative, param, positive


# ---------------------------------------------------------------- models ---------------------
@dataclass(frozen=True)
class SplitParams:
    """Seeded split for sources that do not carry their own: each image's (or group's) own draw,
    so adding images never moves an old one (docs/methods.md, "Splits")."""

    train: float = param(0.7, check=fraction, doc="expected fraction of each class in the train split")
    validation: float = param(0.15, check=fraction, doc="fraction in the validation split")
    test: float = param(0.15, check=fraction, doc="fraction in the test split")
    group_by: str | None = param(None, doc="metadata column whose groups never span two splits")

    def validate(self, path: str) -> None:
        if abs(self.train + self.validation + self.test - 1) > 1e-6:
            total = self.train + self.validation + self.test
            raise UserError(f"{path}: train + validation + test must sum to 1, got {total:g}")


@dataclass(frozen=True)
class IngestParams:
    """Where images come from and how they are canonicalised."""

    source: str = param(doc="`builtin:digits`, `imagefolder:<dir>`, `manifest:<csv or parquet>` or `hf:<id>`")
    image_size: int = param(224, check=image_side, doc="side of the square canonical images (resize, centre crop), at most 4096")
    grayscale: bool = param(False, doc="store single-channel (L) images instead of RGB")
    splits: SplitParams = param(SplitParams(), doc="seeded split when the source has none")
    image_column: str = param("image", doc="manifest/hf: the image (or path) column")
    label_column: str = param("label", doc="manifest/hf: the class label column")
    split_column: str = param("split", doc="manifest/hf: the optional split column (train/val/test)")
    hf_split: str | None = param(None, doc="hf: load only this split of the dataset")
    hf_revision: str | None = param(None, doc="hf: the dataset revision (tag, branch or commit) to use")
    max_bad_fraction: float = param(0.01, check=fraction, doc="fail when more of the inputs are unreadable")
    min_per_class: int = param(1, check=positive, doc="fail when a class has fewer usable images")
    shard_mb: int = param(256, check=positive, doc="target Parquet shard size")
    workers: int = param(0, check=non_negative, doc="decoding processes; 0 = all cores")

    def validate(self, path: str) -> None:
        scheme, _, rest = self.source.partition(":")
        if scheme not in SOURCE_SCHEMES or not rest:
            raise UserError(
                f"{path}.source: must be one of {', '.join(s + ':...' for s in SOURCE_SCHEMES)},"
                f" got {self.source!r}"
            )


@dataclass(frozen=True)
class ScoreParams:
    """Difficulty columns: alias -> model; observers judge recognisability."""

    models: dict[str, str] = param({}, doc="score alias -> model name; each alias gets `<alias>_gt_logit`, ... columns")
    observers: list[str] | None = param(None, doc="model names; default: the other scored models")
    target_column: str | None = param(None, doc="metadata column with the model class to score")
    class_map: dict[str, str] = param({}, doc="corpus label -> model class name")
    batch_size: int = param(256, check=fixed_batch, doc="images per forward pass; " + FIXED_BATCH_DOC)
    heldout_splits: list[str] = param(["validation", "test"], doc="splits where observers judge")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = param(
        "auto", doc="CUDA autocast; auto = bf16 (fp16 without bf16 support); CPU always runs fp32")
    decode_workers: int | None = param(
        None, check=non_negative, doc="PNG decoding processes; None = auto (up to 8 on CUDA, else 0);"
        " 0 = one background thread")

    def validate(self, path: str) -> None:
        for alias in self.models:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", alias):
                raise UserError(f"{path}.models.{alias}: alias must be a Python identifier")


@dataclass(frozen=True)
class EnhanceParams:
    """L2/Linf gradient steps towards the true class at fixed budgets."""

    model: str | None = param(None, doc="the guide model; None disables enhancement")
    objective: Literal[OBJECTIVES] = param("logit", doc="what the steps increase: z_gt, z_gt - mean z_other, or -CE")  # type: ignore[valid-type]
    diverge_from: list[str] | None = param(None, doc="classes for logit_diverge; default the corpus's other classes")
    norm: Literal[NORMS] = param("l2", doc="budget norm")  # type: ignore[valid-type]
    step_size: float = param(0.5, check=positive, doc="size of each normalised gradient step")
    steps: int | None = param(None, check=positive, doc="default max(1, round(eps / step_size))")
    budgets: list[float] = param([], check=each(positive), doc="budgets eps to build (curricula may show only these); the presets' default needs 8, 4, 2, 1, 0.5, 0.25")
    splits: list[str] = param(["train", "validation", "test"], doc="splits whose images are enhanced")
    batch_size: int = param(128, check=fixed_batch, doc="images per batch; " + FIXED_BATCH_DOC)
    compare_guides: list[str] = param([], doc="extra guides measured in the metrics only")
    observers: list[str] = param([], doc="models that judge the enhanced images in the metrics")
    metrics_sample: int = param(300, check=positive, doc="images per split used for the metrics")
    grid_images: int = param(8, check=positive, doc="example rows in plots/enhance/grid.png")


@dataclass(frozen=True)
class BlockParams:
    """One block of a curriculum."""

    phase: Literal["train", "test"] = param("train", doc="learning block or test block")
    trials_per_class: int = param(4, check=positive, doc="trials of each class in the block")
    easiest: float | None = param(None, check=fraction, doc="rank fraction; None = random")
    budget: float = param(0.0, check=non_negative, doc="enhancement budget of the images shown (0 = natural)")
    feedback: bool | None = param(None, doc="default: true in train, false in test")
    set_aside: bool = param(False, doc="natural images drawn first, never enhanced")

    def validate(self, path: str) -> None:
        natural = self.set_aside or self.phase == "test"
        what = "set-aside" if self.set_aside else "test"
        if natural and self.budget:
            raise UserError(f"{path}.budget: {what} blocks show natural images (budget 0), got {self.budget:g}")
        if natural and self.easiest is not None:
            raise UserError(f"{path}.easiest: {what} blocks are drawn uniformly at random (omit easiest)")


@dataclass(frozen=True)
class CurriculumParams:
    """A curriculum: a preset (with its budget taper) or explicit blocks."""

    preset: Literal[
        "lwise", "control", "selection_only", "enhancement_only", "lwise_shuffled",
        "selection_only_shuffled", "enhancement_only_shuffled", "custom",
    ] = param("custom", doc="a published condition (10 blocks) or custom `blocks`")
    budgets: list[float] = param([], check=each(non_negative), doc="enhancing presets: exactly 6, one per curriculum block; default [8, 4, 2, 1, 0.5, 0.25]")
    blocks: list[BlockParams] = param([], doc="custom preset: the blocks in order")
    train_trials_per_class: int = param(4, check=positive, doc="presets: trials per class in each training block")
    test_trials_per_class: int = param(5, check=positive, doc="presets: trials per class in each test block")
    train_split: str = param("train", doc="split the training blocks draw from")
    test_split: str = param("test", doc="split the test blocks draw from")
    sequences: int = param(4, check=positive, doc="participant sequences (one seeded draw each)")
    seed: int = param(0, doc="seed of this curriculum's draws (with the global seed)")
    shuffle: bool = param(False, doc="pool the curriculum blocks' trials and redistribute them")
    difficulty: str | None = param(None, doc="score alias ranking difficulty; default the first")
    weight: int = param(1, check=positive, doc="condition slots in participant assignment "
                        "(the published moth and HAM10000 designs give control 2 of 7)")


@dataclass(frozen=True)
class MetamerParams:
    """Model metamers: generators x layers x references, judged by other models."""

    generators: list[str] = param([], doc="models whose metamers are synthesised; empty = none")
    layers: dict[str, list[str]] = param({}, doc="generator -> layer names; default all stages")
    judges: list[str] | None = param(None, doc="default: the generators (each judged by others)")
    per_class: int = param(2, check=positive, doc="reference images per class")
    split: str = param("test", doc="split the references come from")
    schedule: Literal["published", "fast", "test"] = param("fast", doc="step schedule: the published one, a shorter one, or a tiny one for tests")
    steps: int | None = param(None, check=positive, doc="override the schedule's total steps")
    step_size: float | None = param(None, check=positive, doc="first L2 step (default: the schedule's)")
    init_noise: float = param(0.05, check=non_negative, doc="std of the noise the synthesis starts from")
    null_split: str = param("train", doc="split whose natural images form the null pairs")
    null_pairs: int = param(10000, check=positive, doc="distinct random pairs (all pairs when fewer exist)")
    null_augment: list[Literal["hflip", "crop"]] = param([], doc="train-time augmentation of the null images")
    fake_relu: bool = param(False, doc="ReLU layers: the output ReLU's gradient is the identity")
    batch_size: int = param(64, check=fixed_batch, doc="references synthesised together; " + FIXED_BATCH_DOC)


#: A DOI as CFF 1.2.0 accepts it (its schema's ``doi`` pattern).
DOI_PATTERN = r"10\.\d{4,9}(\.\d+)?/[A-Za-z0-9:/_;\-\.\(\)\[\]\\]+"


def _jpeg_quality(v: int) -> str | None:
    return None if 1 <= v <= 100 else "must be between 1 and 100"


@dataclass(frozen=True)
class ExportParams:
    """The Hub dataset folder."""

    repo_id: str | None = param(None, doc="org/name on the Hub")
    pretty_name: str | None = param(None, doc="title of the card and citation; default `<corpus> (lwise-build)`")
    version: str = param("0.1.0", doc="dataset version; publish tags `v<version>`")
    license: str = param("cc-by-4.0", doc="Hub license id")
    tags: list[str] = param(["image-classification", "human-learning", "lwise"], doc="Hub tags and citation keywords")
    doi: str | None = param(None, doc="DOI of this dataset version, e.g. 10.57967/hf/1234")
    authors: list[str] = param([], doc='people as "Family, Given"; any other text is an organisation')
    date: str | date | None = param(None, doc="release date YYYY-MM-DD; unset: publish records the git commit date in provenance.json")
    max_shard_mb: int = param(500, check=positive, doc="largest Parquet shard of a config")
    stimulus_format: Literal["png", "jpeg"] = param(
        "png", doc="curriculum and enhanced images: lossless PNG, or JPEG as the L-WISE reference served its"
        " .jpg tasks (lossy; metrics/details/enhance.json then measures what survives)")
    jpeg_quality: int = param(75, check=_jpeg_quality, doc="JPEG quality (the reference: PIL's default, 75)")
    pairs: list[float] | None = param(
        None, check=each(non_negative),
        doc="budgets with a `pairs-<b>` config (original and enhanced image in one row); unset: every built "
            "budget, [] for none")
    datasheet: DatasheetParams = param(
        DatasheetParams(), doc="the datasheet's parts only the authors know (the card marks those left unset)")
    responses: bool = param(False, doc="add a `responses` config: analyze's de-identified trial data "
                                       "(analysis/psychds), for a release that shares the behavioural data")

    def validate(self, path: str) -> None:
        if self.repo_id is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.repo_id):
            raise UserError(f"{path}.repo_id: must be org/name, got {self.repo_id!r}")
        if isinstance(self.date, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.date):
            raise UserError(f"{path}.date: must be YYYY-MM-DD, got {self.date!r}")
        if self.doi is not None and not re.fullmatch(DOI_PATTERN, self.doi):
            raise UserError(f"{path}.doi: must be a bare DOI such as 10.5281/zenodo.1234567 (no https://doi.org/), "
                            f"got {self.doi!r}")


@dataclass(frozen=True)
class ReportParams:
    """The HTML explorer."""

    sample: int = param(200, check=positive, doc="images shown in the browser (seeded, by class)")
    metamer_sample: int = param(30, check=positive, doc="reference images in the metamer gallery")
    curriculum_sequences: int = param(
        2, check=positive, doc="sequences per curriculum whose trial images are embedded"
    )
    thumbnail_px: int = param(
        160, check=positive, doc="images in the page at most this many px on a side (larger ones as JPEG "
        "thumbnails; the full images stay in the tables)")


@dataclass(frozen=True)
class CorpusParams:
    """One corpus: a section per stage; only ``ingest`` is required (the others have defaults)."""

    ingest: IngestParams = param(doc="the source and its canonical images (ingest stage)")
    score: ScoreParams = param(ScoreParams(), doc="difficulty columns (score stage)")
    enhance: EnhanceParams = param(EnhanceParams(), doc="enhanced images (enhance stage)")
    curricula: dict[str, CurriculumParams] = param({}, doc="curriculum name -> curriculum (curriculum stage)")
    metamers: MetamerParams = param(MetamerParams(), doc="model metamers (metamers stage)")
    export: ExportParams = param(ExportParams(), doc="the Hub folder (export stage, publish)")
    report: ReportParams = param(ReportParams(), doc="the HTML explorer (report stage)")
    experiment: ExperimentParams = param(ExperimentParams(), doc="the jsPsych experiments (experiment stage)")
    analysis: AnalysisParams = param(AnalysisParams(), doc="analysis of collected results (lwise-build analyze)")
    executor: ExecutorParams | None = param(None, doc="overrides the global executor for this corpus")


@dataclass(frozen=True)
class Params:
    """The whole ``params.yaml``."""

    seed: int = param(0, doc="the seed every random choice derives from")
    device: str = param("auto", doc="auto | cpu | cuda | cuda:N | mps")
    corpora: dict[str, CorpusParams] = param({}, doc="corpus name -> corpus; each adds its stages")
    models: dict[str, ModelParams] = param({}, doc="model name -> model; each adds a train stage")
    executor: ExecutorParams = param(ExecutorParams(), doc="where the heavy stages run (local or Ray)")

    def corpus(self, name: str) -> CorpusParams:
        if name not in self.corpora:
            raise UserError(f"corpus {name!r} is not in params (known: {', '.join(self.corpora)})")
        return self.corpora[name]

    def model(self, name: str) -> ModelParams:
        if name not in self.models:
            raise UserError(f"model {name!r} is not in params (known: {', '.join(self.models)})")
        return self.models[name]


