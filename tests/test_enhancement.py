"""The enhancement algorithm: shared trajectory == independent per-budget runs, objectives, edges."""

from __future__ import annotations

import pytest
import torch
from support.reference import enhance_reference
from torch import nn

from lwise_build.errors import UserError
from lwise_build.models.classifier import Classifier
from lwise_build.models.registry import create_net
from lwise_build.ops.enhance import default_steps, enhance, objective_loss

BUDGETS = [0.25, 0.5, 1, 2, 4, 8]



def tiny_cnn(seed: int = 0, channels: int = 1, classes: int = 3) -> Classifier:
    torch.manual_seed(seed)
    net, stages = create_net("smallcnn-tiny", classes, channels)
    return Classifier(net, stages, [0.5] * channels, [0.25] * channels, [f"c{i}" for i in range(classes)])


def linear(seed: int = 0, d: int = 64, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, classes))


class Bowl(nn.Module):
    """Class 0's logit is ``-k * ||x - c||^2``: a step of 0.5 overshoots images close to ``c``."""

    def __init__(self, c: torch.Tensor, k: float = 10.0):
        super().__init__()
        self.c = nn.Parameter(c.clone())
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z0 = -self.k * (x - self.c).flatten(1).pow(2).sum(1)
        return torch.stack([z0, torch.zeros_like(z0)], 1)


def images(n: int = 6, c: int = 1, size: int = 12, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, size, size, generator=g) * 255).round() / 255


