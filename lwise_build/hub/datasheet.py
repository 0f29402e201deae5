"""The card's datasheet: the seven sections of "Datasheets for Datasets" (Gebru et al., CACM 2021).

Filled from the params, the configs, the models and the build's own reports (ingest's bad-input
counts, score's recognisability figures, the calibration when ``analyze`` has run); what only the
authors know (``export.authors`` and ``export.datasheet``) is marked where it is missing, and
``lwise-build check`` lists it before ``publish``. :func:`rai` gives croissant.json's
responsible-AI fields from the same facts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config.datasheet import source_facts, unwritten
from ..io.paths import public_source

if TYPE_CHECKING:
    from .card_context import CardContext

#: How the card marks a part only the authors can write.
MARK = "**[to be written by the authors]**"
TITLES = ("Motivation", "Composition", "Collection process", "Preprocessing, cleaning and labelling", "Uses",
          "Distribution", "Maintenance")


def sections(ctx: CardContext) -> list[tuple[str, list[str]]]:
    """(title, bullet lines) for each of the seven sections, in the paper's order."""
    parts = (_motivation, _composition, _collection, _preprocessing, _uses, _distribution, _maintenance)
    return [(title, part(ctx)) for title, part in zip(TITLES, parts, strict=True)]


def render(ctx: CardContext) -> list[str]:
    """The card's ``## Datasheet`` section (markdown lines)."""
    gaps = gaps_of(ctx)
    out = ["## Datasheet\n",
           "After \"Datasheets for Datasets\" (Gebru et al., Communications of the ACM 64(12), 2021). Filled in by "
           "lwise-build from the params, the models and the build's reports"
           + (f"; {MARK} marks what only the authors can write ({', '.join(f'`{g}`' for g in gaps)} under "
              f"`corpora.{ctx.corpus}.export`).\n" if gaps else ".\n")]
    for title, lines in sections(ctx):
        out += [f"### {title}\n", *(f"- {line}" for line in lines), ""]
    return out


def gaps_of(ctx: CardContext) -> list[str]:
    c = ctx.params.corpus(ctx.corpus)
    return unwritten(c.ingest.source, c.export.datasheet, c.export.authors)


def _given(ctx: CardContext, key: str, what: str) -> str:
    return _fact(getattr(ctx.params.corpus(ctx.corpus).export.datasheet, key), key, what)


def _fact(value: str | None, key: str, what: str) -> str:
    """The text as a clause (no final full stop), or the mark naming the key to set."""
    return value.strip().rstrip(".") if value else f"{MARK} `export.datasheet.{key}`: {what}"


def _kinds(ctx: CardContext) -> set[str]:
    return {cfg.kind for cfg in ctx.configs}


def _default_rows(ctx: CardContext) -> dict[str, int]:
    """Rows of ``default`` per split, in split order (train, validation, test, others)."""
    cfg = next(cfg for cfg in ctx.configs if cfg.name == "default")
    return {s: cfg.rows[s] for s in cfg.splits()}


