"""Hostile response files are skipped with a reason, never a crash (issue 23, item 7)."""

from __future__ import annotations

from pathlib import Path

from lwise_build.io import responses
from lwise_build.io.responses import read_responses


def test_deeply_nested_json_is_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "deep-lines.json").write_text("[" * 200_000 + "\n" + "]" * 200_000 + "\n")
    sessions, skipped = read_responses(tmp_path, "toy")
    assert sessions == [] and {s.file: s.reason for s in skipped} == {
        "deep.json": "JSON nested too deeply to be jsPsych rows",
        "deep-lines.json": "JSON nested too deeply to be jsPsych rows"}


def test_a_huge_file_is_skipped_unread(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "huge.json").write_bytes(b"[" + b" " * 300_000 + b"]")
    monkeypatch.setattr(responses, "MAX_FILE_BYTES", 200_000)
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(AssertionError("read")))
    sessions, skipped = read_responses(tmp_path, "toy")
    assert sessions == [] and [(s.file, s.reason) for s in skipped] == [
        ("huge.json", "0.3 MB: too large for saved session data (at most 0.2 MB)")]