def max_diff(a: dict, b: dict) -> float:
    assert list(a) == list(b)
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def size(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


@pytest.mark.parametrize(("norm", "step", "budgets", "steps"), [
    ("l2", 0.5, BUDGETS, None),
    ("l2", 0.5, [0.1, 0.25, 0.5, 1.0, 3.0], None),  # 0.1 and 0.25: smaller than one step
    ("l2", 0.5, [0.25, 0.75, 2.0], 4),  # fixed steps: branches continue for several steps
    ("linf", 0.02, [0.01, 0.02, 0.05, 0.1], None),
    ("linf", 0.03, [0.01, 0.05, 0.2], 5),
])
def test_shared_trajectory_equals_independent_runs(norm, step, budgets, steps):
    model, x, y = tiny_cnn(), images(), torch.tensor([0, 1, 2, 0, 1, 2])
    kw = dict(budgets=budgets, step_size=step, norm=norm, steps=steps)
    shared, ref = enhance(model, x, y, **kw), enhance_reference(model, x, y, **kw)
    assert max_diff(shared, ref) <= 1e-5
    for b, out in shared.items():
        assert float(size(out - x, norm).max()) <= b + 1e-5
        assert out.min() >= 0 and out.max() <= 1
    assert float((shared[max(budgets)] - x).abs().max()) > 0  # the big budget moved something


def test_shared_trajectory_branches_only_where_projection_binds(monkeypatch):
    """Default budgets cost about the largest alone: 17 evaluations, only step 1 carries extra rows."""
    import lwise_build.ops.enhance as E

    rows = []
    orig = E._evaluate

    def counting(fn, x, y, chunk, grad=None):
        rows.append(len(x))
        return orig(fn, x, y, chunk, grad)

    monkeypatch.setattr(E, "_evaluate", counting)
    enhance(tiny_cnn(), images(4), torch.tensor([0, 1, 2, 0]), budgets=BUDGETS)
    assert len(rows) == default_steps(8, 0.5) + 1 == 17
    assert rows[0] == 4 and rows[-1] == 4
    assert all(n == 4 for n in rows[2:])  # 0.25 (and maybe 0.5) branch off at step 1, then end


def test_only_rows_that_step_again_take_a_backward_pass():
    """The compute floor: T passes with gradients for the largest budget, forward passes alone for
    the final iterate and for budgets that end early (e.g. a branch at step 1), nothing more."""
    model, x, y = tiny_cnn(), images(4), torch.tensor([0, 1, 2, 0])
    counts = {"grad": 0, "plain": 0}

    def hook(_module, args):
        counts["grad" if torch.is_grad_enabled() else "plain"] += len(args[0])

    model.register_forward_pre_hook(hook)
    enhance(model, x, y, budgets=BUDGETS, batch_size=16)
    steps = default_steps(8, 0.5)
    assert counts["grad"] == steps * 16  # one padded batch per step with a gradient
    assert counts["plain"] <= 3 * 16  # the final iterate, and the budgets that branch at step 1
    counts.update(grad=0, plain=0)
    enhance_reference(model, x, y, budgets=[8], batch_size=16)
    assert counts == {"grad": steps * 16, "plain": 16}


def test_budget_smaller_than_one_step_lands_on_the_ball():
    x, y = 0.25 + 0.5 * images(3), torch.tensor([0, 1, 2])  # away from 0 and 1: no clamping
    out = enhance(tiny_cnn(), x, y, budgets=[0.1, 8])[0.1]
    norms = size(out - x, "l2")
    assert torch.allclose(norms, torch.full_like(norms, 0.1), atol=1e-5)


def test_original_is_the_best_iterate_when_steps_overshoot():
    c = torch.full((1, 1, 4, 4), 0.5)
    near = c.clone()
    near[0, 0, 0, 0] += 0.1  # one step of 0.5 overshoots the optimum: every iterate is worse
    far = torch.zeros_like(c)  # far from c: steps help
    x, y = torch.cat([near, far]), torch.tensor([0, 0])
    kw = dict(budgets=[0.25, 0.5, 1.0, 4.0])
    shared, ref = enhance(Bowl(c), x, y, **kw), enhance_reference(Bowl(c), x, y, **kw)
    assert max_diff(shared, ref) <= 1e-5
    for b in (0.25, 0.5):
        assert torch.equal(shared[b][0], near[0]), b  # x0 kept
        assert not torch.equal(shared[b][1], far[0])  # the far image improved


@pytest.mark.parametrize("objective", ["logit", "logit_diverge", "cross_entropy"])
def test_each_objective_raises_the_gt_logit(objective):
    model = linear()
    x, y = images(8, size=8, seed=3), torch.arange(8) % 4
    out = enhance(model, x, y, budgets=[0.5, 2.0], objective=objective)
    with torch.no_grad():
        gt = {b: model(v).gather(1, y[:, None])[:, 0] for b, v in {0: x, **out}.items()}
    assert bool((gt[0.5] > gt[0]).all()) and bool((gt[2.0] > gt[0.5]).all()), objective


def test_logit_diverge_uses_only_the_named_classes():
    logits = torch.tensor([[3.0, 1.0, -1.0, 5.0]])
    y = torch.tensor([0])
    assert float(objective_loss(logits, y, "logit_diverge")[0]) == pytest.approx(-(3 - 5 / 3))
    mask = torch.tensor([False, True, True, False])
    assert float(objective_loss(logits, y, "logit_diverge", mask)[0]) == pytest.approx(-3.0)
    assert float(objective_loss(logits, y, "logit")[0]) == -3.0


def test_diverge_from_by_name_and_unknown_name():
    model, x, y = tiny_cnn(), images(2), torch.tensor([0, 1])
    kw = dict(budgets=[1.0], objective="logit_diverge")
    a = enhance(model, x, y, diverge_from=["c1", "c2"], **kw)[1.0]
    b = enhance(model, x, y, diverge_from=[1, 2], **kw)[1.0]
    assert torch.equal(a, b)
    with pytest.raises(UserError, match="c9"):
        enhance(model, x, y, diverge_from=["c9"], **kw)


def test_deterministic_and_batch_independent_and_model_untouched():
    model, x, y = tiny_cnn(), images(5), torch.tensor([0, 1, 2, 0, 1])
    model.train()
    a = enhance(model, x, y, budgets=[0.5, 1.0], batch_size=5)
    b = enhance(model, x, y, budgets=[0.5, 1.0], batch_size=2)
    assert max_diff(a, b) <= 1e-5
    assert torch.equal(enhance(model, x, y, budgets=[0.5, 1.0])[1.0], a[1.0])
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_default_steps_rule_and_bad_arguments():
    assert [default_steps(b, 0.5) for b in BUDGETS] == [1, 1, 2, 4, 8, 16]
    assert default_steps(8, 0.5, steps=3) == 3
    model, x, y = tiny_cnn(), images(1), torch.tensor([0])
    for kw in (dict(objective="hinge"), dict(norm="l1"), dict(budgets=[])):
        with pytest.raises(UserError):
            enhance(model, x, y, **{"budgets": [1.0], **kw})