def _and(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


# ---------------------------------------------------------------- the sections -----------------
def _motivation(ctx: CardContext) -> list[str]:
    e = ctx.params.corpus(ctx.corpus).export
    authors = "; ".join(e.authors) if e.authors else f"{MARK} `export.authors`: the people or lab who made it"
    return [f"Purpose: {_given(ctx, 'motivation', 'the study or question this version serves')}. lwise-build "
            "builds model-guided stimuli for human visual-learning and perception research (L-WISE, Talbot "
            "et al., ICLR 2025).",
            f"Created by: {authors}.",
            f"Funding: {_given(ctx, 'funding', 'who funded the work, with grant numbers')}."]


def _composition(ctx: CardContext) -> list[str]:
    c = ctx.params.corpus(ctx.corpus)
    rows = _default_rows(ctx)
    names = next(cfg.features["label"].names for cfg in ctx.configs if cfg.name == "default")
    splits = ", ".join(f"{s} {n}" for s, n in rows.items())
    out = [f"Instances: {sum(rows.values())} images of {len(names)} classes at {c.ingest.image_size} px "
           f"({'grayscale' if c.ingest.grayscale else 'RGB'}, PNG); splits: {splits}.{_per_class(ctx)}",
           "Labels: one class per image, the source's own; the difficulty, prediction and margin columns are "
           "machine annotations by the models under 'How it was made'. `id` (a hash of the canonical image) "
           "joins every config.",
           _split_rule(ctx), *_derived(ctx),
           f"Personal or sensitive data: {_personal(ctx)}."]
    return out


def _per_class(ctx: CardContext) -> str:
    counts = (ctx.details.get("ingest") or {}).get("counts") or {}
    totals = {label: sum(per.values()) for label, per in counts.items()}
    if not totals:
        return ""
    few, many = min(totals, key=totals.get), max(totals, key=totals.get)
    return f" Images per class: {totals[few]} (`{few}`) to {totals[many]} (`{many}`)."


def _split_rule(ctx: CardContext) -> str:
    s, seed = ctx.params.corpus(ctx.corpus).ingest.splits, ctx.params.seed
    group = f", no `{s.group_by}` group in two splits" if s.group_by else ""
    return (f"Splits: the source's own where it gives them, else a seeded split per class (train {s.train:g}, "
            f"validation {s.validation:g}, test {s.test:g}, seed {seed}{group}); curricula draw learning and test "
            "images from their own splits only.")


def _derived(ctx: CardContext) -> list[str]:
    c, kinds, out = ctx.params.corpus(ctx.corpus), _kinds(ctx), []
    if "enhanced" in kinds:
        budgets = ", ".join(f"{cfg.key:g}" for cfg in ctx.configs if cfg.kind == "enhanced")
        pairs = " (`pairs-<budget>` shows each next to its original)" if "pairs" in kinds else ""
        out.append(f"Modified images: `enhanced-<budget>`: the {_and(list(c.enhance.splits))} images perturbed "
                   f"towards their true class by the model `{c.enhance.model}` within {c.enhance.norm.upper()} "
                   f"budgets {budgets}{pairs}; the curricula show them as participants see them.")
    if "metamers" in kinds:
        n = next(cfg.total for cfg in ctx.configs if cfg.kind == "metamers")
        out.append(f"Synthetic images: `metamers`: {n} images synthesised from noise to match the activations "
                   f"of {', '.join(f'`{g}`' for g in c.metamers.generators)} on `{c.metamers.split}` references.")
    if "responses" in kinds:
        out.append("Human data: `responses`, the de-identified trial data of the experiment's participants.")
    return out


def _personal(ctx: CardContext) -> str:
    c = ctx.params.corpus(ctx.corpus)
    facts = source_facts(c.ingest.source, c.export.datasheet)
    images = _fact(facts.personal_data, "personal_data", "whether the images show or identify people, and how "
                   "that was handled")
    people = ("; participants' responses are de-identified (no names, contact details or platform ids)"
              if "responses" in _kinds(ctx) else "; no data about participants is included")
    return f"images: {images}{people}"


def _collection(ctx: CardContext) -> list[str]:
    c = ctx.params.corpus(ctx.corpus)
    facts = source_facts(c.ingest.source, c.export.datasheet)
    where = _fact(facts.description, "source_description", "who made or collected the source images, when and how")
    licence = _fact(facts.license, "source_license", "the source images' licence")
    url = f" ({facts.url})" if facts.url else ""
    return [f"Source: `{public_source(c.ingest.source)}`{url}: {where}.", f"Source licence: {licence}.",
            f"Models: {_model_origin(ctx)}. Everything else is computed from the images by the build, with the "
            "params, seeds and model hashes in `provenance.json`; no image was newly collected.",
            f"Human data: {_human(ctx)}.",
            f"Ethics review: {_given(ctx, 'ethics_review', 'the review board and protocol, or why none was needed')}.",
            f"Timeframe: built for version {ctx.meta.version}"
            + (f", released {ctx.meta.date}." if ctx.meta.date else "; `publish` records the release date.")]


def _model_origin(ctx: CardContext) -> str:
    trained = [n for n, m in ctx.models.items() if m.get("train")]
    imported = [n for n, m in ctx.models.items() if m.get("checkpoint") and not m.get("train")]
    parts = [f"trained by the build on this corpus's train split: {', '.join(f'`{n}`' for n in trained)}"] if trained else []
    parts += [f"imported checkpoints: {', '.join(f'`{n}`' for n in imported)}"] if imported else []
    return "; ".join(parts) or "none"


def _human(ctx: CardContext) -> str:
    cal, responses = ctx.calibration, [cfg for cfg in ctx.configs if cfg.kind == "responses"]
    if responses:
        return (f"`responses` holds {responses[0].total} de-identified trials of the experiment's participants"
                + (f"; {cal['trials']} test trials calibrate `predicted_accuracy`" if cal else ""))
    if cal:
        return (f"{cal['trials']} test trials of {cal['participants']} participants calibrate `predicted_accuracy` "
                f"(responses sha256 `{cal['responses_sha256']}`)")
    if ctx.experiment:
        return "none collected for this version; `experiment/` is a ready-to-run experiment for collecting it"
    return "none collected for this version"


def _preprocessing(ctx: CardContext) -> list[str]:
    c = ctx.params.corpus(ctx.corpus)
    mode = "L (grayscale)" if c.ingest.grayscale else "RGB"
    return [f"Canonical images: decoded, EXIF-oriented, converted to {mode}, resized (shorter side) and "
            f"centre-cropped to {c.ingest.image_size} px, stored as PNG; every model-derived column refers to "
            "these pixels.", f"Cleaning: {_cleaning(ctx)}.",
            "Labelling: none beyond the source's labels; the scores and predictions are computed by the models.",
            "Raw data: the source files are not redistributed here; `ingest.source` in `provenance.json` names "
            "them, and the same source and params rebuild these bytes (`dvc repro`)."]


def _cleaning(ctx: CardContext) -> str:
    d = ctx.details.get("ingest")
    if not d:
        return "not recorded in this build (no ingest report)"
    reasons = ", ".join(f"{n} {r}" for r, n in sorted((d.get("skipped_by_reason") or {}).items()))
    return (f"of {d['inputs']} source files, {d['skipped']} were unreadable and skipped"
            + (f" ({reasons})" if reasons else "") + f" and {d['duplicates_removed']} exact duplicates dropped")


def _uses(ctx: CardContext) -> list[str]:
    return [f"Intended uses: {'; '.join(intended_uses(ctx))}.", *limitations(ctx),
            "Out of scope: decisions about individuals, and diagnosis from medical images; the difficulty "
            "scores rank images for a model, they do not measure any person's ability."]


def intended_uses(ctx: CardContext) -> list[str]:
    kinds = _kinds(ctx)
    out = ["comparing model difficulty with human recognition (`default`)"]
    if "curriculum" in kinds:
        out.append("human category-learning experiments with model-guided curricula (`curriculum-*`"
                   + (", `experiment/`)" if ctx.experiment else ")"))
    if "enhanced" in kinds:
        out.append("studying model-guided image enhancement (`enhanced-*`" + (", `pairs-*`)" if "pairs" in kinds else ")"))
    if "metamers" in kinds:
        out.append("testing models' invariances with metamers (`metamers`)")
    return out


def limitations(ctx: CardContext) -> list[str]:
    """Known biases and limits: a model's difficulty is not a human's (and how far it agrees)."""
    return [f"Limitation: difficulty here is a model's, the ground-truth logit of each scoring model; a robust "
            f"model's difficulty predicts human recognition only as far as measured: {_agreement(ctx)}.",
            "Bias: the images, classes and label noise are the source's; enhancement and metamers follow one "
            "model's gradients and carry that model's biases, which need not help or fool humans equally for "
            "every class."]


def _agreement(ctx: CardContext) -> str:
    cal = ctx.calibration
    if cal and cal.get("lr_auc_cv") is not None:
        return (f"calibrated against human responses ('Calibrated difficulty': ROC-AUC {cal['lr_auc_cv']:.3f} "
                f"cross-validated, `{cal['score']}`)")
    score = ctx.details.get("score") or {}
    basis, rec = score.get("basis"), score.get("recognisability") or {}
    aucs = []
    for alias in score.get("models") or {}:
        g = (rec.get(alias) or {}).get("gt_logit") or {}
        auc = (g if basis == "humans" else g.get("vs_observer_accuracy") or {}).get("auc")
        aucs.append(f"`{alias}` {auc:.3f}" if auc is not None else f"`{alias}` undefined")
    if not aucs or basis in (None, "none"):
        return "not measured in this build: run the experiment and `lwise-build analyze` to calibrate it"
    who = "human accuracy in the source" if basis == "humans" else "other models' correctness (observers), not humans"
    return (f"ROC-AUC of the gt logit for {who}: {', '.join(aucs)} (`metrics/details/score.json`); no human "
            "calibration in this version (`lwise-build analyze` adds one)")


def _distribution(ctx: CardContext) -> list[str]:
    e = ctx.params.corpus(ctx.corpus).export
    where = f"the Hugging Face Hub, `{ctx.meta.repo_id}`" if ctx.meta.repo_id else f"{MARK} `export.repo_id`"
    doi = f"DOI {ctx.meta.doi}" if ctx.meta.doi else "no DOI yet (README: 'Publish a version', Zenodo)"
    return [f"Where: {where}, tag `v{ctx.meta.version}` (never moved); {doi}.",
            f"Licence: `{e.license}` for this dataset; the source's terms also apply ('Collection process').",
            "Metadata: this card, `CITATION.cff`, `croissant.json` (Croissant 1.1 with responsible-AI fields) and "
            "`provenance.json` (the sha256 of every file)."]


def _maintenance(ctx: CardContext) -> list[str]:
    return [f"Contact: {_given(ctx, 'contact', 'who maintains the dataset and how to reach them')}.",
            "Versions: each is a tag that is never moved; corrections come as a new version (a new "
            "`export.version`), older versions stay loadable by their tag and verifiable with `lwise-build pull`."]


# ---------------------------------------------------------------- croissant.json ---------------
def rai(ctx: CardContext) -> dict[str, Any]:
    """croissant.json's responsible-AI fields (Croissant RAI 1.0), from the same facts as the datasheet."""
    by_title = dict(sections(ctx))
    out = {
        "rai:dataCollection": " ".join(by_title['Collection process']),
        "rai:dataCollectionType": ["Secondary Data analysis", "Software Collection"]
        + (["Experiments"] if "responses" in _kinds(ctx) else []),
        "rai:dataCollectionRawData": by_title['Collection process'][0] + " " + by_title['Collection process'][1],
        "rai:dataPreprocessingProtocol": by_title["Preprocessing, cleaning and labelling"],
        "rai:dataManipulationProtocol": " ".join(_derived(ctx)) or "none: the images are the canonical source images",
        "rai:dataAnnotationProtocol": by_title["Preprocessing, cleaning and labelling"][2],
        "rai:machineAnnotationTools": [f"{n}: {m['arch']}, weights sha256 {m['sha256'] or 'not built'}"
                                       for n, m in ctx.models.items()],
        "rai:dataBiases": [limitations(ctx)[1]],
        "rai:dataLimitations": [limitations(ctx)[0]],
        "rai:dataUseCases": intended_uses(ctx),
        "rai:personalSensitiveInformation": [_personal(ctx)],
        "rai:dataReleaseMaintenancePlan": " ".join(by_title["Maintenance"]),
    }
    return {k: _plain(v) for k, v in out.items()}


def _plain(value: Any) -> Any:
    """Markdown bold and code marks dropped (croissant.json holds plain text)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.replace("**", "").replace("`", "")
