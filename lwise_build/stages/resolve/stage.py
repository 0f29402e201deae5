"""The ``resolve`` stage: what every other stage of a corpus depends on, made visible to DVC.

It runs on every ``dvc repro`` (it is cheap) and writes ``data/<corpus>/resolved/``:
``source.json``, the source's fingerprint (every item's name, label, split, metadata and content
hash: adding, editing or removing an image changes it), and ``<stage>.json`` /
``train-<model>.json``, the params each stage reads with every default filled in. Each stage
depends on its own file, so a corpus may leave out any section but ``ingest``, and a rebuild
reruns exactly the stages whose inputs changed (docs/architecture.md, "Sources and params").
"""

from __future__ import annotations

from pathlib import Path

from ...io.sources import fingerprint
from ...io.staging import write_json
from ..base import Stage
from ..registry import SPECS
from .spec import SPEC


class Resolve(Stage, spec=SPEC):
    """``lwise-build resolve <corpus>``: the source fingerprint and every stage's resolved params."""

    def write(self, tmp: Path) -> None:
        params, corpus = self.ctx.params, self.ctx.corpus
        write_json(tmp / "source.json", fingerprint(self.ctx.spec.ingest, f"{self.where}.ingest"))
        self.stages, self.models = 0, [m for m, spec in params.models.items() if spec.corpus == corpus]
        for spec in (s for s in SPECS if s.resolved):
            for item in spec.items(params, corpus):
                write_json(tmp / spec.resolved_name(item), spec.resolved(params, item))
            self.stages += spec.per == "corpus"
        # the model-using stages depend on data/<corpus>/models/, which only train stages fill:
        # a corpus without models of its own still needs the (empty) folder to exist for DVC
        self.ctx.dir("models").mkdir(parents=True, exist_ok=True)

    def summary(self) -> str:
        return f"source and params of {self.stages} stages and {len(self.models)} models"
