"""Enhancement: projected, normalised gradient steps that move images towards their true class.

Semantics (docs/methods.md, "Enhancement"): start at the image (no random start); ``T`` times take a
normalised gradient step down ``objective``, project onto the budget ball around the original,
clamp to [0, 1]; return the iterate with the lowest loss among ``x0..xT`` (``x0`` included).

All budgets share one trajectory (docs/methods.md, "One trajectory for all budgets"): while a budget's
projection does not bind, its iterates are a prefix of the largest budget's, so one run serves
every budget; a budget branches off (and continues on its own rows) only at the step where its
projection binds for an image. ``enhance(..., shared=False)`` is the plain per-budget loop it equals.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import console
from ..config.constants import NORMS, OBJECTIVES
from ..errors import UserError
from ..models.inference import padded

LossFn = Callable[[Tensor, Tensor], Tensor]
OnStep = Callable[[int], object] | None


def default_steps(eps: float, step_size: float, steps: int | None = None) -> int:
    """Steps for budget ``eps``: ``steps`` if given, else ``max(1, round(eps / step_size))``."""
    return int(steps) if steps is not None else max(1, round(eps / step_size))


def objective_loss(logits: Tensor, labels: Tensor, objective: str, diverge: Tensor | None = None) -> Tensor:
    """Per-image loss to minimise: ``-z_gt``, ``-(z_gt - mean z_c over diverge classes)`` or CE."""
    if objective == "cross_entropy":
        return F.cross_entropy(logits, labels, reduction="none")
    gt = logits.gather(1, labels[:, None])[:, 0]
    if objective == "logit":
        return -gt
    mask = torch.ones_like(logits, dtype=torch.bool) if diverge is None else diverge[None].expand_as(logits)
    mask = mask & ~F.one_hot(labels, logits.shape[1]).bool()
    others = (logits * mask).sum(1) / mask.sum(1).clamp_min(1)
    return -(gt - others)


def objective_value(model: nn.Module, logits: Tensor, labels: Tensor, objective: str,
                    diverge_from: Sequence[int | str] | None = None) -> Tensor:
    """Per image, minus the loss of ``objective`` for ``logits``: higher is closer to the true
    class (what the steps increase; stored images are compared on it, :mod:`.quantize`)."""
    diverge = None if diverge_from is None else _diverge_mask(model, diverge_from, logits.shape[1])
    return -objective_loss(logits, labels, objective, diverge)


# ---------------------------------------------------------------- step pieces (shared by both) --
def _size(delta: Tensor, norm: str) -> Tensor:
    """Per-image L2 or Linf size of a perturbation (N,)."""
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def _raw_delta(x: Tensor, x0: Tensor, g: Tensor, step: float, norm: str) -> Tensor:
    """The perturbation after one unprojected step down the gradient."""
    if norm == "linf":
        d = g.sign()
    else:
        d = g / (g.flatten(1).norm(dim=1).view(-1, *[1] * (g.dim() - 1)) + 1e-10)
    return x - step * d - x0


def _settle(x0: Tensor, delta: Tensor, radius: Tensor, norm: str) -> Tensor:
    """Project ``delta`` onto each row's ball (identity where it fits) and clamp to [0, 1]."""
    r = radius.view(-1, *[1] * (delta.dim() - 1))
    if norm == "linf":
        delta = torch.maximum(torch.minimum(delta, r), -r)
    else:
        n = _size(delta, norm).view_as(r)
        delta = delta * torch.where(n > r, r / n, torch.ones_like(n))
    return (x0 + delta).clamp(0, 1)


