"""The ``models:`` sections: an architecture plus weights from a checkpoint and/or a training
recipe (standard, PGD adversarial, blur), validated like every other section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import UserError
from .constants import NORMS
from .schema import each, fraction, non_negative, param, positive


@dataclass(frozen=True)
class AdversarialParams:
    """PGD adversarial training (MadryLab conventions, docs/methods.md "PGD")."""

    norm: Literal[NORMS] = param("l2", doc="perturbation norm of the attack")  # type: ignore[valid-type]
    eps: float = param(1.0, check=positive, doc="attack budget (pixels in [0, 1])")
    steps: int = param(3, check=positive, doc="PGD steps per training batch")
    step_size: float | None = param(None, check=positive, doc="default 2.5 * eps / steps")
    random_start: bool = param(True, doc="start each attack at a random point of the budget ball")


@dataclass(frozen=True)
class BlurParams:
    """Per-image Gaussian blur during training (docs/methods.md, "Blur training")."""

    preset: Literal["weak", "strong", "custom"] = param("weak", doc="sigma distribution: the published weak or strong one, or custom")
    sigmas: list[float] = param([], check=each(non_negative), doc="custom preset only")
    probs: list[float] = param([], check=each(non_negative), doc="custom preset only")
    reference_size: int = param(224, check=positive, doc="image size the sigmas are given at")

    def validate(self, path: str) -> None:
        if self.preset == "custom":
            if not self.sigmas or len(self.sigmas) != len(self.probs):
                raise UserError(f"{path}.sigmas: custom blur needs equal-length sigmas and probs")
            if abs(sum(self.probs) - 1) > 1e-6:
                raise UserError(f"{path}.probs: must sum to 1, got {sum(self.probs)}")


@dataclass(frozen=True)
class TrainParams:
    """A training recipe: standard, adversarial (``adversarial``) and/or blur (``blur``)."""

    epochs: int = param(10, check=positive, doc="passes over the train split")
    batch_size: int = param(64, check=positive, doc="images per optimiser step")
    optimizer: Literal["sgd", "adam"] = param("sgd", doc="SGD (with momentum) or Adam")
    lr: float = param(0.05, check=positive, doc="peak learning rate")
    momentum: float = param(0.9, check=fraction, doc="SGD momentum")
    weight_decay: float = param(5e-4, check=non_negative, doc="L2 weight decay")
    schedule: Literal["cosine", "step", "constant"] = param("cosine", doc="learning-rate schedule (step: x0.1 at 50% and 75%)")
    augment: list[Literal["hflip", "crop", "none"]] = param([], doc="random horizontal flips and/or padded random crops")
    adversarial: AdversarialParams | None = param(None, doc="PGD adversarial training; null = standard")
    blur: BlurParams | None = param(None, doc="per-image Gaussian blur; null = none")
    fine_tune: bool = param(False, doc="start from `checkpoint` with a fresh head")
    eval_eps: float = param(1.0, check=positive, doc="L2 PGD budget for the robust-accuracy metric")
    eval_steps: int = param(10, check=positive, doc="PGD steps for the robust-accuracy metric")
    threads: int = param(1, check=positive, doc="CPU threads for training's math: the weights depend on it, "
                         "not on the machine's cores (more is faster only for large models on a CPU)")


@dataclass(frozen=True)
class ModelParams:
    """A model: an architecture plus weights from a checkpoint and/or a training recipe."""

    arch: str = param(doc="architecture name (`lwise-build models` lists them) or `timm:<name>`")
    corpus: str = param(doc="the corpus it is trained on or used with: `data/<corpus>/models/<name>`")
    checkpoint: str | None = param(None, doc="path, http(s):// URL or hf://org/repo/file[@rev]")
    classes: list[str] | None = param(None, doc="class names of the head; default: corpus labels")
    num_classes: int | None = param(None, check=positive, doc="head size of an imported checkpoint")
    in_channels: int = param(3, check=positive, doc="1 for a grayscale corpus, 3 for RGB")
    input_size: int | None = param(None, check=positive, doc="image size the model expects; must equal its corpus's image_size")
    mean: list[float] | None = param(None, doc="per-channel (or one) normalisation mean; default the checkpoint's, else 0.5")
    std: list[float] | None = param(None, check=each(positive), doc="per-channel (or one) normalisation std; default the checkpoint's, else 0.25")
    train: TrainParams | None = param(None, doc="training recipe; null = import `checkpoint` only")

    def validate(self, path: str) -> None:
        if self.checkpoint is None and self.train is None:
            raise UserError(f"{path}: needs a `checkpoint`, a `train` recipe, or both")
        if self.train is not None and self.train.fine_tune and self.checkpoint is None:
            raise UserError(f"{path}.train.fine_tune: fine-tuning needs a `checkpoint`")
        for key in ("mean", "std"):
            vals = getattr(self, key)
            if vals is not None and len(vals) not in (1, self.in_channels):
                raise UserError(f"{path}.{key}: needs 1 or {self.in_channels} values, got {len(vals)}")


# ---------------------------------------------------------------- corpus stages --------------
