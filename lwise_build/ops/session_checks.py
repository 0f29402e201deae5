"""Whether a saved session belongs to the experiment it claims: pure checks on plain rows.

``analyze`` counts a session only when it was recorded by this experiment build (unless allowed),
names one of its conditions and sequences, every trial is the trial the sequence has at that
position, each ``correct`` agrees with the recorded choice, and it is not another participant's
session under a new id (docs/methods.md, "Experiments and analysis"). Each check returns the
reason a session is excluded, or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Trial-variable columns whose value must equal the sequence file's at that position.
COMPARED = ("kind", "trial", "block", "phase", "id", "label", "budget", "image", "shape", "correct_choice",
            "repeat_of")


def claim_problem(first: Mapping[str, Any], manifest: Mapping[str, Any], allow_build_mismatch: bool) -> str | None:
    """The build, condition and sequence a session claims, against the experiment's manifest."""
    build, got = manifest.get("build"), first.get("experiment_build")
    if got != build and not allow_build_mismatch:
        return (f"recorded with experiment build {got}, not this experiment's build {build} "
                "(--allow-build-mismatch to count it)")
    condition, conditions = first.get("condition"), manifest.get("conditions", {})
    if condition not in conditions:
        return f"condition {str(condition)[:40]!r} is not in this experiment ({', '.join(conditions)})"
    count, seq = len(conditions[condition]["sequences"]), first.get("sequence")
    if not isinstance(seq, int) or not 0 <= seq < count:
        return f"sequence {str(seq)[:20]!r} does not exist (condition {condition} has {count})"
    return None


def layout_problem(first: Mapping[str, Any], layout: Mapping[str, Any]) -> str | None:
    """The choice labels and names a session recorded, against its sequence's layout."""
    for key in ("choice_labels", "choice_names"):
        if key in layout and list(first.get(key) or []) != list(layout[key]):
            return f"{key} {first.get(key)!r:.80} are not those of its sequence ({layout[key]!r:.80})"
    return None


def trial_problem(trials: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]],
                  labels: Sequence[int]) -> str | None:
    """Every trial row against the sequence (same trial at its position, each position once) and
    ``correct`` / ``response_label`` against the recorded choice."""
    seen: set[int] = set()
    for t in trials:
        pos = t.get("position")
        if not isinstance(pos, int) or not 0 <= pos < len(expected):
            return f"a trial at position {str(pos)[:20]} is not in the sequence ({len(expected)} trials)"
        if pos in seen:
            return f"position {pos} recorded twice"
        seen.add(pos)
        want = expected[pos]
        bad = next((k for k in COMPARED if k in want and t.get(k) != want[k]), None)
        if bad:
            return (f"the trial at position {pos} is not the sequence's ({bad} {str(t.get(bad))[:40]!r}, "
                    f"expected {str(want[bad])[:40]!r})")
        problem = _response_problem(t, labels)
        if problem:
            return f"position {pos}: {problem}"
    return None


def _response_problem(t: Mapping[str, Any], labels: Sequence[int]) -> str | None:
    choice = t.get("choice")
    if t.get("correct") != (choice is not None and choice == t.get("correct_choice")):
        return f"correct={t.get('correct')} contradicts choice {choice} (correct choice {t.get('correct_choice')})"
    if t.get("kind") != "catch" and choice is not None:
        want = labels[choice] if isinstance(choice, int) and 0 <= choice < len(labels) else None
        if t.get("response_label") != want:
            return f"response_label {t.get('response_label')} contradicts choice {choice}"
    return None


def response_signature(first: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> tuple:
    """What two copies of one session share whatever the participant id: the sequence, and each
    trial's position, choice and response time."""
    return (first.get("condition"), first.get("sequence"),
            tuple((t.get("position"), t.get("choice"), t.get("rt")) for t in trials))


def duplicate_reasons(signatures: Sequence[tuple[str, str, tuple]]) -> dict[int, str]:
    """Index -> reason for every session (participant, file, signature) whose signature an earlier
    session under another participant id already has."""
    first: dict[tuple, tuple[str, str]] = {}
    out = {}
    for i, (participant, file, sig) in enumerate(signatures):
        if sig in first and first[sig][0] != participant:
            other, where = first[sig]
            out[i] = (f"the same sequence and responses as participant {other[:40]!r} ({where}): "
                      "a duplicate under another id")
        first.setdefault(sig, (participant, file))
    return out
