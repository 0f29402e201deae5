"""The stage plan implied by params (what ``lwise-build check`` lists; dvc.yaml runs the same)."""

from __future__ import annotations

from ..config.params import Params


def planned_stages(params: Params) -> list[str]:
    """One line per DVC stage: ``name@item -> output  (what it does)``."""
    lines = []
    for corpus, c in params.corpora.items():
        lines.append(f"ingest@{corpus} -> data/{corpus}/images  ({c.ingest.source}, {c.ingest.image_size} px)")
        for name, m in params.models.items():
            if m.corpus == corpus:
                how = "train" if m.train else "import checkpoint"
                lines.append(f"train@{name} -> data/{corpus}/models/{name}  ({how}, {m.arch})")
        lines.append(f"score@{corpus} -> data/{corpus}/scores  ({_describe_score(c)})")
        budgets = ", ".join(f"{b:g}" for b in c.enhance.budgets)
        enh = f"guide {c.enhance.model}, budgets {budgets}" if c.enhance.model else "disabled"
        lines.append(f"enhance@{corpus} -> data/{corpus}/enhanced  ({enh})")
        cur = ", ".join(c.curricula) or "none"
        lines.append(f"curriculum@{corpus} -> data/{corpus}/curricula  ({cur})")
        gens = ", ".join(c.metamers.generators) or "none"
        lines.append(f"metamers@{corpus} -> data/{corpus}/metamers  (generators: {gens})")
        lines.append(f"experiment@{corpus} -> data/{corpus}/experiment  (jsPsych, conditions: {cur})")
        lines.append(f"export@{corpus} -> data/{corpus}/hub  (version {c.export.version})")
        lines.append(f"report@{corpus} -> data/{corpus}/report/index.html")
    return lines


def _describe_score(c) -> str:
    return ", ".join(f"{a}={m}" for a, m in c.score.models.items()) or "no scoring models"
