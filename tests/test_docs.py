"""Docstrings point into docs/ (``docs/methods.md, "Enhancement"``): every section they cite exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITE = re.compile(r'docs/(\w+\.md)\W{0,3}"([A-Z][^"\n]{0,60})"')


def sections(doc: Path) -> list[str]:
    """Headings and bold paragraph leads (``**One trajectory for all budgets.**``) of ``doc``."""
    text = doc.read_text(encoding="utf-8")
    return re.findall(r"^#+ (.+)$", text, re.M) + re.findall(r"^\*\*(.+?)\.?\*\*", text, re.M)


def citations() -> list[tuple[str, str, str]]:
    files = [*ROOT.glob("lwise_build/**/*.py"), *ROOT.glob("lwise_build/assets/**/*.js"), *ROOT.glob("benchmarks/*.py")]
    return [(str(f.relative_to(ROOT)), doc, name) for f in files
            for doc, name in CITE.findall(f.read_text(encoding="utf-8"))]


def test_every_cited_section_exists() -> None:
    cited = citations()
    assert len(cited) > 20  # the pattern still finds the citations
    missing = [f"{where}: docs/{doc} has no section {name!r}" for where, doc, name in cited
               if not any(s.startswith(name) for s in sections(ROOT / "docs" / doc))]
    assert missing == []


def test_a_missing_section_is_reported(tmp_path: Path) -> None:
    doc = tmp_path / "methods.md"
    doc.write_text("# Methods\n\n## Difficulty\n\n**One trajectory.** text\n")
    assert sections(doc) == ["Methods", "Difficulty", "One trajectory"]
    assert not any(s.startswith("Enhancement") for s in sections(doc))
