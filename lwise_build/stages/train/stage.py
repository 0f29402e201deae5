"""The ``train`` stage: build (or import) one model of the ``models:`` registry for its corpus.

``lwise-build train <corpus> <model>`` reads ``data/<corpus>/images`` (train split to fit,
validation split for metrics), trains with the model's recipe (standard, L2/Linf PGD adversarial,
per-image blur; augmentation; SGD/Adam; cosine/step/constant), or only imports its checkpoint
when there is no recipe, and writes ``data/<corpus>/models/<model>/`` (weights, config, metrics),
``data/<corpus>/metrics/train-<model>.json`` and the learning curve
``data/<corpus>/plots/train-<model>.csv``. Seeded from ``seed`` and the model name, its math on
the recipe's fixed ``threads``: on CPU, any two runs on the same CPU kind and library versions give
byte-identical weights, whatever the core count.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch
import torch.nn.functional as F

from ... import console
from ...config.model_params import ModelParams, TrainParams
from ...config.params import Params, ScoreParams
from ...device import build_platform, deterministic, torch_threads
from ...errors import UserError
from ...io.images import to_tensor
from ...io.paths import model_dir, plots_dir, stage_dir
from ...io.staging import write_json
from ...io.tables import class_names, read_table
from ...models.checkpoints import load_weights, normalisation, read
from ...models.classifier import Classifier
from ...models.registry import check_arch, create_net
from ...models.store import save_model
from ...ops import attacks, blur
from ...ops.augment import augment
from ...ops.classmap import model_targets
from ...seeding import seeded_int
from ..base import Stage
from .imported_eval import cached_evaluation
from .spec import SPEC

CURVE_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_accuracy", "val_robust_accuracy")


@dataclass
class Split:
    """Images of one split as uint8 (N, C, H, W) and their labels as model class indices."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


def seed_for(params: Params, name: str) -> int:
    """The model's seed: from the global ``seed`` and the model name."""
    return seeded_int(params.seed, name)


def load_split(corpus: str, split: str, classes: list[str], mapping: ScoreParams | None = None) -> Split:
    """One split of the images table, sorted by id (independent of shards), labels mapped to
    ``classes`` by scoring's class mapping (``mapping``: score.class_map / target_column, as every
    stage maps them); images of classes the model lacks are left out."""
    folder = stage_dir(corpus, "images")
    names, col = class_names(folder), mapping.target_column if mapping else None
    table = read_table(folder, columns=["id", "image", "label", "split", *([col] if col else [])])
    table = table.filter(pc.equal(table["split"], split)).sort_by("id")
    labels = model_targets(classes, names, np.asarray(table["label"].to_numpy(zero_copy_only=False), dtype=np.int64),
                           f"corpora.{corpus}.score", class_map=mapping.class_map if mapping else None,
                           target_values=table[col].to_pylist() if col else None, lenient=True)
    keep = np.flatnonzero(labels >= 0)
    pngs = [table["image"][int(i)].as_py()["bytes"] for i in keep]
    x = torch.cat([to_tensor(pngs[i:i + 512]).mul_(255).round_().to(torch.uint8)
                   for i in range(0, len(pngs), 512)]) if pngs else torch.zeros(0, 1, 1, 1, dtype=torch.uint8)
    return Split(x, torch.from_numpy(labels[keep]))


def build_model(spec: ModelParams, classes: list[str], source: str) -> Classifier:
    """The untrained (or checkpoint-initialised) classifier of a model entry."""
    problem = check_arch(spec.arch)
    if problem:
        raise UserError(f"{source}.arch: {problem}")
    net, stages = create_net(spec.arch, len(classes), spec.in_channels)
    ckpt = None
    if spec.checkpoint:
        ckpt = read(spec.checkpoint)
        load_weights(net, ckpt, spec.checkpoint, spec.arch, fine_tune=bool(spec.train and spec.train.fine_tune))
    mean, std = normalisation(spec.mean, spec.std, spec.in_channels, ckpt)
    if len(mean) != spec.in_channels or len(std) != spec.in_channels:
        raise UserError(f"{source}: mean/std need {spec.in_channels} values, got {len(mean)}/{len(std)}")
    return Classifier(net, stages, mean, std, classes, arch=spec.arch)


