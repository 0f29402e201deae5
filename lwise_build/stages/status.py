"""``lwise-build status``: which DVC stages a change of sources or params invalidates."""

from __future__ import annotations


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
