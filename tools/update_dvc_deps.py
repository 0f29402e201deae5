"""Rewrite the code deps of every stage in dvc.yaml from the imports (tools/import_graph.py).

Run after changing imports: ``python tools/update_dvc_deps.py``; tests/test_dvc_yaml.py fails
until dvc.yaml covers every module a stage runs. Data deps and everything else stay as they are.
"""

from __future__ import annotations

import re

from import_graph import ROOT, ImportGraph


def update(text: str, graph: ImportGraph) -> str:
    out, stage, lines, i = [], None, text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^  (\w+):$", line)
        stage = m.group(1) if m else stage
        out.append(line)
        i += 1
        if line.strip() != "deps:" or f"{graph.package}.stages.{stage}.stage" not in graph.modules:
            continue
        kept = []
        while i < len(lines) and lines[i].startswith("        - "):
            dep = lines[i].strip()[2:]
            if not dep.startswith(graph.package + "/") or dep.startswith(graph.package + "/assets"):
                kept.append(dep)  # data deps and non-code folders (assets) stay; code is recomputed
            i += 1
        code = graph.dvc_deps(stage)
        out += [f"        - {d}" for d in [*[k for k in kept if not k.startswith(graph.package)], *code,
                                            *[k for k in kept if k.startswith(graph.package)]]]
    return "\n".join(out)


if __name__ == "__main__":
    path = ROOT / "dvc.yaml"
    path.write_text(update(path.read_text(), ImportGraph()))