# ---------------------------------------------------------------- the recipe ------------------
def optimiser(model: Classifier, tp: TrainParams, total_steps: int):
    """The optimiser and a per-step LR schedule (cosine, step at 50%/75%, or constant)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if tp.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=tp.lr, weight_decay=tp.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=tp.lr, momentum=tp.momentum, weight_decay=tp.weight_decay)

    def factor(step: int) -> float:
        t = step / max(1, total_steps)
        if tp.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * t))
        if tp.schedule == "step":
            return 0.1 ** ((t >= 0.5) + (t >= 0.75))
        return 1.0

    # Not CosineAnnealingLR/MultiStepLR: their recursive updates move rates in the last bits
    # (tests/test_former.py), and so the trained weights' bytes.
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_batch(model: Classifier, xb: torch.Tensor, yb: torch.Tensor, tp: TrainParams,
                gen: torch.Generator) -> torch.Tensor:
    """The inputs the model trains on: blurred and/or adversarial versions of the batch."""
    if tp.blur is not None:
        bp = tp.blur
        sigmas = blur.draw_sigmas(*blur.distribution(bp.preset, bp.sigmas, bp.probs), len(xb),
                                  xb.shape[-1] / bp.reference_size, gen)
        xb = blur.blur_batch(xb, sigmas.to(xb.device))
    adv = tp.adversarial
    if adv is not None:
        model.eval()  # the attack sees the model as at test time; BN statistics stay untouched
        xb = attacks.pgd(model, xb, yb, adv.eps, adv.steps, adv.step_size, adv.norm, adv.random_start, gen)
        model.train()
    return xb


def run_epoch(model: Classifier, data: Split, tp: TrainParams, opt, sched, gen: torch.Generator,
              device: torch.device, desc: str) -> tuple[float, float]:
    """One pass over the training split in a seeded order; returns (mean loss, accuracy)."""
    model.train()
    order = torch.randperm(len(data), generator=gen)
    loss_sum, correct = 0.0, 0
    batches = range(0, len(data), tp.batch_size)
    with console.progress(batches, desc=desc, unit="batch", leave=False) as bar:
        for start in bar:
            idx = order[start:start + tp.batch_size]
            xb = augment(data.x[idx].float().div_(255), tuple(tp.augment), gen).to(device)
            yb = data.y[idx].to(device)
            xb = train_batch(model, xb, yb, tp, gen)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", refresh=False)
    model.eval()
    return loss_sum / len(data), correct / len(data)


def evaluate(model: Classifier, val: Split, tp: TrainParams | None, robust: bool = True) -> tuple[float | None, float | None]:
    """Clean and (if ``robust``) L2-PGD (``eval_eps``, ``eval_steps``) accuracy on the validation split."""
    if len(val) == 0:
        return None, None
    eps, steps = evaluate_params(tp)
    x = val.x.float().div_(255)
    clean = attacks.accuracy(model, x, val.y)
    return clean, attacks.accuracy(model, x, val.y, eps=eps, steps=steps) if robust else None


def evaluate_params(tp: TrainParams | None) -> tuple[float, int]:
    """The L2 PGD budget and steps of the robust-accuracy metric (an import: 1.0 and 10)."""
    return (tp.eval_eps, tp.eval_steps) if tp else (1.0, 10)


def fit(model: Classifier, train: Split, val: Split, tp: TrainParams, seed: int, name: str,
        device: torch.device) -> list[dict]:
    """Train for ``tp.epochs``; one learning-curve row per epoch."""
    if len(train) == 0:
        raise UserError(f"models.{name}: the corpus has no train-split images of the model's classes")
    gen = torch.Generator().manual_seed(seed)
    opt, sched = optimiser(model, tp, tp.epochs * math.ceil(len(train) / tp.batch_size))
    rows = []
    for epoch in range(1, tp.epochs + 1):
        loss, acc = run_epoch(model, train, tp, opt, sched, gen, device, f"train {name} {epoch}/{tp.epochs}")
        clean, robust = evaluate(model, val, tp, robust=epoch == tp.epochs)  # PGD: costly, once
        rows.append(dict(zip(CURVE_COLUMNS, (epoch, loss, acc, clean, robust), strict=True)))
        console.info(f"train {name} epoch {epoch}/{tp.epochs}: loss {loss:.3f} acc {acc:.3f} "
                     f"val {_fmt(clean)} val-robust {_fmt(robust)}")
    return rows


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


# ---------------------------------------------------------------- the stage -------------------
class Train(Stage, spec=SPEC):
    """``lwise-build train <corpus> <model>``: train or import one model into ``models/<model>/``."""

    def __init__(self, params: Params, corpus: str, model_name: str):
        spec = params.model(model_name)
        if spec.corpus != corpus:
            raise UserError(f"models.{model_name}.corpus is {spec.corpus!r}, not {corpus!r}; "
                            f"run `lwise-build train {spec.corpus} {model_name}`")
        super().__init__(params, corpus)
        self.model_name, self.spec = model_name, spec
        self.where = f"models.{model_name}"

    @property
    def out(self) -> Path:
        return model_dir(self.ctx.corpus, self.model_name)

    @property
    def metrics_name(self) -> str:
        return f"train-{self.model_name}"

    def prepare(self) -> None:
        spec, corpus = self.spec, self.ctx.corpus
        self.classes = model_classes(spec, self.model_name)
        mapping = self.ctx.spec.score
        self.val = load_split(corpus, "validation", self.classes, mapping)
        self.train = load_split(corpus, "train", self.classes, mapping) if spec.train else Split(self.val.x[:0], self.val.y[:0])
        self.reused = False  # an imported model's evaluation came from the unit cache
        _check_size(spec, self.train if len(self.train) else self.val, self.model_name)

    def write(self, tmp: Path) -> None:
        spec, tp, device = self.spec, self.spec.train, self.ctx.device
        seed = seed_for(self.ctx.params, self.model_name)
        start = time.perf_counter()
        with deterministic(seed, device), torch_threads(tp.threads if tp else 1):  # bytes: any core count
            model = build_model(spec, self.classes, self.where).to(device)
            self.rows = fit(model, self.train, self.val, tp, seed, self.model_name, device) if tp else []
            last = self.rows[-1] if self.rows else None
            clean, robust = (last["val_accuracy"], last["val_robust_accuracy"]) if last else self.imported_eval(model)
        self.seconds = time.perf_counter() - start
        self.result = {"val_accuracy": clean, "val_robust_accuracy": robust,
                       "eval_eps": tp.eval_eps if tp else 1.0, "eval_steps": tp.eval_steps if tp else 10,
                       "epochs": tp.epochs if tp else 0, "train_images": len(self.train),
                       "val_images": len(self.val)}
        self.digest = save_model(model.cpu(), tmp, extra={"name": self.model_name, "corpus": self.ctx.corpus,
                                                          "checkpoint": spec.checkpoint,
                                                          "built_with": build_platform(device, tp.threads if tp else 1)})
        write_json(tmp / "metrics.json", {**self.result, "sha256": self.digest})  # deterministic: no timings

    def imported_eval(self, model: Classifier) -> tuple[float | None, float | None]:
        """An imported model's validation figures, once per weights and validation content."""
        figures, self.reused = cached_evaluation(model, self.val, self.ctx.device.type, evaluate_params(None),
                                                 lambda: evaluate(model, self.val, None))
        return figures

    def metrics(self) -> dict[str, Any]:
        # timings are printed, not stored: DVC-tracked metrics stay byte-identical across rebuilds
        return {**self.result, "model_hash": self.digest}

    def headline(self, d: dict[str, Any]) -> dict[str, Any]:
        return {"accuracy": d["val_accuracy"], "robust_accuracy": d["val_robust_accuracy"]}  # validation split

    def null_reason(self, path: tuple[str, ...]) -> str:  # noqa: ARG002 - the hook's signature
        return f"no validation images of the model's classes in corpus {self.ctx.corpus!r}"

    def brief_reason(self, key: str) -> str:  # noqa: ARG002 - the hook's signature
        return "no validation images"

    def run(self) -> Path:
        out = super().run()
        write_curve(plots_dir(self.ctx.corpus, f"train-{self.model_name}.csv"), self.rows,
                    self.result["val_accuracy"], self.result["val_robust_accuracy"])
        return out

    def summary(self) -> str:
        trained = len(self.train) * (self.spec.train.epochs if self.spec.train else 0)
        rate = f", {trained / self.seconds:.0f} images/s" if trained and self.seconds > 0 else ""
        how = (f"trained {self.result['epochs']} epochs on {len(self.train)} images" if self.spec.train
               else "imported" + (" (its evaluation on these validation images reused)" if self.reused else ""))
        clean, robust = self.result["val_accuracy"], self.result["val_robust_accuracy"]
        acc = "" if clean is None else f"; val accuracy {clean:.3f}" + ("" if robust is None else f", robust {robust:.3f}")
        return f"{self.model_name} {how} in {self.seconds:.1f} s{rate}{acc}"


