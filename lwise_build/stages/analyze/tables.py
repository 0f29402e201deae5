"""The tables ``analyze`` writes: columns, per-participant and per-trial rows, CSV, Psych-DS.

Plain functions of sessions' rows (docs/methods.md, "Experiments and analysis"); the stage in
:mod:`.analyze` decides what is included.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...config.responses import RESPONSE_COLUMNS
from ...io.psychds import write_psychds
from ...io.responses import Session
from ...ops.human_analysis import participant_scores, training_time_reference, training_time_screens

PARTICIPANT_COLUMNS = ("participant", "file", "condition", "sequence", "experiment_build", "completed", "loads",
                       "n_test", "test_accuracy", "train_accuracy", "catch_accuracy", "n_catch",
                       "repeat_consistency", "n_repeat", "timeouts", "median_rt_ms", "training_time_reference_s",
                       "training_time_screens_s", "included", "exclusion")
_INTERVALS = ("accuracy", "above_chance", "gain_vs_control", "relative_training_time_reference",
              "relative_training_time_screens")
CONDITION_COLUMNS = ("condition", "participants", "trials",
                     *(f"{k}_{s}" for k in _INTERVALS[:3] for s in ("mean", "low", "high")),
                     "chi2_vs_control", "p_vs_control", "mean_training_time_reference_s",
                     "mean_training_time_screens_s", *(f"{k}_{s}" for k in _INTERVALS[3:] for s in ("mean", "low", "high")))
TRIAL_COLUMNS = ("participant", *[c for c in RESPONSE_COLUMNS if c != "participant"])


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A small CSV with fixed columns; floats to 6 significant digits, missing values empty."""
    def cell(v: Any) -> Any:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.6g}"
        return "" if v is None else v

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[cell(r.get(c)) for c in columns] for r in rows])


def participant_row(s: Session) -> dict[str, Any]:
    """One session's scores and both training times (inclusion is decided by the stage)."""
    trials = s.trials
    loads = {r.get("load") for r in s.rows if r.get("load") is not None}
    return {"participant": s.participant, "file": s.file, "condition": s.first("condition"),
            "sequence": s.first("sequence"), "experiment_build": s.first("experiment_build"),
            "completed": s.completed, "loads": len(loads) or 1, **participant_scores(trials),
            "training_time_reference_s": training_time_reference(trials),
            "training_time_screens_s": training_time_screens(s.rows)}


def trial_rows(s: Session, person: Mapping[str, Any], alias: str | None = None) -> list[dict[str, Any]]:
    """The session's trials with the response-column values (and its feedback time); ``alias``
    replaces the participant id (de-identified data)."""
    feedback = {r.get("position"): r.get("rt") for r in s.rows if r.get("lwise_role") == "feedback"}
    out = []
    for t in s.trials:
        row = {c: t.get(c) for c in TRIAL_COLUMNS}
        row.update(participant=alias or s.participant, feedback_ms=feedback.get(t["position"]),
                   included=person["included"], exclusion=person["exclusion"])
        out.append(row)
    return out


def write_responses_dataset(folder: Path, corpus: str, sessions: Sequence[Session],
                            people: Sequence[Mapping[str, Any]], build: str | None) -> Path:
    """The de-identified trial data of every session read, in the Psych-DS layout."""
    rows = [r for k, (s, p) in enumerate(zip(sessions, people, strict=True))
            for r in trial_rows(s, p, alias=f"p{k + 1:03d}")]
    return write_psychds(
        folder, corpus=corpus, rows=rows, columns=RESPONSE_COLUMNS,
        name=f"{corpus}: behavioural responses (lwise-build experiment)",
        description=(f"Trial-level responses of {len(sessions)} sessions of the lwise-build experiment of corpus "
                     f"{corpus} (experiment build {build}): one row per trial (main, catch and repeat trials), "
                     "participants pseudonymised, with inclusion and the reason for any exclusion."),
        extra={"keywords": ["psychophysics", "category learning", "L-WISE"]})


def flat_effect(name: str, effect: Mapping[str, Any]) -> dict[str, Any]:
    """One CSV row per condition: nested intervals as ``<key>_mean/_low/_high`` columns."""
    row: dict[str, Any] = {"condition": name}
    for k, v in effect.items():
        if isinstance(v, dict):
            row |= {f"{k}_{s}": x for s, x in v.items()}
        else:
            row[k] = v
    return row
