"""A participant's trial list for the jsPsych experiment: choices, attention checks, assignment.

Pure functions from one curriculum sequence's rows to the trial variables the page feeds its
timeline (docs/methods.md, "Experiments and analysis"): the choice layout (class names, their
labels or aliases, fixed or shuffled), catch trials (circle or triangle) and repeat trials (one
held-out natural image, or earlier images) inserted at seeded positions, and the participant ->
condition/sequence rule the page applies without a collector (FNV-1a hash).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config.experiment import ExperimentParams
from ..errors import UserError

#: Catch-trial shapes, in choice order (the reference's easy circle-vs-triangle check).
SHAPES = ("circle", "triangle")
#: Curriculum columns carried into every trial variable.
CARRIED = ("trial", "block", "phase", "feedback", "id", "label", "budget", "difficulty", "selection")


@dataclass(frozen=True)
class Design:
    """One participant sequence: the choice layout and the trial variables in presentation order."""

    choice_labels: list[int]  # class index per display position
    choice_names: list[str]  # button text (or key prompt) per display position
    trials: list[dict[str, Any]] = field(default_factory=list)


def choice_layout(classes: Sequence[str], p: ExperimentParams, rng: np.random.Generator) -> tuple[list[int], list[str]]:
    """Display order of the classes and the name shown for each (class name or a seeded alias)."""
    n = len(classes)
    order = list(range(n)) if p.choice_order == "fixed" else [int(i) for i in rng.permutation(n)]
    if p.choice_names == "classes":
        return order, [p.class_labels.get(classes[c], classes[c]) for c in order]
    picked = [p.aliases[int(i)] for i in rng.choice(len(p.aliases), size=n, replace=False)]
    return order, [picked[c] for c in order]


def check_design(p: ExperimentParams, classes: Sequence[str], blocks: int, where: str) -> None:
    """Params that depend on the corpus: enough aliases and keys, repeats for existing blocks."""
    n = len(classes)
    if p.choice_names == "aliases" and len(p.aliases) < n:
        raise UserError(f"{where}.aliases: {n} classes need {n} aliases, got {len(p.aliases)}")
    need = max(n, len(SHAPES) if p.catch_per_block else 0)
    if p.response == "keys" and len(p.keys) < need:
        raise UserError(f"{where}.keys: {need} choices need {need} keys, got {len(p.keys)}")
    if len(p.repeats_per_block) > blocks:
        raise UserError(f"{where}.repeats_per_block: {len(p.repeats_per_block)} entries, but the "
                        f"curricula have {blocks} blocks")
    unknown = sorted(set(p.class_labels) - set(classes))
    if unknown:
        raise UserError(f"{where}.class_labels: {unknown[0]!r} is not a class ({', '.join(classes)})")


def design(rows: Sequence[Mapping[str, Any]], classes: Sequence[str], images: Mapping[tuple[str, float], str],
           p: ExperimentParams, rng: np.random.Generator, held_out: Mapping[str, Any] | None = None) -> Design:
    """Trial variables of one sequence (``rows`` in presentation order) with attention trials.

    ``held_out`` (``id``, ``label``; natural, outside the sequence) is the image every repeat trial
    shows when ``p.repeat_image`` is ``held_out``.
    """
    labels, names = choice_layout(classes, p, rng)
    where = {c: i for i, c in enumerate(labels)}
    main = [_trial("main", r, classes, images, where) for r in rows]
    repeat = None
    if held_out is not None and p.repeat_image == "held_out":
        repeat = _trial("repeat", {**{k: None for k in CARRIED}, **held_out, "budget": 0.0, "selection": "held_out"},
                        classes, images, where)
    blocks = sorted({t["block"] for t in main})
    out: list[dict[str, Any]] = []
    for b, block in enumerate(blocks):
        trials = [t for t in main if t["block"] == block]
        n = _count(p.repeats_per_block, b)
        trials = _with_held_out(trials, repeat, n, rng) if repeat else _with_repeats(trials, out, n, rng)
        out += _with_catch(trials, p.catch_per_block, rng)
    for pos, t in enumerate(out):
        t["position"] = pos
    first = next((t["position"] for t in out if t.get("_held_out")), None)
    for t in out:
        t["repeat_of"] = t.pop("_original")["position"] if "_original" in t else None
        if t.pop("_held_out", False) and t["position"] != first:
            t["repeat_of"] = first
    return Design(labels, names, [dict(sorted(t.items())) for t in out])


def _trial(kind: str, r: Mapping[str, Any], classes: Sequence[str], images: Mapping[tuple[str, float], str],
           where: Mapping[int, int]) -> dict[str, Any]:
    return {"kind": kind, "shape": None, **{k: r[k] for k in CARRIED}, "label_name": classes[r["label"]],
            "image": images[(r["id"], float(r["budget"] or 0))], "correct_choice": where[r["label"]]}


def _with_held_out(trials: list[dict[str, Any]], repeat: Mapping[str, Any], n: int,
                   rng: np.random.Generator) -> list[dict[str, Any]]:
    """``n`` showings of the held-out image at seeded positions in a block (the reference's
    repeat trials: one image, the same every time)."""
    out = list(trials)
    base = trials[0] if trials else None
    for _ in range(n if base else 0):
        copy = {**repeat, "_held_out": True, "block": base["block"], "phase": base["phase"],
                "feedback": base["feedback"]}
        out.insert(int(rng.integers(len(out) + 1)), copy)
    return out


def _count(values: Sequence[int], index: int) -> int:
    return int(values[index]) if index < len(values) else 0


def _with_catch(trials: list[dict[str, Any]], n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``n`` catch trials at seeded positions in a block, shapes balanced (circle/triangle)."""
    if not n or not trials:
        return trials
    first = int(rng.integers(len(SHAPES)))
    shapes = [SHAPES[(first + i) % len(SHAPES)] for i in range(n)]
    shapes = [shapes[int(i)] for i in rng.permutation(n)]
    base = trials[0]
    out = list(trials)
    for shape in shapes:
        catch = {"kind": "catch", "block": base["block"], "phase": base["phase"],
                 "feedback": base["feedback"], "shape": shape, "correct_choice": SHAPES.index(shape),
                 **{k: None for k in ("trial", "id", "label", "label_name", "budget", "difficulty",
                                      "selection", "image")}}
        out.insert(int(rng.integers(len(out) + 1)), catch)
    return out


