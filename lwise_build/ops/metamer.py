"""Model metamers (Feather et al. 2023): images whose activations at one layer match a reference's.

Synthesis starts from seeded noise around grey and takes normalised-gradient L2 steps on the
normalised activation distance, with the forward pass stopped at the target layer and no
parameter gradients. Every image has its own loss and its own noise (seeded by ``seed`` and the
reference id), so a batch gives the same metamers as one-at-a-time synthesis.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .. import console
from ..errors import UserError
from ..models.classifier import Classifier
from ..models.inference import channels_last, padded
from ..seeding import seeded_int
from .fake_relu import with_fake_relu


@dataclass(frozen=True)
class Schedule:
    """Step size ``first * 0.5**stage``: ``stages`` stages of ``stage_steps`` steps each."""

    stages: int
    stage_steps: int
    first: float = 1.0

    @property
    def total(self) -> int:
        return self.stages * self.stage_steps

    def step_sizes(self, step_size: float | None = None, steps: int | None = None) -> list[float]:
        """One step size per step; ``steps`` overrides the total and keeps the number of halvings."""
        first = self.first if step_size is None else float(step_size)
        total = self.total if steps is None else int(steps)
        per_stage = max(1, -(-total // self.stages))
        return [first * 0.5 ** min(t // per_stage, self.stages - 1) for t in range(total)]


#: ``published``: Feather et al. (step 1.0 halved every 3000 steps, 24k steps). ``fast``: small
#: CNNs on small images (160 steps; a larger first step reaches a low loss in few steps on the
#: 32-px digits). ``test``: tiny, for tests and smoke runs.
SCHEDULES: dict[str, Schedule] = {
    "published": Schedule(stages=8, stage_steps=3000, first=1.0),
    "fast": Schedule(stages=8, stage_steps=20, first=4.0),
    "test": Schedule(stages=2, stage_steps=5, first=1.0),
}


def get_schedule(name: str) -> Schedule:
    """The named step-size schedule (one-line error for an unknown name)."""
    if name not in SCHEDULES:
        raise UserError(f"schedule: unknown metamer schedule {name!r} (known: {', '.join(SCHEDULES)})")
    return SCHEDULES[name]


#: The id that seeds the noise of padding rows (their metamers are thrown away).
PAD_ID = "<padding>"


def noise_seed(seed: int, ref_id: str) -> int:
    """The init-noise seed of one reference: independent of batching and order."""
    return seeded_int(seed, ref_id)


def init_noise_images(shape: Sequence[int], ids: Sequence[str], seed: int, noise: float) -> torch.Tensor:
    """``clamp(0.5 + noise * N(0, 1), 0, 1)`` per image, from a generator seeded by (seed, id)."""
    out = torch.empty((len(ids), *shape), dtype=torch.float32)
    for i, ref_id in enumerate(ids):
        gen = torch.Generator().manual_seed(noise_seed(seed, ref_id))
        out[i] = torch.randn(tuple(shape), generator=gen)
    return (0.5 + noise * out).clamp_(0, 1)


def normalised_distance(acts: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image ``||a - a0||_2 / ||a0||_2`` over the flattened activations."""
    diff = (acts - target).flatten(1).norm(dim=1)
    return diff / target.flatten(1).norm(dim=1).clamp_min(1e-12)


def synthesis_model(model: Classifier) -> Classifier:
    """A copy of ``model`` for synthesis: the same function, rewritten to do less work per image.

    In every ``nn.Sequential``: batch norms after convs are folded into them, ``ReLU, MaxPool2d``
    becomes ``MaxPool2d, ReLU`` (they commute exactly, values and gradients, and the ReLU then
    touches a quarter of the elements), and ReLUs run in place where autograd keeps no copy of
    what they overwrite. Inside torchvision ResNet blocks each ``bnK`` is folded into ``convK``
    (the blocks are not stages, so every stage's output keeps its meaning): autograd then keeps
    no batch-norm inputs, a third of a ResNet-50's saved activations. Channels-last memory.
    ``metamers`` makes one per call unless given one, so pass ``synthesis_model(model)`` when
    calling it many times with the same model.
    """
    if getattr(model, "is_synthesis_copy", False):
        return model
    fast = copy.deepcopy(model).eval().requires_grad_(False)
    for module in list(fast.modules()):
        if isinstance(module, nn.Sequential):
            _rewrite_sequential(module)
        _fold_resnet_block(module)
    fast.is_synthesis_copy = True
    return fast.to(memory_format=torch.channels_last)


