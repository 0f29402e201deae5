"""Cross-section checks: every name one section uses must exist in another (one line each).

Runs after the schema has built every section (:mod:`.load`), so each check sees typed values.
"""

from __future__ import annotations

import re

from ..errors import UserError
from .curricula import LWISE_BUDGETS, expand_blocks
from .params import CorpusParams, Params

DEFAULT_BUDGETS = "[" + ", ".join(f"{b:g}" for b in LWISE_BUDGETS) + "]"


def check_references(p: Params) -> None:
    """Every model and corpus named anywhere must exist; budgets used by curricula must be built."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", p.device):
        raise UserError(f"device: must be auto, cpu, mps, cuda or cuda:N, got {p.device!r}")
    for mname, m in p.models.items():
        if m.corpus not in p.corpora:
            raise UserError(f"models.{mname}.corpus: unknown corpus {m.corpus!r}")
    for cname, c in p.corpora.items():
        _check_models(p, c, f"corpora.{cname}")
        _check_curricula(c, f"corpora.{cname}")


def _check_models(p: Params, c: CorpusParams, base: str) -> None:
    """Models named by score, enhance and metamers exist; metamer layers name generators."""
    named = [(f"{base}.score.models.{a}", m) for a, m in c.score.models.items()]
    named += [(f"{base}.score.observers[{i}]", m) for i, m in enumerate(c.score.observers or ())]
    named += [(f"{base}.enhance.model", c.enhance.model)]
    for key in ("compare_guides", "observers"):
        named += [(f"{base}.enhance.{key}[{i}]", m) for i, m in enumerate(getattr(c.enhance, key))]
    named += [(f"{base}.metamers.generators[{i}]", m) for i, m in enumerate(c.metamers.generators)]
    named += [(f"{base}.metamers.judges[{i}]", m) for i, m in enumerate(c.metamers.judges or ())]
    for where, name in named:
        if name is not None and name not in p.models:
            raise UserError(f"{where}: unknown model {name!r} (known: {', '.join(p.models)})")
    for gname in c.metamers.layers:
        if gname not in c.metamers.generators:
            raise UserError(f"{base}.metamers.layers.{gname}: not one of the generators")


def _check_curricula(c: CorpusParams, base: str) -> None:
    """Curricula need scores, valid names and aliases, and only budgets enhance builds."""
    built = set(c.enhance.budgets) | {0.0}
    if c.curricula and not c.score.models:
        raise UserError(f"{base}.curricula: curricula need difficulty scores (score.models)")
    for name, cur in c.curricula.items():
        if not re.fullmatch(r"[A-Za-z0-9][\w-]*", name):
            raise UserError(f"{base}.curricula.{name}: name must be letters, digits, - or _")
        if cur.difficulty is not None and cur.difficulty not in c.score.models:
            raise UserError(f"{base}.curricula.{name}.difficulty: unknown score alias {cur.difficulty!r}")
        for i, block in enumerate(expand_blocks(cur, f"{base}.curricula.{name}")):
            if block.budget not in built:
                have = ", ".join(f"{b:g}" for b in sorted(built - {0.0})) or "none"
                why = "" if cur.budgets or cur.preset == "custom" else \
                    f" (the preset's default budgets {DEFAULT_BUDGETS}; give it 6 `budgets` to use others)"
                raise UserError(f"{base}.curricula.{name}: block {i + 1} uses budget {block.budget:g}{why}, "
                                f"which {base}.enhance.budgets does not build ({have})")