def model_classes(spec: ModelParams, name: str) -> list[str]:
    """Head classes: ``classes``; else "0".."n-1" for an imported ``num_classes`` head; else the corpus labels."""
    if spec.classes:
        classes = list(spec.classes)
    elif spec.num_classes and not spec.train:
        classes = [str(i) for i in range(spec.num_classes)]
    else:
        classes = class_names(stage_dir(spec.corpus, "images"))
    if spec.num_classes and len(classes) != spec.num_classes:
        raise UserError(f"models.{name}.num_classes: {spec.num_classes}, but it has {len(classes)} classes")
    return classes


def _check_size(spec: ModelParams, data: Split, name: str) -> None:
    """The images must be what the model takes: its input size and channels (never broadcast)."""
    if spec.input_size and len(data) and data.x.shape[-1] != spec.input_size:
        raise UserError(f"models.{name}.input_size: {spec.input_size} but the {spec.corpus} images are "
                        f"{data.x.shape[-1]} px; set corpora.{spec.corpus}.ingest.image_size to match")
    if len(data) and data.x.shape[1] != spec.in_channels:
        raise UserError(f"models.{name}.in_channels: {spec.in_channels} but the {spec.corpus} images have "
                        f"{data.x.shape[1]} channel(s); set in_channels: {data.x.shape[1]}")


def write_curve(path: Path, rows: list[dict], clean: float | None, robust: float | None) -> None:
    """The learning curve for ``dvc plots`` (an import-only model gets one epoch-0 row)."""
    rows = rows or [{"epoch": 0, "val_accuracy": clean, "val_robust_accuracy": robust}]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CURVE_COLUMNS)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in CURVE_COLUMNS])


def _cell(v: object) -> str:
    return "" if v is None else (f"{v:.6f}" if isinstance(v, float) else str(v))
