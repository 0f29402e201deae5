"""The collector's store: balanced assignment and append-only, fsynced trial files.

A folder (``lwise-build serve --store``) holding ``collector.json`` (the experiment build it
serves), ``assignments.jsonl`` (one line per participant: index, condition, sequence) and
``sessions/<condition>-<sequence>-<id hash>.jsonl`` (every saved row, one JSON object per line).
Each new participant gets the next unused participant index of the blocked design (condition =
index mod slots, as the reference server; ``config.curricula.participant_condition``); a
returning id gets its own assignment back. A row is stored once per ``lwise_key`` (a batch re-sent
after a reload adds nothing); every write is flushed and fsynced before it is acknowledged, and
survives a restart. One lock serialises writers; a second server on the same store is refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..config.curricula import participant_condition
from ..errors import UserError

MAX_KEY = 200


class StoreError(Exception):
    """A request the store refuses: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _lines(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines of an append-only file; a torn last line (a crash mid-write) is cut."""
    if not path.is_file():
        return []
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if end < len(raw):
        with path.open("r+b") as f:
            f.truncate(end)
    out = []
    for i, line in enumerate(raw[:end].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except (ValueError, RecursionError):
            raise UserError(f"{path}:{i}: not a JSON line; the store is damaged (move that line aside)") from None
    return out


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    """Append JSON lines and fsync them (and, for a new file, its folder)."""
    new = not path.exists()
    data = "".join(json.dumps(r, separators=(",", ":"), allow_nan=False) + "\n" for r in records).encode()
    with path.open("ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if new:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class CollectorStore:
    """Assignments and trial rows of one experiment build in ``root`` (thread-safe)."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root, self.manifest = Path(root), manifest
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "sessions").mkdir(exist_ok=True)
        self._lockfile = (self.root / ".lock").open("w")
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lockfile.close()
            raise UserError(f"{self.root}: another collector is using this store; stop it or pass another --store") from None
        self._lock = threading.Lock()
        self._curricula = {n: SimpleNamespace(weight=int(c["weight"]), sequences=len(c["sequences"]))
                           for n, c in manifest["conditions"].items()}
        self._describe()
        self.assigned: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, set[str]] = {}
        self.summary: dict[str, list[dict[str, Any]]] = {}
        self.ended: set[str] = set()
        self.loads: dict[str, int] = {}
        for a in _lines(self.root / "assignments.jsonl"):
            self._remember(a)
            for row in _lines(self._session(a)):
                self._note(a["participant"], row)

    def close(self) -> None:
        self._lockfile.close()

    def _describe(self) -> None:
        """``collector.json``: refuse a store that holds another build's sessions."""
        path, build = self.root / "collector.json", self.manifest.get("build")
        if path.is_file():
            have = json.loads(path.read_text(encoding="utf-8")).get("build")
            if have != build:
                raise UserError(f"{self.root}: this store holds sessions of experiment build {have}, but the experiment "
                                f"is now build {build}; pass another --store (analyze each with its own build)")
            return
        desc = {"collector": "lwise-build", "corpus": self.manifest.get("corpus"), "build": build,
                "slots": [n for n, c in self._curricula.items() for _ in range(c.weight)]}
        path.write_text(json.dumps(desc, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def _session(self, a: dict[str, Any]) -> Path:
        digest = hashlib.sha256(a["participant"].encode()).hexdigest()[:12]
        return self.root / "sessions" / f"{a['condition']}-{a['sequence']:03d}-{digest}.jsonl"

    def _remember(self, a: dict[str, Any]) -> None:
        self.assigned[a["participant"]] = a
        self.keys.setdefault(a["participant"], set())
        self.summary.setdefault(a["participant"], [])

    def _note(self, participant: str, row: dict[str, Any]) -> None:
        self.keys[participant].add(row["lwise_key"])
        if isinstance(row.get("load"), int):
            self.loads[participant] = max(self.loads.get(participant, 0), row["load"])
        if row.get("lwise_role") == "response":
            self.summary[participant].append({k: row.get(k) for k in ("position", "kind", "phase", "correct")})
        if row.get("lwise_role") == "end":
            self.ended.add(participant)

    # ------------------------------------------------------------ assignment -----------------
    def assign(self, participant: str, source: str = "url", fixed: str | None = None,
               condition: str | None = None, sequence: Any = None) -> dict[str, Any]:
        """The participant's assignment (an earlier one if they return) and what is saved of it."""
        if not isinstance(participant, str) or not participant or len(participant) > MAX_KEY:
            raise StoreError(400, "participant: a non-empty id of at most 200 characters is required")
        with self._lock:
            a = self.assigned.get(participant)
            if a is None:
                a = {"participant": participant, "source": str(source)[:20], **self._pick(fixed, condition, sequence)}
                _append(self.root / "assignments.jsonl", [a])
                self._remember(a)
            return {**a, "trials": list(self.summary[participant]), "completed": participant in self.ended,
                    "loads": self.loads.get(participant, 0)}

    def _taken(self) -> set[tuple[str, int]]:
        return {(a["condition"], a["sequence"]) for a in self.assigned.values()}

    def _pick(self, fixed: str | None, condition: str | None, sequence: Any) -> dict[str, Any]:
        taken, names = self._taken(), list(self._curricula)
        wanted = condition or fixed
        if wanted is not None and wanted not in self._curricula:
            raise StoreError(400, f"condition {str(wanted)[:40]!r} is not in this experiment ({', '.join(names)})")
        if fixed and condition and condition != fixed:
            raise StoreError(400, f"this page runs condition {fixed} only")
        if wanted is not None and sequence not in (None, ""):
            seq = int(sequence) if str(sequence).isdigit() else -1
            if not 0 <= seq < self._curricula[wanted].sequences or (wanted, seq) in taken:
                raise StoreError(409, f"sequence {str(sequence)[:20]} of {wanted} does not exist or is taken")
            return {"condition": wanted, "sequence": seq, "how": "url", "index": None}
        if wanted is not None:
            free = [s for s in range(self._curricula[wanted].sequences) if (wanted, s) not in taken]
            if not free:
                raise StoreError(409, f"every sequence of condition {wanted} has been handed out")
            return {"condition": wanted, "sequence": free[0], "how": "url" if condition else "page", "index": None}
        return self._next_index(taken)

    def _next_index(self, taken: set[tuple[str, int]]) -> dict[str, Any]:
        """The lowest participant index not yet used whose sequence exists and is free."""
        used = {a["index"] for a in self.assigned.values() if a.get("index") is not None}
        slots = sum(c.weight for c in self._curricula.values())
        limit = slots * (max(c.sequences // c.weight + 1 for c in self._curricula.values()) + 1)
        for index in range(limit):
            if index in used:
                continue
            name, seq = participant_condition(self._curricula, index)
            if seq < self._curricula[name].sequences and (name, seq) not in taken:
                return {"condition": name, "sequence": seq, "how": "collector", "index": index}
        raise StoreError(409, "the study is full: every participant sequence has been handed out")

    # ------------------------------------------------------------ rows -----------------------
    def append(self, participant: str, rows: Any) -> dict[str, int]:
        """Store the rows whose key is new for this participant (fsynced); returns the counts."""
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise StoreError(400, "rows: a list of objects is required")
        for r in rows:
            key = r.get("lwise_key")
            if not isinstance(key, str) or not key or len(key) > MAX_KEY:
                raise StoreError(400, "every row needs an lwise_key (text of at most 200 characters)")
            if r.get("participant", participant) != participant:
                raise StoreError(400, "a row of another participant")
        with self._lock:
            a = self.assigned.get(participant)
            if a is None:
                raise StoreError(404, f"participant {participant[:40]!r} has no assignment (POST api/assign first)")
            fresh, seen = [], set(self.keys[participant])
            for r in rows:
                if r["lwise_key"] not in seen:
                    seen.add(r["lwise_key"])
                    fresh.append(r)
            if fresh:
                _append(self._session(a), fresh)
                for r in fresh:
                    self._note(participant, r)
            return {"stored": len(self.keys[participant]), "added": len(fresh)}
