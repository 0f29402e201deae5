"""Read saved jsPsych data (CSV, JSON, JSON lines) from an lwise-build experiment.

Each file holds one session: a CSV or JSON list of rows, or JSON lines of rows (the collector's
and JATOS's appended batches); a JATOS export with one JSON list per line holds one session per
line. Rows come back typed (jsPsych's CSV writes every value as text), each saved row once (rows
re-sent after a reload carry the same ``lwise_key``), in recorded order. A file that is not such
data is not dropped silently: it is returned as :class:`Skipped` with the reason (docs/methods.md,
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
        "repeat_of", "rt", "time_elapsed", "trial_index", "load", "index", "screen_w", "screen_h", "window_w",
        "window_h", "stimulus_px"}
FLOATS = {"budget", "difficulty", "t_page_ms", "session_ms", "device_pixel_ratio"}
BOOLS = {"feedback", "correct", "timed_out"}
LISTS = {"choice_names", "choice_labels"}
#: Larger files are not saved sessions (a long session is about 1 MB): skipped unread (the
#: default of analysis.max_file_mb).
MAX_FILE_BYTES = 200_000_000
#: Deepest nesting of lists and objects a file of rows may have (jsPsych rows are shallow).
MAX_DEPTH = 32
#: Files a `lwise-build serve` store keeps beside the sessions (its state, not trial data).
COLLECTOR_STATE = {"collector.json": "the collector's store description (not trial data)",
                   "assignments.jsonl": "the collector's assignment log (not trial data)",
                   ".lock": "the collector's lock file (not trial data)"}
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


def read_responses(folder: Path, corpus: str, max_bytes: int | None = None) -> tuple[list[Session], list[Skipped]]:
    """Every session of ``corpus`` under ``folder`` (recursively, sorted), and what was skipped;
    files over ``max_bytes`` (default :data:`MAX_FILE_BYTES`) are skipped unread."""
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    sessions: list[Session] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    store = (Path(folder) / "collector.json").is_file()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if store and name in COLLECTOR_STATE:
            skipped.append(Skipped(name, COLLECTOR_STATE[name]))
            continue
        for item in _sessions_in(path, name, max_bytes):
            problem = item if isinstance(item, Skipped) else _check(item, corpus, seen)
            if problem:
                skipped.append(problem)
            else:
                seen[item.participant] = name
                sessions.append(item)
    return sessions, skipped


def _sessions_in(path: Path, name: str, max_bytes: int) -> Iterator[Session | Skipped]:
    """The sessions a file holds, or one Skipped saying why it holds none."""
    size = path.stat().st_size
    if size > max_bytes:
        yield Skipped(name, f"{size / 1e6:.1f} MB: too large for saved session data (at most {max_bytes / 1e6:.1f} MB)")
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
    parsed = _parse(text)
    if isinstance(parsed, str):
        yield Skipped(name, parsed)
        return
    for i, rows in enumerate(parsed):
        label = name if len(parsed) == 1 else f"{name} (session {i + 1})"
        bad = next((r for r in rows if not isinstance(r, dict)), None)
        if bad is not None or not rows:
            yield Skipped(label, "not a list of jsPsych rows (objects)")
        elif _depth(rows) > MAX_DEPTH:
            yield Skipped(label, f"values nested more than {MAX_DEPTH} levels deep: not jsPsych rows")
        elif not any("lwise_role" in r for r in rows):
            yield Skipped(label, "no lwise-build experiment rows (no lwise_role column): other data")
        else:
            yield _unique(label, [typed(r) for r in rows])


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (walked without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _unique(label: str, rows: list[dict[str, Any]]) -> Session | Skipped:
    """Each saved row once, in recorded order (by page load, file order within one): a batch
    re-sent after a reload repeats rows under the same ``lwise_key``; differing copies are an error."""
    keyed: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = row.get("lwise_key")
        if key is None:
            continue
        if key in keyed and keyed[key] != row:
            return Skipped(label, f"two different rows saved under the key {str(key)[:60]!r}")
        keyed.setdefault(key, row)
    if keyed:
        unkeyed = [r for r in rows if r.get("lwise_key") is None]
        rows = sorted(keyed.values(), key=lambda r: _int(r.get("load"))) + unkeyed
    return Session(label, rows)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else -1


def _parse(text: str) -> list[list[Any]] | str:
    """The row lists of JSON, JSON lines or CSV text, or the reason it is none of them."""
    stripped = text.lstrip()
    if stripped[:1] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            lines = _json_lines(text)
            return lines if lines else f"malformed JSON (line {exc.lineno}: {exc.msg})"
        except RecursionError:
            return "JSON nested too deeply to be jsPsych rows"
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
    """JSON lines, or None if the text is not that: lines of row objects are one session (the
    collector's and JATOS's appended batches); lines of row lists are one session each (a JATOS
    export of several results)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        data = [json.loads(ln) for ln in lines]
    except (json.JSONDecodeError, RecursionError):
        return None
    if len(lines) < 2:
        return None
    if all(isinstance(d, dict) for d in data):
        return [data]
    return [d if isinstance(d, list) else [d] for d in data]


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
    except (ValueError, OverflowError, RecursionError):
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
