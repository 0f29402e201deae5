"""What each stage's output depends on in params, defaults filled in: the ``resolve`` stage writes
it to ``data/<corpus>/resolved/<stage>.json``, the file that stage's DVC deps list.

Kept apart from the stage modules, and free of heavy imports, because ``resolve`` runs on every
``dvc repro`` (docs/architecture.md, "Sources and params"): one entry per stage name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..config.checks import corpus_models
from ..config.params import Params
from ..config.schema import to_plain
from ..io.digests import file_digest
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


def enhance(params: Params, corpus: str) -> dict[str, Any]:
    """The enhance section, plus the stimulus format when it is JPEG (the metrics measure it)."""
    out, ex = _section(params, corpus, "enhance"), params.corpus(corpus).export
    if ex.stimulus_format == "jpeg":
        out["stimuli"] = plain({"format": ex.stimulus_format, "jpeg_quality": ex.jpeg_quality})
    return out


def curriculum(params: Params, corpus: str) -> dict[str, Any]:
    spec = params.corpus(corpus)  # the default difficulty alias is the first scoring alias
    return plain({"curricula": to_plain(spec.curricula), "default_difficulty": next(iter(spec.score.models), None)})


def metamers(params: Params, corpus: str) -> dict[str, Any]:
    """The metamers section, plus scoring's class mapping when one is set (forced choices)."""
    out, sp = _section(params, corpus, "metamers"), params.corpus(corpus).score
    if sp.class_map or sp.target_column:
        out["score_mapping"] = plain({"class_map": dict(sp.class_map), "target_column": sp.target_column})
    return out


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
    """What a model's folder depends on: the seed, the device and the model's entry."""
    return plain({"seed": params.seed, "device": params.device, "model": to_plain(params.model(model_name))})


#: Each corpus stage's resolved params, by DVC stage name, in pipeline order (train: :func:`train`).
CORPUS_STAGES: dict[str, Callable[[Params, str], dict[str, Any]]] = {
    "ingest": ingest, "score": score, "enhance": enhance, "curriculum": curriculum, "metamers": metamers,
    "experiment": experiment, "export": export, "report": report,
}
