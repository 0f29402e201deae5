"""``lwise-build analyze <corpus> --responses DIR``: saved jsPsych data back into numbers.

Writes ``data/<corpus>/analysis/``: ``participants.csv`` (scores and exclusions), ``conditions.csv``
and ``metrics.json`` (accuracy with bootstrap intervals, accuracy above chance, the L-WISE gain over
control with a chi-square test, relative training time in both definitions), ``learning_curves.csv``,
``trials.csv``, ``calibration.json`` and ``calibration.csv`` (score -> predicted human accuracy),
``psychds/`` (the de-identified trial data, Psych-DS), ``figures/`` and ``report.json`` (every file
read, every file skipped and every session excluded, with the reason). Only sessions that belong to
the built experiment count. The methods are docs/methods.md, "Experiments and analysis".
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ... import console
from ...config.schema import to_plain
from ...errors import UserError
from ...io import analysis_figures as figures
from ...io.responses import Session, read_responses
from ...io.staging import write_json
from ...io.tables import has_table, read_features, read_table
from ...ops import session_checks as checks
from ...ops.calibration import CalibrationSettings, binned_accuracy, calibrate, predicted_accuracy
from ...ops.human_analysis import ConditionData, EffectSettings, block_accuracy, condition_effects
from ...ops.recognisability import clean
from ..base import Stage
from .tables import (
    CONDITION_COLUMNS,
    PARTICIPANT_COLUMNS,
    TRIAL_COLUMNS,
    flat_effect,
    participant_row,
    trial_rows,
    write_csv,
    write_responses_dataset,
)


class Analyze(Stage):
    """Per participant, per condition and calibration results from a folder of saved sessions."""

    name, output, section = "analyze", "analysis", "analysis"

    def __init__(self, params: Any, corpus: str, responses: str | Path, allow_build_mismatch: bool = False):
        super().__init__(params, corpus)
        self.responses = Path(responses)
        self.allow_build_mismatch = allow_build_mismatch
        self.experiment = Path()
        self.manifest: dict[str, Any] = {}
        self.sessions: list[Session] = []
        self.skipped: list[Any] = []
        self.excluded: list[tuple[Session, str]] = []
        self.notes: list[str] = []
        self.calibration: dict[str, Any] | None = None
        self.summary_data: dict[str, Any] = {}
        self._sequences: dict[str, list[dict[str, Any]]] = {}

    def prepare(self) -> None:
        if not self.responses.is_dir():
            raise UserError(f"{self.responses}: not a folder of response files")
        self.experiment = self.ctx.dir("experiment")
        path = self.experiment / "manifest.json"
        if not path.is_file():
            raise UserError(f"{path}: no experiment built; analyze checks each session against the experiment "
                            f"it claims: run `lwise-build experiment {self.ctx.corpus}` first")
        self.manifest = json.loads(path.read_text(encoding="utf-8"))
        sessions, self.skipped = read_responses(self.responses, self.ctx.corpus, int(self.p.max_file_mb * 1e6))
        for s in self.skipped:
            console.warn(f"analyze: skipped {s.file}: {s.reason}")
        reasons = self._integrity(sessions)
        self.excluded = [(s, r) for s, r in zip(sessions, reasons, strict=True) if r]
        self.sessions = [s for s, r in zip(sessions, reasons, strict=True) if not r]
        for s, r in self.excluded:
            console.warn(f"analyze: excluded {s.file}: {r}")
        if sessions and not self.sessions:
            s, r = self.excluded[0]
            raise UserError(f"{self.responses}: none of its {len(sessions)} sessions belong to this experiment "
                            f"(build {self.manifest.get('build')}); e.g. {s.file}: {r}")

    # ------------------------------------------------------------ what belongs ---------------
    def _integrity(self, sessions: list[Session]) -> list[str | None]:
        """Why each session does not belong to the built experiment (None: it does)."""
        reasons = [self._problem(s) for s in sessions]
        sigs = [(s.participant, s.file, checks.response_signature(
            {"condition": s.first("condition"), "sequence": s.first("sequence")}, s.trials)) for s in sessions]
        ok = [i for i, r in enumerate(reasons) if r is None]
        for j, reason in checks.duplicate_reasons([sigs[i] for i in ok]).items():
            reasons[ok[j]] = reason
        return reasons

    def _problem(self, s: Session) -> str | None:
        first = {k: s.first(k) for k in ("experiment_build", "condition", "sequence", "choice_labels",
                                         "choice_names")}
        problem = checks.claim_problem(first, self.manifest, self.allow_build_mismatch)
        if problem:
            return problem
        layout = self.manifest["conditions"][first["condition"]]["sequences"][first["sequence"]]
        return (checks.layout_problem(first, layout)
                or checks.trial_problem(s.trials, self._sequence(layout["file"]), layout["choice_labels"]))

    def _sequence(self, file: str) -> list[dict[str, Any]]:
        if file not in self._sequences:
            self._sequences[file] = json.loads((self.experiment / f"{file}.json").read_text(encoding="utf-8"))
        return self._sequences[file]

    # ------------------------------------------------------------ the outputs ----------------
    def write(self, tmp: Path) -> None:
        people = [self._participant(s) for s in self.sessions]
        kept = [(row, s) for row, s in zip(people, self.sessions, strict=True) if row["included"]]
        order = [c for c in self.manifest.get("order", []) if any(r["condition"] == c for r, _ in kept)]
        chance = 1.0 / len(self.manifest.get("classes") or [0, 0])
        if order and self.p.control not in order:
            self.notes.append(f"no included participants in the control condition {self.p.control!r}: no gains")
        effects = condition_effects(self._condition_data(kept, order), self._settings(chance))
        curves = self._curves(kept, order)
        self.calibration, fitted = self._calibration([s for _, s in kept], tmp)
        write_csv(tmp / "participants.csv", people, PARTICIPANT_COLUMNS)
        write_csv(tmp / "trials.csv", [t for r, s in zip(people, self.sessions, strict=True) for t in trial_rows(s, r)],
                  TRIAL_COLUMNS)
        write_csv(tmp / "conditions.csv", [flat_effect(c, e) for c, e in effects.items()], CONDITION_COLUMNS)
        write_csv(tmp / "learning_curves.csv", curves, ("condition", "block", "phase", "accuracy", "participants"))
        write_responses_dataset(tmp / "psychds", self.ctx.corpus, self.sessions, people, self.manifest.get("build"))
        self.summary_data = clean({
            "participants": {"read": len(people), "included": len(kept), "excluded": len(people) - len(kept)},
            "sessions_not_belonging": len(self.excluded), "files_skipped": len(self.skipped), "chance": chance,
            "control": self.p.control, "bootstrap_unit": self.p.bootstrap_unit, "conditions": effects,
            "calibration": {k: v for k, v in (self.calibration or {}).items() if k not in ("fits", "params")} or None})
        write_json(tmp / "metrics.json", self.summary_data)
        if self.calibration:
            write_json(tmp / "calibration.json", self.calibration)
        write_json(tmp / "report.json", self._report())
        self._figures(tmp / "figures", effects, curves, chance, fitted)

    def metrics(self) -> dict[str, Any]:
        return self.summary_data

    def summary(self) -> str:
        inc = self.summary_data["participants"]
        return (f"{inc['read']} sessions ({inc['excluded']} excluded), {len(self.excluded)} not of this experiment, "
                f"{len(self.skipped)} files skipped"
                + (f", calibration on {self.calibration['score']}" if self.calibration else ""))

    def _settings(self, chance: float) -> EffectSettings:
        p = self.p
        return EffectSettings(control=p.control, chance=chance, resamples=p.bootstrap, ci=p.ci,
                              unit=p.bootstrap_unit, yates=p.chi2_yates, seed=p.seed)

    def _participant(self, s: Session) -> dict[str, Any]:
        p, row = self.p, participant_row(s)
        reasons = []
        if p.require_complete and not s.completed:
            reasons.append("incomplete session")
        if row["n_catch"] and row["catch_accuracy"] < p.min_catch_accuracy:
            reasons.append(f"catch accuracy {row['catch_accuracy']:.2f} < {p.min_catch_accuracy:g}")
        if not row["n_test"]:
            reasons.append("no test trials")
        return {**row, "included": not reasons, "exclusion": "; ".join(reasons)}

    @staticmethod
    def _condition_data(kept: list[tuple[dict[str, Any], Session]], order: list[str]) -> dict[str, ConditionData]:
        out = {}
        for c in order:
            mine = [(r, s) for r, s in kept if r["condition"] == c]
            correct = [np.array([t["correct"] for t in s.trials if t["kind"] == "main" and t["phase"] == "test"],
                                dtype=np.float64) for _, s in mine]
            seconds = {k: np.array([r[f"training_time_{k}_s"] for r, _ in mine], dtype=np.float64)
                       for k in ("reference", "screens")}
            out[c] = ConditionData(correct, {k: v[np.isfinite(v)] for k, v in seconds.items()})
        return out

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

    def _calibration(self, sessions: list[Session], tmp: Path) -> tuple[dict[str, Any] | None, Any]:
        """Fit every score column on natural test trials of the calibration conditions; the chosen
        score's (x, correct) for the figure."""
        p, scores_dir = self.p, self.ctx.dir("scores")
        if not has_table(scores_dir):
            self.notes.append(f"no scores table at {scores_dir}: no calibration")
            return None, None
        conds = list(p.calibration_conditions or [p.control])
        trials = [t for s in sessions if s.first("condition") in conds for t in s.trials
                  if t["kind"] == "main" and t["phase"] == "test" and not t["budget"]]
        cols = [k for k, f in read_features(scores_dir).items()
                if getattr(f, "dtype", "").startswith("float") and k not in ("label",)]
        chosen = p.calibration_score or self._default_score(cols)
        if p.calibration_score and chosen not in cols:
            raise UserError(f"{self.where}.calibration_score: {chosen!r} is not a score column ({', '.join(cols)})")
        if not chosen or len(trials) < 2:
            self.notes.append(f"no score columns in {scores_dir}: no calibration" if not chosen else
                              f"fewer than 2 natural test trials in {', '.join(conds)}: no calibration")
            return None, None
        table = read_table(scores_dir, columns=["id", "label", "split", *cols]).to_pylist()
        by_id = {r["id"]: r for r in table}
        x = {c: np.array([_num(by_id.get(t["id"], {}).get(c)) for t in trials]) for c in cols}
        y = np.array([t["correct"] for t in trials], dtype=float)
        fits = calibrate(x, y, [t["id"] for t in trials], self._cal_settings())
        best = fits[chosen]
        if not np.isfinite(best["slope"]):
            self.notes.append(f"the calibration of {chosen} is undefined (one outcome, or a constant score): none")
            return None, None
        self._calibration_table(tmp, table, trials, chosen, best)
        return clean({"score": chosen, "formula": "predicted_accuracy = 1 / (1 + exp(-(slope * score + intercept)))",
                      **{k: v for k, v in best.items()}, "trials": best["n_trials"], "conditions": conds,
                      "participants": len({s.participant for s in sessions if s.first("condition") in conds}),
                      "responses_sha256": self._digest(sessions), "folds": p.folds, "trim_sd": p.calibration_trim_sd,
                      "calibration_folds": p.calibration_folds, "fits": fits, "params": to_plain(p),
                      "experiment_builds": sorted({str(s.first("experiment_build")) for s in sessions})}), (x[chosen], y)

    def _cal_settings(self) -> CalibrationSettings:
        p = self.p
        return CalibrationSettings(trim_sd=p.calibration_trim_sd, folds=p.calibration_folds,
                                   fold_seed=p.calibration_fold_seed, image_folds=p.folds, seed=p.seed,
                                   standardise=p.calibration_standardise)

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
        return {"responses": str(self.responses), "experiment_build": self.manifest.get("build"),
                "sessions": [s.file for s in self.sessions],
                "not_belonging": [{"file": s.file, "participant": s.participant, "reason": r} for s, r in self.excluded],
                "skipped": [{"file": s.file, "reason": s.reason} for s in self.skipped], "notes": self.notes}

    def _figures(self, folder: Path, effects: dict[str, Any], curves: list[dict[str, Any]], chance: float,
                 fitted: Any) -> None:
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
            (x, y), c = fitted, self.calibration
            ok = np.isfinite(x)
            grid = np.linspace(x[ok].min(), x[ok].max(), 100)
            figures.fitted_curve(binned_accuracy(x[ok], y[ok]), (grid, predicted_accuracy(grid, c["slope"], c["intercept"])),
                                 folder / "calibration.png", title=f"calibration ({', '.join(c['conditions'])})",
                                 xlabel=c["score"], ylabel="P(correct), natural test trials")


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)
