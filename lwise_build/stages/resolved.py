"""What each stage's output depends on in params, defaults filled in: the ``resolve`` stage writes
it to ``data/<corpus>/resolved/<stage>.json``, the file that stage's DVC deps list.

Kept apart from the stage modules, and free of heavy imports, because ``resolve`` runs on every
``dvc repro`` (docs/architecture.md, "Sources and params"): one entry per stage name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config.checks import corpus_models
from ..config.params import Params
from ..config.schema import to_plain
from ..io.digests import file_digest
from ..io.fingerprint import files_fingerprint
from ..io.paths import stage_dir
from ..io.psychds import data_file


def plain(obj: Any) -> Any:
    """JSON-ready plain data (dates and other scalars as text), as written to resolved files."""
    return json.loads(json.dumps(obj, default=str))


def _section(params: Params, corpus: str, section: str) -> dict[str, Any]:
    """The seed, the device and one section of the corpus (what most model stages read)."""
    spec = params.corpus(corpus)
    return plain({"seed": params.seed, "device": params.device, section: to_plain(getattr(spec, section))})


def ingest(params: Params, corpus: str) -> dict[str, Any]:
    return plain({"seed": params.seed, "ingest": to_plain(params.corpus(corpus).ingest)})


def score(params: Params, corpus: str) -> dict[str, Any]:
    return _section(params, corpus, "score")


def _mapping(params: Params, corpus: str) -> dict[str, Any]:
    """Scoring's class mapping when one is set (every stage that maps labels onto a head uses it)."""
    sp = params.corpus(corpus).score
    if not (sp.class_map or sp.target_column):
        return {}
    return {"score_mapping": plain({"class_map": dict(sp.class_map), "target_column": sp.target_column})}


def enhance(params: Params, corpus: str) -> dict[str, Any]:
    """The enhance section, the stimulus format when it is JPEG (the metrics measure it) and
    scoring's class mapping when set (the targets)."""
    out, ex = {**_section(params, corpus, "enhance"), **_mapping(params, corpus)}, params.corpus(corpus).export
    if ex.stimulus_format == "jpeg":
        out["stimuli"] = plain({"format": ex.stimulus_format, "jpeg_quality": ex.jpeg_quality})
    return out


def curriculum(params: Params, corpus: str) -> dict[str, Any]:
    spec = params.corpus(corpus)  # the default difficulty alias is the first scoring alias
    return plain({"curricula": to_plain(spec.curricula), "default_difficulty": next(iter(spec.score.models), None)})


def metamers(params: Params, corpus: str) -> dict[str, Any]:
    """The metamers section, plus scoring's class mapping when one is set (forced choices)."""
    return {**_section(params, corpus, "metamers"), **_mapping(params, corpus)}


def experiment(params: Params, corpus: str) -> dict[str, Any]:
    """The experiment section, the condition weights and the stimulus format it shares with export."""
    spec = params.corpus(corpus)
    return plain({"experiment": to_plain(spec.experiment), "weights": {n: c.weight for n, c in spec.curricula.items()},
                  "stimulus_format": spec.export.stimulus_format, "jpeg_quality": spec.export.jpeg_quality})


def export(params: Params, corpus: str) -> dict[str, Any]:
    """Every section but report (the card describes them all) and the models it names; the
    experiment is a folder dep, and the calibration ``analyze`` wrote (outside the pipeline), and
    its trial data when ``export.responses`` is on, enter by their hashes, so ``dvc repro`` reruns
    export once they exist or change."""
    sections = {k: v for k, v in to_plain(params.corpus(corpus)).items()
                if k not in ("report", "executor", "experiment", "analysis")}
    cal = stage_dir(corpus, "analysis") / "calibration.json"
    extra = {"calibration_sha256": file_digest(cal)} if cal.is_file() else {}
    trials = stage_dir(corpus, "analysis") / "psychds" / data_file(corpus)
    if params.corpus(corpus).export.responses and trials.is_file():  # the opt-in responses config
        extra["responses_sha256"] = file_digest(trials)
    return plain({"seed": params.seed, "corpus": sections, **extra,
                  "models": {n: to_plain(params.model(n)) for n in corpus_models(params, corpus)}})


def report(params: Params, corpus: str) -> dict[str, Any]:
    return plain({"seed": params.seed, "report": to_plain(params.corpus(corpus).report)})


def train(params: Params, model_name: str) -> dict[str, Any]:
    """What a model's folder depends on: the seed, the device, the model's entry, the content hash
    of a local checkpoint file (replacing the file rebuilds the model and all it feeds) and its
    corpus's class mapping (the labels its validation metrics are taken against)."""
    spec = params.model(model_name)
    out = {"seed": params.seed, "device": params.device, "model": to_plain(spec), **_mapping(params, spec.corpus)}
    if spec.checkpoint and is_local(spec.checkpoint):
        out["checkpoint_sha256"] = checkpoint_digest(spec.checkpoint)
    return plain(out)


def is_local(source: str) -> bool:
    """A checkpoint given as a file path (not an http(s) URL or ``hf://``, which name their content)."""
    return not source.startswith(("http://", "https://", "hf://"))


def checkpoint_digest(source: str) -> str:
    """The sha256 of a local checkpoint file ("" when it does not exist; train then says so), read
    again only when its size or modification time changed (the source stat cache)."""
    path = Path(source).expanduser()
    return files_fingerprint(path, [(path.name, path)])[0][path.name] if path.is_file() else ""  # own stat cache


#: Each corpus stage's resolved params, by DVC stage name, in pipeline order (train: :func:`train`).
CORPUS_STAGES: dict[str, Callable[[Params, str], dict[str, Any]]] = {
    "ingest": ingest, "score": score, "enhance": enhance, "curriculum": curriculum, "metamers": metamers,
    "experiment": experiment, "export": export, "report": report,
}
