"""The README dataset card: a YAML header the Hub and ``datasets`` read, and a body for researchers.

The header lists every config with its ``data_files`` per split and its features (ClassLabel
names); the body says what each config and column means and how it was made (models and their
hashes, budgets, objective, curriculum schedules, metamer schedule), shows the build's figures,
how to load a pinned version, and how to cite it.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..config.curricula import expand_blocks, is_shuffled
from ..config.responses import RESPONSE_COLUMNS
from ..io.paths import public_source
from . import datasheet
from .card_context import CardContext
from .card_text import COLUMNS, KIND_TEXT, SCORE_COLUMNS
from .citation import DATA_HASH_TEXT
from .configs import ConfigInfo


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    return next((label for bound, label in bounds if n < bound), "n>100M")


#: The header's keys in the order the card writes them.
HEADER_KEYS = ("pretty_name", "license", "version", "tags", "task_categories", "size_categories", "configs",
               "dataset_info")


def header(ctx: CardContext) -> dict[str, Any]:
    """The YAML metadata block (configs with data_files, dataset_info with features): a
    ``huggingface_hub.DatasetCardData`` filled by ``datasets``' own ``DatasetInfosDict``."""
    from datasets import DatasetInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    ep = ctx.params.corpus(ctx.corpus).export
    images = next((c.total for c in ctx.configs if c.name == "default"), 0)
    card = DatasetCardData(
        pretty_name=ctx.meta.title, license=ep.license, version=ctx.meta.version, tags=list(ep.tags),
        task_categories=["image-classification"], size_categories=[size_category(images)],
        configs=[{"config_name": c.name, "data_files": c.data_files(), **({"default": True} if c.name == "default" else {})}
                 for c in ctx.configs])
    DatasetInfosDict({c.name: DatasetInfo(features=c.features, download_size=c.nbytes) for c in ctx.configs}
                     ).to_dataset_card_data(card)
    data = card.to_dict()
    data["dataset_info"] = _info_list(data.get("dataset_info", []), [c.name for c in ctx.configs])
    return {k: data.get(k) for k in HEADER_KEYS}  # to_dict drops None values; the card keeps them


def _info_list(info: dict | list, names: list[str]) -> list[dict]:
    """``dataset_info`` as a list in the configs' order, each entry led by its ``config_name``
    (``datasets`` writes one config as a bare mapping and sorts several by name)."""
    entries = [info] if isinstance(info, dict) else info
    by_name = {e.get("config_name", "default"): e for e in entries}
    return [{"config_name": n, **{k: v for k, v in by_name[n].items() if k != "config_name"}} for n in names]


def render(ctx: CardContext) -> str:
    """The whole README.md."""
    head = yaml.safe_dump(header(ctx), sort_keys=False, allow_unicode=True, width=1000)
    parts = [f"---\n{head}---\n", *_intro(ctx), *_configs(ctx), *_making(ctx), *_calibration(ctx),
             *datasheet.render(ctx), *_figures(ctx), *_loading(ctx), *_experiment(ctx), *_provenance(ctx), *_citation(ctx)]
    return "\n".join(parts).rstrip("\n") + "\n"


def _repo(ctx: CardContext) -> str:
    return ctx.meta.repo_id or "<org>/<name>"


def _intro(ctx: CardContext) -> list[str]:
    return [f"# {ctx.meta.title}\n", summary(ctx) + "\n"]


def summary(ctx: CardContext) -> str:
    """The card's first sentence (also croissant.json's description)."""
    c = ctx.params.corpus(ctx.corpus)
    names = next(c_.features["label"].names for c_ in ctx.configs if c_.name == "default")
    images = next(c_.total for c_ in ctx.configs if c_.name == "default")
    shown = ", ".join(f"`{n}`" for n in names[:20]) + (", ..." if len(names) > 20 else "")
    return (f"Version **{ctx.meta.version}** of a model-guided image dataset built by "
            f"[lwise-build](https://pypi.org/project/lwise-build/) from `{public_source(c.ingest.source)}`: {images} images "
            f"of {len(names)} classes ({shown}) at {c.ingest.image_size} px"
            f"{' (grayscale)' if c.ingest.grayscale else ''}, with {_contents(ctx)}, following "
            "L-WISE (Talbot et al., ICLR 2025).")


