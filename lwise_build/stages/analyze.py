"""``lwise-build analyze <corpus> --responses DIR``: saved jsPsych data back into numbers.

Writes ``data/<corpus>/analysis/``: ``participants.csv`` (scores and exclusions), ``conditions.csv``
and ``metrics.json`` (accuracy with bootstrap intervals, accuracy above chance, the L-WISE gain over
control, relative training time), ``learning_curves.csv``, ``trials.csv``, ``calibration.json`` and
``calibration.csv`` (score -> predicted human accuracy), ``figures/`` and ``report.json`` (every file
read, every file skipped with its reason). The methods are docs/methods.md, "Experiments and analysis".
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import console
from ..config.schema import to_plain
from ..errors import UserError
from ..io import analysis_figures as figures
from ..io.responses import Session, read_responses
from ..io.staging import write_json
from ..io.tables import has_table, read_features, read_table
from ..ops.human_analysis import (
    binned_accuracy,
    block_accuracy,
    calibrate,
    condition_effects,
    participant_scores,
    predicted_accuracy,
    training_time,
)
from ..ops.recognisability import clean
from .base import Stage

PARTICIPANT_COLUMNS = ("participant", "file", "condition", "sequence", "experiment_build", "completed", "n_test",
                       "test_accuracy", "train_accuracy", "catch_accuracy", "n_catch", "repeat_consistency",
                       "n_repeat", "timeouts", "median_rt_ms", "training_time_s", "included", "exclusion")
CONDITION_COLUMNS = ("condition", "participants", *(f"{k}_{s}" for k in ("accuracy", "above_chance",
                     "gain_vs_control") for s in ("mean", "low", "high")), "mean_training_time_s",
                     *(f"relative_training_time_{s}" for s in ("mean", "low", "high")))
TRIAL_COLUMNS = ("participant", "condition", "sequence", "position", "trial", "block", "phase", "kind", "id",
                 "label", "budget", "difficulty", "choice", "response_label", "correct", "timed_out", "rt")


def write_csv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]) -> None:
    """A small CSV with fixed columns; floats to 6 significant digits, missing values empty."""
    def cell(v: Any) -> Any:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.6g}"
        return "" if v is None else v

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[cell(r.get(c)) for c in columns] for r in rows])


class Analyze(Stage):
    """Per participant, per condition and calibration results from a folder of saved sessions."""

    name, output, section = "analyze", "analysis", "analysis"

    def __init__(self, params: Any, corpus: str, responses: str | Path):
        super().__init__(params, corpus)
        self.responses = Path(responses)

    def prepare(self) -> None:
        if not self.responses.is_dir():
            raise UserError(f"{self.responses}: not a folder of response files")
        self.sessions, self.skipped = read_responses(self.responses, self.ctx.corpus)
        for s in self.skipped:
            console.warn(f"analyze: skipped {s.file}: {s.reason}")
        manifest = self.ctx.dir("experiment") / "manifest.json"
        self.manifest = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
        self.notes: list[str] = []

    def write(self, tmp: Path) -> None:
        p = self.p
        people = [self._participant(s) for s in self.sessions]
        kept = [(row, s) for row, s in zip(people, self.sessions, strict=True) if row["included"]]
        order = [c for c in self.manifest.get("order", []) if any(r["condition"] == c for r, _ in kept)]
        order += sorted({r["condition"] for r, _ in kept} - set(order))
        chance = 1.0 / len(self.sessions[0].first("choice_names")) if self.sessions else math.nan
        acc = {c: np.array([r["test_accuracy"] for r, _ in kept if r["condition"] == c]) for c in order}
        secs = {c: np.array([r["training_time_s"] for r, _ in kept if r["condition"] == c]) for c in order}
        if order and p.control not in order:
            self.notes.append(f"no included participants in the control condition {p.control!r}: no gains")
        effects = condition_effects(acc, secs, chance, p.control, p.bootstrap, p.ci, p.seed)
        curves = self._curves(kept, order)
        self.calibration = self._calibration([s for r, s in kept], tmp)
        write_csv(tmp / "participants.csv", people, PARTICIPANT_COLUMNS)
        write_csv(tmp / "trials.csv", [{**t, "included": r["included"]} for r, s in zip(people, self.sessions, strict=True)
                                       for t in s.trials], [*TRIAL_COLUMNS, "included"])
        write_csv(tmp / "conditions.csv", [_flat(c, e) for c, e in effects.items()], CONDITION_COLUMNS)
        write_csv(tmp / "learning_curves.csv", curves, ("condition", "block", "phase", "accuracy", "participants"))
        self.summary_data = clean({
            "participants": {"read": len(people), "included": len(kept), "excluded": len(people) - len(kept)},
            "files_skipped": len(self.skipped), "chance": chance, "control": p.control, "conditions": effects,
            "calibration": {k: v for k, v in (self.calibration or {}).items() if k != "fits"} or None})
        write_json(tmp / "metrics.json", self.summary_data)
        if self.calibration:
            write_json(tmp / "calibration.json", self.calibration)
        write_json(tmp / "report.json", self._report())
        self._figures(tmp / "figures", effects, curves, chance)

    def metrics(self) -> dict[str, Any]:
        return self.summary_data

    def summary(self) -> str:
        inc = self.summary_data["participants"]
        return (f"{inc['read']} sessions ({inc['excluded']} excluded), {len(self.skipped)} files skipped"
                + (f", calibration on {self.calibration['score']}" if self.calibration else ""))

    # ------------------------------------------------------------ pieces ---------------------
    def _participant(self, s: Session) -> dict[str, Any]:
        p, trials = self.p, s.trials
        row = {"participant": s.participant, "file": s.file, "condition": s.first("condition"),
               "sequence": s.first("sequence"), "experiment_build": s.first("experiment_build"),
               "completed": s.completed, **participant_scores(trials), "training_time_s": training_time(s.rows)}
        build = self.manifest.get("build")
        if build and row["experiment_build"] != build:
            self.notes.append(f"{s.file}: recorded with experiment build {row['experiment_build']}, "
                              f"the current build is {build}")
        reasons = []
        if p.require_complete and not s.completed:
            reasons.append("incomplete session")
        if row["n_catch"] and row["catch_accuracy"] < p.min_catch_accuracy:
            reasons.append(f"catch accuracy {row['catch_accuracy']:.2f} < {p.min_catch_accuracy:g}")
        if not row["n_test"]:
            reasons.append("no test trials")
        return {**row, "included": not reasons, "exclusion": "; ".join(reasons)}

    def _curves(self, kept: list[tuple[dict[str, Any], Session]], order: list[str]) -> list[dict[str, Any]]:
        out = []
        for c in order:
            per = [(block_accuracy(s.trials), {t["block"]: t["phase"] for t in s.trials}) for r, s in kept
                   if r["condition"] == c]
            for b in sorted({b for acc, _ in per for b in acc}):
                vals = [acc[b] for acc, _ in per if b in acc]
                phase = next(ph[b] for _, ph in per if b in ph)
                out.append({"condition": c, "block": b, "phase": phase, "accuracy": float(np.mean(vals)),
                            "participants": len(vals)})
        return out

    def _calibration(self, sessions: list[Session], tmp: Path) -> dict[str, Any] | None:
        """Fit every score column on natural test trials of the calibration conditions."""
        p, scores_dir = self.p, self.ctx.dir("scores")
        if not has_table(scores_dir):
            self.notes.append(f"no scores table at {scores_dir}: no calibration")
            return None
        conds = list(p.calibration_conditions or [p.control])
        trials = [t for s in sessions if s.first("condition") in conds for t in s.trials
                  if t["kind"] == "main" and t["phase"] == "test" and not t["budget"]]
        cols = [k for k, f in read_features(scores_dir).items()
                if getattr(f, "dtype", "").startswith("float") and k not in ("label",)]
        chosen = p.calibration_score or self._default_score(cols)
        if p.calibration_score and chosen not in cols:
            raise UserError(f"{self.where}.calibration_score: {chosen!r} is not a score column "
                            f"({', '.join(cols)})")
        if not chosen:
            self.notes.append(f"{scores_dir} has no score columns: no calibration")
            return None
        if len(trials) < 2:
            self.notes.append(f"fewer than 2 natural test trials in {', '.join(conds)}: no calibration")
            return None
        table = read_table(scores_dir, columns=["id", "label", "split", *cols]).to_pylist()
        by_id = {r["id"]: r for r in table}
        x = {c: np.array([_num(by_id.get(t["id"], {}).get(c)) for t in trials]) for c in cols}
        fits = calibrate(x, np.array([t["correct"] for t in trials]), [t["id"] for t in trials], p.folds, p.seed)
        best = fits[chosen]
        self._calibration_table(tmp, table, trials, chosen, best)
        self._x, self._y = x[chosen], np.array([t["correct"] for t in trials], dtype=float)
        return clean({"score": chosen, "slope": best["slope"], "intercept": best["intercept"],
                      "formula": "predicted_accuracy = 1 / (1 + exp(-(slope * score + intercept)))",
                      "lr_auc_in_sample": best.get("lr_auc_in_sample"), "lr_auc_cv": best.get("lr_auc_cv"),
                      "conditions": conds, "trials": len(trials), "participants": len(
                          {s.participant for s in sessions if s.first("condition") in conds}),
                      "responses_sha256": self._digest(sessions), "folds": p.folds,
                      "experiment_builds": sorted({str(s.first("experiment_build")) for s in sessions}), "fits": fits,
                      "params": to_plain(p)})

    def _default_score(self, cols: list[str]) -> str:
        alias = next(iter(self.ctx.spec.score.models), None)
        if alias and f"{alias}_gt_logit" in cols:
            return f"{alias}_gt_logit"
        return next((c for c in cols if c.endswith("_gt_logit")), "")

    def _calibration_table(self, tmp: Path, table: list[dict[str, Any]], trials: list[dict[str, Any]],
                           col: str, fit: dict[str, Any]) -> None:
        seen: dict[str, list[bool]] = {}
        for t in trials:
            seen.setdefault(t["id"], []).append(t["correct"])
        pred = predicted_accuracy(np.array([_num(r[col]) for r in table]), fit["slope"], fit["intercept"])
        rows = [{"id": r["id"], "label": r["label"], "split": r["split"], "score": _num(r[col]),
                 "predicted_accuracy": float(q), "observed_accuracy": float(np.mean(seen[r["id"]])) if r["id"] in seen else None,
                 "trials": len(seen.get(r["id"], []))} for r, q in zip(table, pred, strict=True)]
        write_csv(tmp / "calibration.csv", rows, ("id", "label", "split", "score", "predicted_accuracy",
                                                  "observed_accuracy", "trials"))

    def _digest(self, sessions: list[Session]) -> str:
        h = hashlib.sha256()
        for s in sorted(sessions, key=lambda s: s.file):
            h.update(s.file.encode() + b"\0" + json.dumps(s.rows, sort_keys=True, default=str).encode())
        return h.hexdigest()

    def _report(self) -> dict[str, Any]:
        return {"responses": str(self.responses), "sessions": [s.file for s in self.sessions],
                "skipped": [{"file": s.file, "reason": s.reason} for s in self.skipped], "notes": self.notes}

    def _figures(self, folder: Path, effects: dict[str, Any], curves: list[dict[str, Any]], chance: float) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if not effects:
            return
        names = list(effects)
        acc = [effects[n]["accuracy"] for n in names]
        figures.interval_bars(names, [a["mean"] for a in acc], [a["low"] for a in acc], [a["high"] for a in acc],
                              folder / "accuracy.png", title=f"{self.ctx.corpus}: test accuracy ({self.p.ci:.0%} CI)",
                              ylabel="test accuracy", reference=chance, reference_label="chance")
        blocks = sorted({r["block"] for r in curves})
        series = {n: [next((r["accuracy"] for r in curves if r["condition"] == n and r["block"] == b), math.nan)
                      for b in blocks] for n in names}
        figures.block_curves(blocks, series, folder / "learning_curves.png",
                             title=f"{self.ctx.corpus}: accuracy per block", ylabel="accuracy (main trials)")
        if self.calibration:
            c, ok = self.calibration, np.isfinite(self._x)
            grid = np.linspace(self._x[ok].min(), self._x[ok].max(), 100)
            figures.fitted_curve(binned_accuracy(self._x[ok], self._y[ok]), (grid, predicted_accuracy(grid, c["slope"], c["intercept"])),
                                 folder / "calibration.png", title=f"calibration ({', '.join(c['conditions'])})",
                                 xlabel=c["score"], ylabel="P(correct), natural test trials")


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _flat(name: str, effect: dict[str, Any]) -> dict[str, Any]:
    """One CSV row per condition: nested intervals as ``<key>_mean/_low/_high`` columns."""
    row: dict[str, Any] = {"condition": name}
    for k, v in effect.items():
        if isinstance(v, dict):
            row |= {f"{k}_{s}": x for s, x in v.items()}
        else:
            row[k] = v
    return row