def _fold_resnet_block(module: nn.Module) -> None:
    """Fold ``bnK`` into ``convK`` in a torchvision ``BasicBlock`` / ``Bottleneck`` (modifies it)."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    if not isinstance(module, (BasicBlock, Bottleneck)):
        return
    for k in (1, 2, 3):
        conv, bn = getattr(module, f"conv{k}", None), getattr(module, f"bn{k}", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
            setattr(module, f"conv{k}", fuse_conv_bn_eval(conv, bn).requires_grad_(False))
            setattr(module, f"bn{k}", nn.Identity())


_OUTPUT_NOT_SAVED = (nn.Conv2d, nn.Linear, nn.MaxPool2d)


def _rewrite_sequential(seq: nn.Sequential) -> None:
    """Fold conv+BN, pool before ReLU, in-place ReLUs where safe (modifies ``seq``)."""
    mods: list[tuple[str, nn.Module]] = []
    for name, mod in seq.named_children():
        prev = mods[-1][1] if mods else None
        if isinstance(mod, nn.BatchNorm2d) and isinstance(prev, nn.Conv2d) and mod.track_running_stats:
            mods[-1] = (mods[-1][0], fuse_conv_bn_eval(prev, mod).requires_grad_(False))
        elif isinstance(mod, nn.MaxPool2d) and isinstance(prev, nn.ReLU) and not mod.return_indices:
            mods[-1:] = [(name, mod), (mods[-1][0], prev)]
        else:
            mods.append((name, mod))
    for (_, prev), (_, mod) in itertools.pairwise(mods):
        if isinstance(mod, nn.ReLU) and isinstance(prev, _OUTPUT_NOT_SAVED):
            mod.inplace = True  # safe: autograd keeps none of these modules' outputs
    seq._modules.clear()
    seq._modules.update(mods)


def fake_relu_model(model: Classifier, layer: str) -> Classifier:
    """A copy of a synthesis model whose ``layer`` output ReLU passes gradients as the identity
    (``fake_relu``, docs/methods.md "Metamers"); layers without an output ReLU are unchanged."""
    fake = copy.deepcopy(model)
    stage, found = with_fake_relu(getattr(fake.net, layer))
    if found:
        setattr(fake.net, layer, stage)
    return fake


def _synthesise(model: Classifier, layer: str, target: torch.Tensor, x: torch.Tensor,
                lrs: Sequence[float], on_step: Callable[[int], object] | None = None) -> torch.Tensor:
    """Normalised-gradient L2 steps from ``x`` towards ``target`` activations, clamped to [0, 1].

    One image buffer, updated in place (the gradient's buffer holds the step): per step only
    the forward and backward passes allocate. ``on_step(1)`` after every step (progress).
    """
    shape = (-1,) + (1,) * (x.dim() - 1)
    x = channels_last(x) if x.dim() == 4 else x.clone()
    x.requires_grad_(True)
    scale = target.flatten(1).norm(dim=1).clamp_min(1e-12)  # as normalised_distance, once
    for lr in lrs:
        loss = ((model.forward_to(x, layer) - target).flatten(1).norm(dim=1) / scale).sum()
        (grad,) = torch.autograd.grad(loss, x)
        del loss
        with torch.no_grad():
            norm = grad.flatten(1).norm(dim=1).view(shape)
            x.sub_(grad.mul_(lr).div_(norm + 1e-10)).clamp_(0, 1)
        del grad
        if on_step is not None:
            on_step(1)
    return x.detach().contiguous()


def _check_model(model: Classifier, layer: str) -> None:
    if any(p.requires_grad for p in model.parameters()):
        model.requires_grad_(False)  # parameter gradients are never needed here
    if layer not in model.layers():
        raise UserError(f"layer {layer!r} is not a stage of this model (stages: {', '.join(model.layers())})")


def metamers(model: Classifier, layer: str, images: torch.Tensor, ids: Sequence[str], *,
             steps: int | None = None, schedule: str = "fast", init_noise: float = 0.05, seed: int = 0,
             step_size: float | None = None, batch_size: int = 64, fake_relu: bool = False,
             progress: bool = False, on_step: Callable[[int], object] | None = None) -> torch.Tensor:
    """Metamers of ``images`` (N, C, H, W in [0, 1]) at ``layer`` of ``model``, on the model's device.

    ``ids`` seed each image's init noise, and every batch runs padded to ``batch_size`` (a fixed
    shape, where a sample's numbers do not depend on its companions), so a metamer depends only on
    its reference, id, seed and ``batch_size``, never on what it was batched with or in what order.
    ``steps`` overrides the schedule's total (keeping its halvings); ``step_size`` its first step
    (published 1.0, fast 4.0); ``fake_relu`` passes the gradient of the layer's output ReLU as
    the identity (the reference's ``*_fake_relu`` layers). Runs in the images' dtype (float64 works).
    ``progress`` shows a bar over batches; ``on_step(1)`` is called after every step of every batch.
    """
    _check_model(model, layer)
    lrs = get_schedule(schedule).step_sizes(step_size, steps)
    ids = list(ids)
    if len(ids) != len(images):
        raise UserError(f"ids: {len(ids)} ids for {len(images)} images")
    device = next(iter(model.buffers())).device
    fast = synthesis_model(model)
    if fake_relu:
        fast = fake_relu_model(fast, layer)
    out = []
    chunks = range(0, len(images), batch_size)
    if progress:
        chunks = console.progress(chunks, desc=f"metamers {layer}", unit="batch", leave=False)
    for start in chunks:  # every batch padded to batch_size: exact per reference (see below)
        ref = images[start:start + batch_size].to(device)
        n = len(ref)
        with torch.no_grad():
            target = fast.forward_to(padded(ref, batch_size), layer)
        batch_ids = [*ids[start:start + batch_size], *[PAD_ID] * (batch_size - n)]
        x0 = init_noise_images(ref.shape[1:], batch_ids, seed, init_noise)
        out.append(_synthesise(fast, layer, target, x0.to(device, ref.dtype), lrs, on_step)[:n].cpu())
    if not out:
        return torch.empty((0, *images.shape[1:]))
    return torch.cat(out)


# ---------------------------------------------------------------- recognisability -------------
def judge_rates(table: Mapping[str, Sequence], judge_columns: Mapping[str, str]) -> dict[tuple[str, str], dict]:
    """Per (generator, layer) of a metamers table: counts, pass rate and, per judge, the fraction
    of PASSING metamers (and of all metamers) it assigns to the reference class.

    ``judge_columns`` maps judge name -> prediction column; each generator is also a column of
    its own rows (``generator_pred``), as a reference. ``recognisability_others`` is the mean over
    the judges other than the generator (the cross-model number).
    """
    gens, layers = np.asarray(table["generator"], dtype=object), np.asarray(table["layer"], dtype=object)
    label, ok = np.asarray(table["label"]), np.asarray(table["passes"], dtype=bool)
    out: dict[tuple[str, str], dict] = {}
    for g, layer in dict.fromkeys(zip(table["generator"], table["layer"], strict=True)):
        sel = (gens == g) & (layers == layer)
        cols = {**judge_columns, g: "generator_pred"}
        hit = {j: np.asarray(table[c])[sel] == label[sel] for j, c in cols.items()}
        good = ok[sel]
        out[(g, layer)] = {
            "layer_depth": int(np.asarray(table["layer_depth"])[sel][0]), "n": int(sel.sum()),
            "n_passing": int(good.sum()), "pass_rate": float(good.mean()),
            "mean_loss": float(np.mean(np.asarray(table["loss"])[sel])) if "loss" in table else None,
            "recognisability": {j: float(h[good].mean()) if good.any() else None for j, h in hit.items()},
            "recognisability_all": {j: float(h.mean()) for j, h in hit.items()},
        }
        others = [v for j, v in out[(g, layer)]["recognisability"].items() if j != g and v is not None]
        out[(g, layer)]["recognisability_others"] = float(np.mean(others)) if others else None
    return out