def _contents(ctx: CardContext) -> str:
    kinds = {cfg.kind for cfg in ctx.configs}
    parts = ["per-image difficulty scores" if ctx.params.corpus(ctx.corpus).score.models else "labels"]
    parts += [text for kind, text in (("enhanced", "model-enhanced variants"), ("pairs", "each enhanced image "
              "beside its original"), ("curriculum", "ready-to-run "
              "learning curricula"), ("metamers", "model metamers")) if kind in kinds]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _configs(ctx: CardContext) -> list[str]:
    out = ["## Configs\n", "| config | splits (rows) | a row is |", "|---|---|---|"]
    for cfg in ctx.configs:
        splits = ", ".join(f"`{s}` ({cfg.rows[s]})" for s in cfg.splits())
        out.append(f"| `{cfg.name}` | {splits} | {KIND_TEXT[cfg.kind].split('.')[0]} |")
    out.append("")
    for cfg in ctx.configs:
        out += [f"### `{cfg.name}`\n", KIND_TEXT[cfg.kind] + _config_note(ctx, cfg) + "\n",
                "| column | type | meaning |", "|---|---|---|"]
        doc = (lambda c: RESPONSE_COLUMNS[c]) if cfg.kind == "responses" else (lambda c: column_doc(ctx, c))
        out += [f"| `{col}` | {_dtype(feat)} | {doc(col)} |" for col, feat in cfg.features.items()]
        out.append("")
    return out


def _config_note(ctx: CardContext, cfg: ConfigInfo) -> str:
    if cfg.kind in ("enhanced", "pairs"):
        return f" Budget eps = {cfg.key:g}.{_lossy(ctx)}"
    if cfg.kind == "curriculum":
        return f" Schedule: see *Curricula* below (`{cfg.key}`).{_lossy(ctx)}"
    return ""


def _lossy(ctx: CardContext) -> str:
    """The stimuli's encoding when it is not the lossless default."""
    e = ctx.params.corpus(ctx.corpus).export
    if e.stimulus_format != "jpeg":
        return ""
    return (f" **Lossy:** `image` is JPEG at quality {e.jpeg_quality}, as the L-WISE reference served its .jpg "
            "tasks; JPEG erases part of a small perturbation (the build's `metrics/details/enhance.json` `jpeg` measures "
            "how much survives).")


def _dtype(feat: Any) -> str:
    kind = type(feat).__name__
    return f"{kind}({feat.dtype})" if kind == "Value" else kind


def column_doc(ctx: CardContext, col: str) -> str:
    if col in COLUMNS:
        return COLUMNS[col]
    aliases = ctx.params.corpus(ctx.corpus).score.models
    for suffix in sorted(SCORE_COLUMNS, key=len, reverse=True):
        alias = col[: -len(suffix) - 1]
        if col.endswith("_" + suffix) and alias in aliases:
            return f"{SCORE_COLUMNS[suffix]}, model `{aliases[alias]}`"
    if col.startswith("judge_") and col.endswith("_pred"):
        return f"class the judge model `{col[6:-5]}` assigns to the metamer (forced choice over the corpus's classes)"
    return "metadata column from the source corpus"


def _making(ctx: CardContext) -> list[str]:
    c = ctx.params.corpus(ctx.corpus)
    out = ["## How it was made\n", "### Models\n", "| model | architecture | training | weights sha256 |",
           "|---|---|---|---|"]
    for name, m in ctx.models.items():
        out.append(f"| `{name}` | {m['arch']} | {_training(m)} | `{m['sha256'] or 'not built'}` |")
    aliases = ", ".join(f"`{a}` = `{m}`" for a, m in c.score.models.items()) or "none"
    out += ["", "### Difficulty\n",
            f"Score aliases: {aliases}. Each model's ground-truth logit on the unmodified canonical image; "
            "difficulty = 1 - (L - min L) / (max L - min L) within the class (`_difficulty`) or over the "
            "corpus (`_difficulty_global`).\n"]
    e = c.enhance
    if e.model and e.budgets:
        steps = f"{e.steps}" if e.steps else "max(1, round(eps / step size))"
        out += ["### Enhancement\n",
                f"Guide `{e.model}`, objective `{e.objective}` (minimised), {e.norm.upper()} projected gradient "
                f"steps towards the true class from the image itself, step size {e.step_size:g}, steps {steps}, "
                f"best iterate kept, stored as lossless PNG. Budgets: {', '.join(f'{b:g}' for b in e.budgets)}; "
                f"splits: {', '.join(e.splits)}.\n"]
    out += _curricula(ctx) + _metamer_text(ctx)
    return out


