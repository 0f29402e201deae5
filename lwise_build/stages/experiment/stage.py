"""The ``experiment`` stage: each curriculum as a static, run-ready jsPsych 8 experiment.

Writes ``data/<corpus>/experiment/``: ``index.html`` (every condition, assignment by participant
id and condition weights), ``condition-<name>.html`` (one condition), the images exactly as shown
under content-addressed names (``images/<sha256[:16]>.png``, each stored once), one trial-variables
JSON list per participant sequence (``sequences/<name>/<k>.json``, with a ``.js`` twin for pages
opened from disk), the runner (``experiment.js``, ``experiment.css``), ``manifest.json`` and a
README. The design is docs/methods.md, "Experiments and analysis".
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

from ...config.experiment import JSPSYCH_PACKAGES
from ...config.schema import to_plain
from ...errors import UserError
from ...hub.configs import enhanced_tables, shown_images
from ...io.images import png_to_jpeg
from ...io.tables import has_table, read_table
from ...ops.experiment_design import SHAPES, check_design, condition_weights, design
from ...ops.recognisability import clean
from ...seeding import seeded_rng
from ..base import Stage
from .spec import SPEC

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "experiment"
RUNNER = ("lwise-trials.js", "lwise-store.js", "lwise-preload.js", "lwise-assign.js", "lwise-end.js", "experiment.js",
          "experiment.css")
PAGE = "index.html"


def library_urls(template: str) -> tuple[list[str], list[str]]:
    """The ``<script>`` and ``<link>`` URLs of jsPsych and its plugins (browser builds)."""
    base = {pkg: template.format(package=pkg, version=ver) for pkg, ver in JSPSYCH_PACKAGES.items()}
    return [f"{u}/dist/index.browser.min.js" for u in base.values()], [f"{base['jspsych']}/css/jspsych.css"]


def render_page(config: dict[str, Any], template: str) -> str:
    """An experiment page: the runner with its config inline (no fetch needed to start)."""
    scripts, styles = library_urls(template)
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).replace("</", "<\\/")
    page = (ASSETS / PAGE).read_text(encoding="utf-8")
    for key, value in {"title": _html(config["title"]), "config": blob,
                       "styles": "\n".join(f'<link rel="stylesheet" href="{_html(u)}">' for u in styles),
                       "scripts": "\n".join(f'<script src="{_html(u)}"></script>' for u in scripts)}.items():
        page = page.replace("{{" + key + "}}", value)
    return page


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def write_images(shown: dict[tuple[str, float], dict[str, Any]], folder: Path,
                 jpeg_quality: int | None = None) -> dict[tuple[str, float], str]:
    """Each shown image once under its content hash; (id, budget) -> path relative to the page.

    With ``jpeg_quality`` the stimuli are JPEG, as the curriculum configs carry them when
    ``export.stimulus_format`` is ``jpeg`` (the reference's .jpg tasks); else the stored PNGs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, cell in sorted(shown.items()):
        data, ext = (cell["bytes"], "png") if jpeg_quality is None else (png_to_jpeg(cell["bytes"], jpeg_quality), "jpg")
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
        target = folder / name
        if not target.exists():
            target.write_bytes(data)
        out[key] = f"images/{name}"
    return out


def sequence_files(folder: Path, key: str, trials: list[dict[str, Any]]) -> bytes:
    """``<key>.json`` (the trial-variables list) and its ``.js`` twin; returns the JSON bytes."""
    text = json.dumps(clean(trials), separators=(",", ":"), allow_nan=False)
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(text + "\n", encoding="utf-8")
    js = f"window.lwiseSequences = window.lwiseSequences || {{}};\nwindow.lwiseSequences[{json.dumps(key)}] = {text};\n"
    path.with_suffix(".js").write_text(js, encoding="utf-8")
    return text.encode()


class Experiment(Stage, spec=SPEC):
    """``lwise-build experiment <corpus>``: run-ready jsPsych experiments in ``data/<c>/experiment/``."""

    def prepare(self) -> None:
        folder = self.ctx.dir("curricula")
        if not has_table(folder):
            raise UserError(f"{folder}: no curricula table; run `lwise-build curriculum {self.ctx.corpus}` first")
        order = {n: i for i, n in enumerate(self.ctx.spec.curricula)}
        rows = read_table(folder).to_pylist()
        self.rows = sorted(rows, key=lambda r: (order.get(r["curriculum"], len(order)), r["curriculum"],
                                                r["sequence"], r["trial"]))
        per: dict[str, set[int]] = {}
        for r in rows:
            per.setdefault(r["curriculum"], set()).add(r["block"])
        check_design(self.p, self.ctx.classes, max(map(len, per.values()), default=0), self.where)
        self.conditions: dict[str, Any] = {}

    def write(self, tmp: Path) -> None:
        ctx, p = self.ctx, self.p
        if not self.rows:
            (tmp / "README.md").write_text("# No experiment\n\nThis corpus has no curricula.\n", encoding="utf-8")
            return
        held = self._held_out() if p.repeat_image == "held_out" and sum(p.repeats_per_block) else {}
        shown = shown_images(self.rows + [{"id": h["id"], "budget": 0.0} for h in held.values()], ctx.dir("images"),
                             enhanced_tables(ctx.dir("enhanced")))
        ep = ctx.spec.export
        images = write_images(shown, tmp / "images", ep.jpeg_quality if ep.stimulus_format == "jpeg" else None)
        digest = hashlib.sha256()
        for name, seqs in self._sequences():
            entries = []
            for s, rows in seqs:
                d = design(rows, ctx.classes, images, p, seeded_rng(p.seed, "experiment", name, s), held.get((name, s)))
                key = f"sequences/{name}/{s:03d}"
                digest.update(sequence_files(tmp, key, d.trials))
                entries.append({"file": key, "choice_labels": d.choice_labels, "choice_names": d.choice_names,
                                "trials": len(d.trials)})
            self.conditions[name] = {"sequences": entries}
        weights = condition_weights(ctx.spec.curricula, list(self.conditions))
        for name, w in weights.items():
            self.conditions[name]["weight"] = w
        config = self._config(digest)
        (tmp / PAGE).write_text(render_page(config, p.library_url), encoding="utf-8")
        for name in self.conditions:
            (tmp / f"condition-{name}.html").write_text(
                render_page({**config, "fixed_condition": name}, p.library_url), encoding="utf-8")
        for asset in RUNNER:
            shutil.copyfile(ASSETS / asset, tmp / asset)
        manifest = {**config, "images": len(set(images.values())), "packages": JSPSYCH_PACKAGES}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(readme(ctx.corpus, config), encoding="utf-8")

    def _held_out(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Per (curriculum, sequence): the natural image its repeat trials show, drawn (seeded) from
        the curriculum's training split among the images the sequence does not show."""
        table = read_table(self.ctx.dir("images"), columns=["id", "label", "split"]).to_pylist()
        out = {}
        for name, seqs in self._sequences():
            cur = self.ctx.spec.curricula.get(name)
            split = getattr(cur, "train_split", "train")
            for s, rows in seqs:
                used = {r["id"] for r in rows}
                pool = sorted((r for r in table if r["split"] == split and r["id"] not in used), key=lambda r: r["id"])
                if not pool:
                    raise UserError(f"{self.where}.repeats_per_block: curriculum {name} sequence {s} shows every "
                                    f"{split} image, so none is left to hold out for repeat trials "
                                    "(set repeat_image: earlier)")
                pick = pool[int(seeded_rng(self.p.seed, "held-out", name, s).integers(len(pool)))]
                out[(name, s)] = {"id": pick["id"], "label": pick["label"]}
        return out

    def _sequences(self) -> Iterator[tuple[str, list[tuple[int, list[dict[str, Any]]]]]]:
        for name, rows in groupby(self.rows, key=lambda r: r["curriculum"]):
            yield name, [(s, list(g)) for s, g in groupby(rows, key=lambda r: r["sequence"])]

    def _config(self, digest: Any) -> dict[str, Any]:
        """What the page needs: conditions, sequences, timing params and the build hash."""
        config = {"corpus": self.ctx.corpus, "title": self.p.title, "classes": list(self.ctx.classes),
                  "conditions": self.conditions, "order": list(self.conditions), "fixed_condition": None,
                  "params": to_plain(self.p), "seed": self.p.seed, "shapes": list(SHAPES),
                  "library_hint": library_urls(self.p.library_url)[0][0]}
        digest.update(json.dumps(config, sort_keys=True).encode())
        config["build"] = digest.hexdigest()[:16]
        return config

    def summary(self) -> str:
        if not self.rows:
            return "no curricula, no experiment"
        seqs = sum(len(c["sequences"]) for c in self.conditions.values())
        return f"{len(self.conditions)} conditions ({', '.join(self.conditions)}), {seqs} participant sequences"


def readme(corpus: str, config: dict[str, Any]) -> str:
    """How to run the experiment and read its data back (the folder's README.md)."""
    rows = "\n".join(f"| `{n}` | {c['weight']:g} | {len(c['sequences'])} | {c['sequences'][0]['trials']} | "
                     f"`condition-{n}.html` |" for n, c in config["conditions"].items())
    p = config["params"]
    return f"""# {config['title']}: jsPsych experiment ({corpus})

Built by lwise-build (build `{config['build']}`). Serve it with `lwise-build serve {corpus}` (the
collector: it hands each new participant the next unused sequence and stores every trial as it
happens), run it under JATOS, or host it statically with `experiment.post_url`; saving to:
{', '.join(p['save'])}. jsPsych 8 loads from `{config['library_hint']}`; for an offline lab, run
`npm install jspsych@8 @jspsych/plugin-html-button-response @jspsych/plugin-html-keyboard-response
@jspsych/plugin-preload` and serve it with `--node-modules`, setting `experiment.library_url` to
`node_modules/{{package}}`.

| condition | weight | sequences | trials per sequence | page for this condition only |
|---|---|---|---|---|
{rows}

URL parameters: `PROLIFIC_PID` (with `STUDY_ID`, `SESSION_ID`) or `{p['participant_param']}` names the
participant. Without the collector, `index=<n>` gives participant number n of the blocked design
(each condition `weight` slots, as the reference deployed it), `condition=<name>` and `sequence=<k>`
fix them, and otherwise a hash of the id picks both. The data are one jsPsych row per screen, each
keyed by `lwise_key`; the `lwise_role=response` rows are the trials, with the trial variables, the
response, `correct`, `rt` and the display geometry. A reload resumes at the next trial.

Analyse the sessions with `lwise-build analyze {corpus} --responses <folder>` (the collector's store,
JATOS results or downloaded files).
"""
