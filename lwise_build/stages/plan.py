"""The stage plan implied by params (what ``lwise-build check`` lists; dvc.yaml runs the same)."""

from __future__ import annotations

from ..config.params import Params


def planned_stages(params: Params) -> list[str]:
    """One line per DVC stage: ``name@item -> output  (what it does)``."""
    lines = []
    for corpus, c in params.corpora.items():
        lines.append(f"resolve@{corpus} -> data/{corpus}/resolved  (source fingerprint, resolved params)")
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


def pipeline_status(params_path: str = "params.yaml") -> str:
    """``dvc status`` after refreshing every corpus's ``resolve`` stage (source fingerprint and
    resolved params), so it names the stages a source change invalidates, e.g. ``ingest@c``."""
    import subprocess
    import sys

    from ..config.load import load_params
    from ..errors import UserError

    params = load_params(params_path)
    dvc = [sys.executable, "-m", "dvc"]
    targets = [f"resolve@{c}" for c in params.corpora]
    refresh = subprocess.run([*dvc, "repro", "--single-item", *targets], capture_output=True, text=True, check=False)
    if refresh.returncode != 0:
        last = (refresh.stderr.strip().splitlines() or ["failed"])[-1]
        raise UserError(f"status: dvc repro of {', '.join(targets)} failed: {last}")
    res = subprocess.run([*dvc, "status"], capture_output=True, text=True, check=False)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    text, skip = [], False  # drop the resolve stages themselves: they always run
    for ln in lines:
        if not ln.startswith(("\t", " ")):
            skip = ln.rstrip(":").startswith("resolve@")
        if not skip:
            text.append(ln)
    return "\n".join(text) or "Data and pipelines are up to date (sources and params unchanged)."