def _training(m: dict[str, Any]) -> str:
    t = m.get("train") or {}
    bits = [f"checkpoint `{m['checkpoint']}`"] if m.get("checkpoint") else []
    if t:
        bits.append(f"{t.get('epochs')} epochs")
        adv = t.get("adversarial")
        if adv:
            bits.append(f"{adv['norm'].upper()} adversarial eps {adv['eps']:g}, {adv['steps']} PGD steps")
        if t.get("blur"):
            bits.append(f"blur training ({t['blur']['preset']})")
        if not adv and not t.get("blur"):
            bits.append("standard")
    return ", ".join(bits) or "-"


def _curricula(ctx: CardContext) -> list[str]:
    c = ctx.params.corpus(ctx.corpus)
    built = {cfg.key for cfg in ctx.configs if cfg.kind == "curriculum"}
    out = ["### Curricula\n"] if built else []
    for name, cur in c.curricula.items():
        if name not in built:
            continue
        slots = f", {cur.weight} condition slots" if cur.weight != 1 else ""
        out += [f"**`curriculum-{name}`**: preset `{cur.preset}`, {cur.sequences} sequences{slots}, seed {cur.seed}, "
                f"training images from `{cur.train_split}`, test images from `{cur.test_split}`"
                f"{', curriculum blocks shuffled' if is_shuffled(cur) else ''}.\n",
                "| block | phase | trials/class | selection | budget | feedback |", "|---|---|---|---|---|---|"]
        for i, b in enumerate(expand_blocks(cur, name), start=1):
            sel = f"easiest {b.easiest:.0%}" if b.easiest is not None else ("set aside, random" if b.set_aside else "random")
            out.append(f"| {i} | {b.phase} | {b.trials_per_class} | {sel} | {b.budget:g} | {b.feedback} |")
        out.append("")
    return out


def _metamer_text(ctx: CardContext) -> list[str]:
    if not any(cfg.kind == "metamers" for cfg in ctx.configs):
        return []
    m = ctx.params.corpus(ctx.corpus).metamers
    layers = "; ".join(f"`{g}`: {', '.join(ls)}" for g, ls in m.layers.items()) or "all stages"
    judges = ", ".join(f"`{j}`" for j in (m.judges or m.generators))
    steps = f", {m.steps} steps" if m.steps else ""
    return ["### Metamers\n",
            f"Generators {', '.join(f'`{g}`' for g in m.generators)}; layers {layers}; judges {judges}. "
            f"{m.per_class} references per class from `{m.split}`; schedule `{m.schedule}`{steps}; init "
            f"clamp(0.5 + {m.init_noise:g} N(0,1)); normalised L2 gradient steps on "
            f"|f(x) - f(x0)| / |f(x0)|{'; fake-ReLU gradients at ReLU layers' if m.fake_relu else ''}; "
            f"null distribution from up to {m.null_pairs} distinct random pairs of natural `{m.null_split}` "
            f"images{' (augmented: ' + ', '.join(m.null_augment) + ')' if m.null_augment else ''}; valid when "
            "the generator's forced choice matches its choice on the reference and Spearman, Pearson and "
            "SNR all reach the null's best (Feather et al., Nature Neuroscience 2023).\n"]


def _figures(ctx: CardContext) -> list[str]:
    if not ctx.figures:
        return []
    out = ["## Figures\n"]
    for path in ctx.figures:
        title = path.split("/", 1)[1].rsplit(".", 1)[0].replace("_", " ").replace("-", " ")
        out.append(f"![{title}]({path})\n")
    return out


def _loading(ctx: CardContext) -> list[str]:
    v, repo = ctx.meta.version, _repo(ctx)
    curricula = [c.name for c in ctx.configs if c.kind == "curriculum"]
    example = "curriculum-lwise" if "curriculum-lwise" in curricula else (curricula or ["default"])[0]
    return ["## Load a pinned version\n", "```python", "from datasets import load_dataset",
            "", f'ds = load_dataset("{repo}", "{example}", revision="v{v}")', "```\n",
            "Or fetch just one config's files, checked against `provenance.json`, with lwise-build:\n",
            "```bash", f"lwise-build pull {repo} --version {v} --config {example}",
            f"lwise-build cite {repo}@{v}", "```\n"]