def _with_repeats(trials: list[dict[str, Any]], before: list[dict[str, Any]], n: int,
                  rng: np.random.Generator) -> list[dict[str, Any]]:
    """``n`` repeats of main trials shown earlier (earlier blocks, or earlier in this block)."""
    out = list(trials)
    for _ in range(n if out else 0):
        earliest = 0 if any(t["kind"] == "main" for t in before) else 1
        if earliest > len(out):
            break
        slot = int(rng.integers(earliest, len(out) + 1))
        shown = [t for t in before + out[:slot] if t["kind"] == "main"]
        original = shown[int(rng.integers(len(shown)))]
        repeat = {**original, "kind": "repeat", "_original": original, "block": out[0]["block"],
                  "phase": out[0]["phase"], "feedback": out[0]["feedback"]}
        out.insert(slot, repeat)
    return out


# ---------------------------------------------------------------- assignment -----------------
def condition_weights(curricula: Mapping[str, Any], names: Sequence[str]) -> dict[str, float]:
    """Assignment weight per condition: the curriculum's ``weight`` (its condition slots), 1 for a
    curriculum the params do not name."""
    out = {n: float(getattr(curricula.get(n), "weight", 1.0) or 0.0) for n in names}
    if names and sum(out.values()) <= 0:
        raise UserError("experiment: the condition weights sum to 0")
    return out
