"""Every DVC stage's spec, in pipeline order: the one list the CLI stage commands, ``resolve``,
``check``'s plan, the report and dvc.yaml (``python tools/dvc_yaml.py``) are derived from.

Adding a stage: its package ``stages/<name>/`` (``spec.py`` and ``stage.py``), its import here and
its place in ``SPECS`` (docs/architecture.md, "Adding a stage").
"""

from __future__ import annotations

from ..config.params import Params
from .curriculum.spec import SPEC as CURRICULUM
from .enhance.spec import SPEC as ENHANCE
from .experiment.spec import SPEC as EXPERIMENT
from .export.spec import SPEC as EXPORT
from .ingest.spec import SPEC as INGEST
from .metamers.spec import SPEC as METAMERS
from .report.spec import SPEC as REPORT
from .resolve.spec import SPEC as RESOLVE
from .score.spec import SPEC as SCORE
from .spec import StageSpec
from .train.spec import SPEC as TRAIN

SPECS: tuple[StageSpec, ...] = (
    RESOLVE,
    INGEST,
    TRAIN,
    SCORE,
    ENHANCE,
    CURRICULUM,
    METAMERS,
    EXPERIMENT,
    EXPORT,
    REPORT,
)
BY_NAME: dict[str, StageSpec] = {s.name: s for s in SPECS}


def plan(params: Params) -> list[str]:
    """Every stage's plan lines, corpus by corpus, in pipeline order (``lwise-build check``)."""
    return [line for corpus in params.corpora for spec in SPECS for line in spec.plan(params, corpus)]
