"""Where every output lives: ``data/<corpus>/<stage>/`` and the scratch cache (no heavy imports).

The layout is the public contract of docs/architecture.md ("Outputs and metrics"): stage tables under
``data/<corpus>/``, metrics under ``data/<corpus>/metrics/``, figures under
``data/<corpus>/plots/<stage>/``, enhanced budgets under ``enhanced/eps=<b>/``.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "LWISE_DATA"
CACHE_ENV = "LWISE_CACHE"
BUDGET_PREFIX = "eps="


def data_root() -> Path:
    """Root of the stage outputs (``data/`` beside params.yaml, or ``$LWISE_DATA``)."""
    return Path(os.environ.get(DATA_ROOT_ENV, "data"))


def stage_dir(corpus: str, stage: str) -> Path:
    """``data/<corpus>/<stage>``: where a stage writes its table and side files."""
    return data_root() / corpus / stage


def metrics_path(corpus: str, name: str) -> Path:
    """``data/<corpus>/metrics/<name>.json``, or the folder ``<name>/`` of one JSON per row
    (what ``dvc metrics show`` reads: headline figures only, docs/architecture.md, "Outputs and metrics")."""
    return stage_dir(corpus, "metrics") / f"{name}.json"


def details_path(corpus: str, name: str) -> Path:
    """``data/<corpus>/metrics/details/<name>.json``: a stage's full report (not a DVC metric)."""
    return stage_dir(corpus, "metrics") / "details" / f"{name}.json"


def plots_dir(corpus: str, stage: str) -> Path:
    """``data/<corpus>/plots/<stage>``: the figures and plot tables of one stage."""
    return stage_dir(corpus, "plots") / stage


def model_dir(corpus: str, name: str) -> Path:
    """``data/<corpus>/models/<name>``: where the train stage puts model ``name``."""
    return stage_dir(corpus, "models") / name


def budget_dir(budget: float) -> str:
    """The folder name (and metrics key) of one enhancement budget, e.g. ``eps=0.25``."""
    return f"{BUDGET_PREFIX}{float(budget):g}"


def parse_budget(name: str) -> float | None:
    """The budget of an ``eps=<b>`` folder name, or None for any other name."""
    if not name.startswith(BUDGET_PREFIX):
        return None
    try:
        return float(name[len(BUDGET_PREFIX):])
    except ValueError:
        return None


def enhanced_dir(corpus: str, budget: float) -> Path:
    """``data/<corpus>/enhanced/eps=<b>``: the table of one budget."""
    return stage_dir(corpus, "enhanced") / budget_dir(budget)


def cache_root() -> Path:
    """Scratch cache for finished units, outside DVC outputs (``$LWISE_CACHE`` or ~/.cache)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lwise-build"
    return Path(os.environ.get(CACHE_ENV, default))


def public_path(text: str) -> str:
    """A path as it may be published: a relative one as written, an absolute one (or ``~/...``)
    only by its name, so no file names the folders of the machine that built it; URLs unchanged."""
    if "://" in text:
        return text
    path = Path(text).expanduser()
    return path.name if path.is_absolute() else path.as_posix()


def public_source(source: str) -> str:
    """``ingest.source`` as published: ``imagefolder:/home/me/moths`` -> ``imagefolder:moths``."""
    scheme, sep, rest = source.partition(":")
    return f"{scheme}{sep}{public_path(rest)}" if sep and scheme != "builtin" else source
