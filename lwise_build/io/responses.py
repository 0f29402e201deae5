"""Read saved jsPsych data (CSV, JSON, JATOS JSON lines) from an lwise-build experiment.

Each file holds one session (JATOS exports: one JSON list per line, one session each). Rows come
back typed (jsPsych's CSV writes every value as text). A file that is not such data is not
dropped silently: it is returned as :class:`Skipped` with the reason (docs/methods.md,
"Experiments and analysis").
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INTS = {"sequence", "block", "position", "trial", "label", "correct_choice", "choice", "response_label",
        "repeat_of", "rt", "time_elapsed", "trial_index"}
FLOATS = {"budget", "difficulty"}
BOOLS = {"feedback", "correct", "timed_out"}
LISTS = {"choice_names", "choice_labels"}
#: Larger files are not saved sessions (a long session is about 1 MB): skipped unread.
MAX_FILE_BYTES = 200_000_000
#: Columns every trial row of an lwise-build experiment has.
REQUIRED = ("participant", "condition", "sequence", "corpus", "experiment_build", "kind", "phase", "block",
            "position", "correct", "rt", "choice_names", "time_elapsed")


@dataclass(frozen=True)
class Skipped:
    """A file (or one session in it) that was not used, and why."""

    file: str
    reason: str


@dataclass
class Session:
    """One participant's saved data: every jsPsych row, typed, in recorded order."""

    file: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def first(self, key: str) -> Any:
        return next((r[key] for r in self.rows if r.get(key) is not None), None)

    @property
    def participant(self) -> str:
        return str(self.first("participant"))

    @property
    def trials(self) -> list[dict[str, Any]]:
        """The trial rows (``lwise_role == response``), in presentation order."""
        return sorted((r for r in self.rows if r.get("lwise_role") == "response"), key=lambda r: r["position"])

    @property
    def completed(self) -> bool:
        return any(r.get("lwise_role") == "end" for r in self.rows)


def read_responses(folder: Path, corpus: str) -> tuple[list[Session], list[Skipped]]:
    """Every session of ``corpus`` under ``folder`` (recursively, sorted), and what was skipped."""
    sessions: list[Session] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        for item in _sessions_in(path, name):
            problem = item if isinstance(item, Skipped) else _check(item, corpus, seen)
            if problem:
                skipped.append(problem)
            else:
                seen[item.participant] = name
                sessions.append(item)
    return sessions, skipped


def _sessions_in(path: Path, name: str) -> Iterator[Session | Skipped]:
    """The sessions a file holds, or one Skipped saying why it holds none."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        yield Skipped(name, f"{size / 1e6:.1f} MB: too large for saved session data (at most {MAX_FILE_BYTES / 1e6:.1f} MB)")
        return
    raw = path.read_bytes()
    if not raw.strip():
        yield Skipped(name, "empty file")
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield Skipped(name, "not a text file (not jsPsych CSV or JSON data)")
        return
    try:
        parsed = _parse(text)
    except RecursionError:  # the C decoder's own limit: hostile or broken, never a jsPsych file
        parsed = "JSON nested too deeply to be jsPsych rows"
    if isinstance(parsed, str):
        yield Skipped(name, parsed)
        return
    for i, rows in enumerate(parsed):
        label = name if len(parsed) == 1 else f"{name} (session {i + 1})"
        bad = next((r for r in rows if not isinstance(r, dict)), None)
        if bad is not None or not rows:
            yield Skipped(label, "not a list of jsPsych rows (objects)")
        elif not any("lwise_role" in r for r in rows):
            yield Skipped(label, "no lwise-build experiment rows (no lwise_role column): other data")
        else:
            yield Session(label, [typed(r) for r in rows])


def _parse(text: str) -> list[list[Any]] | str:
    """The row lists of JSON, JSON lines or CSV text, or the reason it is none of them."""
    stripped = text.lstrip()
    if stripped[:1] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            lines = _json_lines(text)
            return lines if lines else f"malformed JSON (line {exc.lineno}: {exc.msg})"
        return [data] if isinstance(data, list) else "JSON, but not a list of jsPsych rows"
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        rows = list(reader)
    except csv.Error as exc:
        return f"malformed CSV ({exc})"
    if not reader.fieldnames or "trial_type" not in reader.fieldnames:
        return "not jsPsych data (no trial_type column)"
    if any(None in r for r in rows):
        return "malformed CSV (a row has more values than the header)"
    return [rows]


def _json_lines(text: str) -> list[list[Any]] | None:
    """JSON lines (a JATOS export: one session's row list per line), or None if it is not that."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        data = [json.loads(ln) for ln in lines]
    except json.JSONDecodeError:
        return None
    return [d if isinstance(d, list) else [d] for d in data] if len(lines) > 1 else None


def typed(row: dict[str, Any]) -> dict[str, Any]:
    """A row with jsPsych's CSV text turned back into numbers, booleans, lists and None."""
    return {k: _value(k, v) for k, v in row.items()}


def _value(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value in ("", "null", "undefined"):
        return None
    try:
        if key in INTS:
            return int(float(value))
        if key in FLOATS:
            return float(value)
        if key in LISTS:
            return json.loads(value)
    except (ValueError, json.JSONDecodeError):
        return value
    if key in BOOLS:
        return {"true": True, "false": False}.get(value, value)
    return value


def _check(s: Session, corpus: str, seen: dict[str, str]) -> Skipped | None:
    """Why a session cannot be analysed (wrong corpus, missing columns, mixed, repeated), or None."""
    trials = [r for r in s.rows if r.get("lwise_role") == "response"]
    if not trials:
        return Skipped(s.file, "no trial rows (lwise_role=response): the session stopped before the first trial")
    missing = sorted({k for k in REQUIRED for r in trials if k not in r})
    if missing:
        return Skipped(s.file, f"trial rows lack columns {', '.join(missing)}")
    got = s.first("corpus")
    if got != corpus:
        return Skipped(s.file, f"data of corpus {got!r}, not {corpus!r}")
    people = {r["participant"] for r in trials}
    if len(people) > 1:
        return Skipped(s.file, f"rows of {len(people)} participants in one session")
    bad = [r["position"] for r in trials if not isinstance(r["correct"], bool) or not isinstance(r["position"], int)]
    if bad:
        return Skipped(s.file, f"malformed trial rows (correct/position unreadable at {len(bad)} rows)")
    if s.participant in seen:
        return Skipped(s.file, f"participant {s.participant!r} was already read from {seen[s.participant]} "
                               "(only the first session counts)")
    return None