def _evaluate(loss_fn: LossFn, x: Tensor, y: Tensor, chunk: int, grad: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-row loss at ``x`` and its input gradient, in fixed-shape chunks of ``chunk`` rows
    (padded): every row's numbers are then independent of the other rows in the batch.

    ``grad`` marks the rows whose gradient is needed (default: all); the others (rows at their
    last step, which only compare their loss) get a forward pass alone, whose loss is bit for bit
    the one a pass with gradients gives, and an unset gradient row.
    """
    losses, grads = x.new_empty(len(x)), torch.empty_like(x)
    need = torch.ones(len(x), dtype=torch.bool, device=x.device) if grad is None else grad
    for with_grad in (True, False):
        rows = (need if with_grad else ~need).nonzero()[:, 0]
        for lo in range(0, len(rows), chunk):
            idx = rows[lo:lo + chunk]
            k = len(idx)
            xp = padded(x[idx].detach(), chunk)
            yp = torch.cat([y[idx], y.new_zeros(chunk - k)])
            if with_grad:
                with torch.enable_grad():
                    xp.requires_grad_(True)
                    loss = loss_fn(xp, yp)
                    (g,) = torch.autograd.grad(loss.sum(), xp)
                grads[idx] = g[:k]
            else:
                with torch.no_grad():
                    loss = loss_fn(xp, yp)
            losses[idx] = loss.detach()[:k]
    return losses, grads


# ---------------------------------------------------------------- reference: one run per budget --
def _run_reference(loss_fn: LossFn, x0: Tensor, y: Tensor, eps: float, steps: int, step: float,
                   norm: str, chunk: int, on_step: OnStep = None) -> Tensor:
    """The plain loop of docs/methods.md ("Enhancement") for one budget."""
    x, radius = x0.clone(), torch.full((len(x0),), float(eps), device=x0.device)
    best_loss, best_x = torch.full_like(radius, float("inf")), x0.clone()
    for t in range(steps + 1):
        loss, g = _evaluate(loss_fn, x, y, chunk, None if t < steps else torch.zeros_like(radius, dtype=torch.bool))
        better = loss < best_loss
        best_loss, best_x = torch.where(better, loss, best_loss), torch.where(better[:, None, None, None], x, best_x)
        if t < steps:
            x = _settle(x0, _raw_delta(x, x0, g, step, norm), radius, norm)
        if on_step is not None:
            on_step(1)
    return best_x


# ---------------------------------------------------------------- shared trajectory --------------
@dataclass
class _Rows:
    """Rows optimised together: the shared trajectory (budget -1) and branched-off budgets."""

    img: Tensor  # (M,) index of the original image
    budget: Tensor  # (M,) budget index, -1 for the shared trajectory
    radius: Tensor  # (M,) projection radius
    t_end: Tensor  # (M,) last iterate index of the row
    x: Tensor
    best_loss: Tensor
    best_x: Tensor

    def take(self, idx: Tensor) -> _Rows:
        """The rows ``idx`` (a mask or indices) selects; itself, uncopied, when a mask keeps all."""
        if idx.dtype == torch.bool and bool(idx.all()):
            return self
        return _Rows(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    def cat(self, other: _Rows) -> _Rows:
        return _Rows(*(torch.cat([getattr(self, f), getattr(other, f)]) for f in self.__dataclass_fields__))


def _run_shared(loss_fn: LossFn, x0: Tensor, y: Tensor, eps: Sequence[float], steps: Sequence[int],
                step: float, norm: str, chunk: int, on_step: OnStep = None) -> list[Tensor]:
    """Every budget from one trajectory, branching a budget off an image only where it binds."""
    n, dev = len(x0), x0.device
    eps_t, steps_t = torch.tensor(eps, device=dev), torch.tensor(steps, device=dev)
    rows = _Rows(torch.arange(n, device=dev), torch.full((n,), -1, device=dev),
                 eps_t.max().expand(n).clone(), steps_t.max().expand(n).clone(), x0.clone(),
                 torch.full((n,), float("inf"), device=dev), x0.clone())
    branched = torch.zeros(len(eps), n, dtype=torch.bool, device=dev)
    out = [x0.clone() for _ in eps]
    for t in range(int(steps_t.max()) + 1):
        alive = rows.t_end > t  # rows at their last step only compare their loss: no gradient
        loss, g = _evaluate(loss_fn, rows.x, y[rows.img], chunk, alive)
        better = loss < rows.best_loss
        rows.best_loss = torch.where(better, loss, rows.best_loss)
        rows.best_x = torch.where(better[:, None, None, None], rows.x, rows.best_x)
        _record(rows, branched, out, steps, t)
        if on_step is not None:
            on_step(1)
        if not alive.any():
            break
        rows = rows.take(alive)
        delta = _raw_delta(rows.x, x0[rows.img], g[alive], step, norm)
        rows, delta = _branch(rows, delta, branched, eps_t, steps_t, t, norm)
        rows.x = _settle(x0[rows.img], delta, rows.radius, norm)
    return out


def _record(rows: _Rows, branched: Tensor, out: list[Tensor], steps: Sequence[int], t: int) -> None:
    """Store the best iterate of every (image, budget) whose last step is ``t``."""
    shared = rows.budget < 0
    for k, tk in enumerate(steps):
        if tk != t:
            continue
        sel = shared & ~branched[k, rows.img]
        out[k][rows.img[sel]] = rows.best_x[sel]
        own = rows.budget == k
        out[k][rows.img[own]] = rows.best_x[own]


def _branch(rows: _Rows, delta: Tensor, branched: Tensor, eps: Tensor, steps: Tensor, t: int,
            norm: str) -> tuple[_Rows, Tensor]:
    """Copy shared rows into per-budget rows where this step's projection binds for that budget."""
    shared = (rows.budget < 0).nonzero()[:, 0]
    size = _size(delta[shared], norm)
    new, new_delta = [], []
    for k in range(len(eps)):
        if int(steps[k]) <= t:
            continue
        bind = (size > eps[k]) & ~branched[k, rows.img[shared]]
        if bind.any():
            src = shared[bind]
            part = rows.take(src)
            part.budget = torch.full_like(part.budget, k)
            part.radius, part.t_end = eps[k].expand(len(src)).clone(), steps[k].expand(len(src)).clone()
            branched[k, part.img] = True
            new.append(part)
            new_delta.append(delta[src])
    # a shared row nobody still reads (every later budget branched) stops here
    pending = (steps > t)[:, None] & ~branched[:, rows.img]
    keep = (rows.budget >= 0) | pending.any(0)
    rows, delta = rows.take(keep), delta[keep]
    for part, d in zip(new, new_delta, strict=True):
        rows, delta = rows.cat(part), torch.cat([delta, d])
    return rows, delta


# ---------------------------------------------------------------- public API ---------------------
@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode with parameter grads off for the duration, then restore the caller's state."""
    flags, training = [p.requires_grad for p in model.parameters()], model.training
    model.eval().requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(f)
        model.train(training)


def _diverge_mask(model: nn.Module, diverge_from: Sequence[int | str] | None, num: int) -> Tensor | None:
    """Boolean (num_classes,) mask of the classes ``logit_diverge`` moves away from."""
    if diverge_from is None:
        return None
    classes = list(getattr(model, "classes", []))
    mask = torch.zeros(num, dtype=torch.bool)
    for c in diverge_from:
        if isinstance(c, str):
            if c not in classes:
                raise UserError(f"diverge_from: class {c!r} is not a class of the model ({', '.join(classes)})")
            c = classes.index(c)
        if not 0 <= int(c) < num:
            raise UserError(f"diverge_from: class index {c} is out of range for {num} classes")
        mask[int(c)] = True
    return mask


def _loss_fn(model: nn.Module, objective: str, diverge_from: Sequence[int | str] | None,
             probe: Tensor) -> LossFn:
    """``(x, y) -> per-image loss`` of ``model`` for ``objective``."""
    diverge = None
    if diverge_from is not None and len(probe):
        with torch.no_grad():
            num = model(probe).shape[1]
        diverge = _diverge_mask(model, diverge_from, num).to(probe.device)

    def loss_fn(x: Tensor, y: Tensor) -> Tensor:
        return objective_loss(model(x), y, objective, diverge)

    return loss_fn


def _check(budgets: Sequence[float], objective: str, norm: str, step_size: float, steps: int | None) -> None:
    if objective not in OBJECTIVES:
        raise UserError(f"objective: must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if norm not in NORMS:
        raise UserError(f"norm: must be one of {', '.join(NORMS)}, got {norm!r}")
    if not budgets or any(b < 0 for b in budgets):
        raise UserError(f"budgets: need one or more budgets >= 0, got {list(budgets)}")
    if step_size <= 0 or (steps is not None and steps < 1):
        raise UserError(f"step_size/steps: must be positive, got {step_size} / {steps}")


def enhance(model: nn.Module, images: Tensor, labels: Tensor | Sequence[int], *, budgets: Sequence[float],
            objective: str = "logit", step_size: float = 0.5, norm: str = "l2", steps: int | None = None,
            diverge_from: Sequence[int | str] | None = None, batch_size: int = 128,
            shared: bool = True, progress: bool = False, on_step: OnStep = None) -> dict[float, Tensor]:
    """Enhance ``images`` (N, C, H, W in [0, 1]) towards ``labels`` at every budget.

    ``objective``: ``logit`` (-z_gt), ``logit_diverge`` (-(z_gt - mean z_c over ``diverge_from``,
    class names or indices, default all other classes)) or ``cross_entropy``; ``norm``: ``l2`` or
    ``linf``; ``steps``: per budget ``max(1, round(eps / step_size))`` unless given. Returns
    ``{budget: tensor like images}`` (float results; :func:`.quantize.quantize_within` rounds them for storing).
    ``shared=False`` runs the plain per-budget loop; ``progress`` shows a bar over batches;
    ``on_step(1)`` is called after every step (iterate evaluated) of every batch.
    """
    _check(budgets, objective, norm, step_size, steps)
    eps = sorted({float(b) for b in budgets})
    n_steps = [default_steps(e, step_size, steps) for e in eps]
    labels = torch.as_tensor(labels, dtype=torch.long)
    dev = next(iter(model.parameters()), torch.empty(0)).device
    out = {e: torch.empty_like(images) for e in eps}
    with _frozen(model):
        loss_fn = _loss_fn(model, objective, diverge_from, images[:1].to(dev, torch.float32))
        starts = range(0, len(images), batch_size)
        for lo in (console.progress(starts, desc="enhance", unit="batch", leave=False) if progress and len(starts) > 1 else starts):
            x0, y = images[lo:lo + batch_size].to(dev, torch.float32), labels[lo:lo + batch_size].to(dev)
            if shared:
                res = _run_shared(loss_fn, x0, y, eps, n_steps, step_size, norm, batch_size, on_step)
            else:
                res = [_run_reference(loss_fn, x0, y, e, s, step_size, norm, batch_size, on_step)
                       for e, s in zip(eps, n_steps, strict=True)]
            for e, r in zip(eps, res, strict=True):
                out[e][lo:lo + batch_size] = r.to(images.device, images.dtype)
    return {float(b): out[float(b)] for b in dict.fromkeys(budgets)}