def _calibration(ctx: CardContext) -> list[str]:
    c = ctx.calibration
    if not c:
        return []
    auc = ", ".join(f"{k} {c[k]:.3f}" for k in ("lr_auc_in_sample", "lr_auc_cv") if c.get(k) is not None)
    return ["### Calibrated difficulty\n",
            f"`predicted_accuracy` = 1 / (1 + exp(-({c['slope']:.4g} * `{c['score']}` + {c['intercept']:.4g}))): a "
            f"logistic regression of per-trial correctness on `{c['score']}` over {c['trials']} natural-image test "
            f"trials of {c['participants']} participants (conditions: {', '.join(c['conditions'])}); ROC-AUC {auc} "
            f"({c['folds']} folds by image). Responses sha256 `{c['responses_sha256']}`, experiment build "
            f"{', '.join(f'`{b}`' for b in c['experiment_builds'])}; every score's fit is in "
            "`analysis/calibration.json`.\n"]


def _experiment(ctx: CardContext) -> list[str]:
    m = ctx.experiment
    if not m:
        return []
    p, repo, v = m["params"], _repo(ctx), ctx.meta.version
    rows = [f"| `{n}` | {c['weight']:g} | {len(c['sequences'])} | {c['sequences'][0]['trials']} |"
            for n, c in m["conditions"].items()]
    stim = "until the response" if p["stimulus_ms"] is None else f"{p['stimulus_ms']} ms"
    return ["## Run the experiment\n",
            f"`experiment/` is a run-ready jsPsych 8 experiment built from the curricula (build `{m['build']}`); "
            "it is a downloadable folder, not a dataset config:\n",
            "| condition | weight | participant sequences | trials per sequence |", "|---|---|---|---|", *rows, "",
            "```bash", f"lwise-build pull {repo} --version {v} --config experiment --out my-study",
            f"# or: huggingface-cli download {repo} --repo-type dataset --revision v{v} --include 'experiment/*'",
            "```\n",
            "Serve it with `lwise-build serve <corpus>` (assigns each new participant the next unused sequence of "
            "the blocked design, condition slots by weight, and stores every trial as it happens), run it under JATOS, "
            "or put it on a static host with `post_url`; `condition-<name>.html` runs one condition. Without the "
            "collector, `?index=n` gives participant n of the blocked design, `?PROLIFIC_PID=...` picks the condition "
            "(by weight) and sequence by a hash, `?condition=` and `?sequence=` fix them. Each trial: fixation "
            f"{p['fixation_ms']} ms, the image {stim}, {p['response']} ({p['choice_names']}, {p['choice_order']} order), "
            f"responses accepted after {p['click_delay_ms']} ms and for {p['response_limit_ms']} ms, {_feedback(p)} in "
            f"training blocks, {p['gap_ms']} ms between trials; {p['catch_per_block']} catch trials per block. Every "
            "row is saved as it happens and a reload resumes at the next trial; analyse the sessions with "
            f"`lwise-build analyze {ctx.corpus} --responses <folder>`.\n"]


def _feedback(p: dict[str, Any]) -> str:
    lock = f"{p['feedback_correct_ms']} ms after a correct, {p['feedback_incorrect_ms']} ms after a wrong answer"
    if p.get("feedback", "timed") == "self_paced":
        return f"self-paced feedback (until the space bar, accepted after {lock})"
    return f"feedback ({lock})"


def _provenance(ctx: CardContext) -> list[str]:
    b = ctx.build
    commit = f" from git commit `{b['commit']}`" if b.get("commit") else ""
    return ["## Provenance\n",
            f"Built with lwise-build{commit}. `provenance.json` records the params, model hashes, "
            "dvc.lock hashes of the inputs, library versions and the SHA-256 of every file here; "
            "`lwise-build publish` adds the git commit of the build (`git`).\n"]


def _citation(ctx: CardContext) -> list[str]:
    digest = ([f"Content hash of this version: `sha256:{ctx.meta.data_sha256}` ({DATA_HASH_TEXT}).\n"]
              if ctx.meta.data_sha256 else [])
    return ["## Citation\n", *digest, "Please cite this dataset version and the methods it was built with:\n",
            "```bibtex", ctx.meta.bibtex_all(), "```"]
