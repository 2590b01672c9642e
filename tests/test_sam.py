"""SAM, ASAM and SAM-A steppers (imbtrain/methods/sam.py), against hand-worked numbers."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from imbtrain.config import ConfigError, TrainConfig
from imbtrain.errors import UserError
from imbtrain.methods.sam import (
    STEPPERS,
    Stepper,
    build_stepper,
    class_radii,
    perturbation_norm,
)
from imbtrain.models.base import ImbModel

# ---------------------------------------------------------------- radii


@pytest.mark.parametrize("form,power,expected", [
    # p = (0.9, 0.1), K p = (1.8, 0.2): rho (K p)^-1 = (0.1 / 1.8, 0.1 / 0.2)
    ("inverse", 1.0, [0.1 / 1.8, 0.5]),
    # rho (K p)^-1/2 = (0.1 / sqrt(1.8), 0.1 / sqrt(0.2)) = (0.0745356, 0.2236068)
    ("inverse", 0.5, [0.0745356, 0.2236068]),
    # eq. (5): rho / (1 - p) = (0.1 / 0.1, 0.1 / 0.9); power is ignored
    ("paper_eq", 1.0, [1.0, 0.1111111]),
    ("paper_eq", 0.5, [1.0, 0.1111111]),
])
def test_class_radii_by_hand(form, power, expected):
    radii = class_radii([900, 100], 0.1, form, power)
    assert radii.dtype == torch.float32
    assert radii.tolist() == pytest.approx(expected, abs=1e-6)


def test_inverse_radii_reduce_to_rho_on_balanced_data():
    assert class_radii([50, 50, 50], 0.05, "inverse", 0.5).tolist() == pytest.approx([0.05] * 3)


def test_stepper_registry_covers_the_config_choices():
    assert set(STEPPERS) == {"none", "sam", "sam_a"}


@pytest.mark.parametrize("name", STEPPERS.names())
def test_every_stepper_takes_a_step_that_lowers_the_loss(name):
    model, _, loss = step_once(name, [30, 10], [0, 0, 0, 1], lr=0.1)
    x, t = batch([0, 0, 0, 1])
    after = float(make_closure(model, x, t)(None).detach())
    assert math.isfinite(float(loss)) and after < float(loss)


# ---------------------------------------------------------------- fixtures


def tiny_model(seed=0):
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
    return ImbModel(backbone, feature_dim=8, num_classes=2)


def batch(labels, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(labels), 4, generator=g)
    t = F.one_hot(torch.tensor(labels), 2).float()
    return x, t


def make_closure(model, x, t):
    def closure(w):
        per = -(t * F.log_softmax(model(x), 1)).sum(1)
        return (per * w).mean() if w is not None else per.mean()
    return closure


def cfg_for(sam, **kw):
    return TrainConfig(sam=sam, sam_rho=kw.pop("rho", 0.1), **kw)


def step_once(sam, counts, labels, model=None, lr=0.1, **kw):
    model = model or tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    stepper = build_stepper(cfg_for(sam, **kw), counts, opt)
    x, t = batch(labels)
    loss = stepper.step(model, make_closure(model, x, t), t)
    return model, stepper, loss


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# ---------------------------------------------------------------- steps by hand


def test_erm_step_is_one_sgd_step():
    model = tiny_model()
    ref = copy.deepcopy(model)
    x, t = batch([0, 1, 1, 0])
    make_closure(ref, x, t)(None).backward()
    expected = flat(ref) - 0.1 * torch.cat([p.grad.flatten() for p in ref.parameters()])
    step_once("none", [10, 10], [0, 1, 1, 0], model=model)
    assert torch.allclose(flat(model), expected, atol=1e-7)


def test_sam_step_by_hand():
    # w' = w + rho g / ||g||; w_new = w - lr * grad L(w') (plain SGD).
    model = tiny_model()
    ref = copy.deepcopy(model)
    x, t = batch([0, 1, 1, 0])
    params = list(ref.parameters())
    g = torch.autograd.grad(make_closure(ref, x, t)(None), params)
    norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    w0 = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, gi in zip(params, g, strict=True):
            p.add_(0.1 * gi / norm)
    g2 = torch.autograd.grad(make_closure(ref, x, t)(None), params)
    expected = torch.cat([(w - 0.1 * gi).flatten() for w, gi in zip(w0, g2, strict=True)])
    _, stepper, _ = step_once("sam", [10, 10], [0, 1, 1, 0], model=model)
    assert perturbation_norm(stepper.last_e) == pytest.approx(0.1, rel=1e-6)
    assert torch.allclose(flat(model), expected, atol=1e-6)


def test_sam_a_with_equal_radii_is_sam():
    labels = [0, 1, 1, 0, 1, 0]
    sam_model, _, sam_loss = step_once("sam", [30, 30], labels)
    sama_model, _, sama_loss = step_once("sam_a", [30, 30], labels)
    assert not torch.equal(flat(sam_model), flat(tiny_model()))
    assert torch.allclose(flat(sam_model), flat(sama_model), atol=1e-6)
    assert float(sam_loss) == pytest.approx(float(sama_loss), abs=1e-6)


def test_sam_a_one_class_batch_radius_is_that_class_radius():
    # counts [900, 100], rho 0.1, power 0.5: rho_1 = 0.1 / sqrt(0.2) = 0.2236068.
    model = tiny_model()
    ref = copy.deepcopy(model)
    x, t = batch([1, 1, 1, 1])
    _, stepper, _ = step_once("sam_a", [900, 100], [1, 1, 1, 1], model=model)
    assert perturbation_norm(stepper.last_e) == pytest.approx(0.2236068, rel=1e-5)
    # ... in the direction of the plain gradient (all weights rho_1 / rho_bar = 1).
    params = list(ref.parameters())
    g = torch.autograd.grad(make_closure(ref, x, t)(None), params)
    norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    for e, gi in zip(stepper.last_e, g, strict=True):
        assert torch.allclose(e, 0.2236068 * gi / norm, atol=1e-6)


def test_sam_a_mixed_batch_radius_is_mean_of_sample_radii():
    # labels 0, 1, 1, 1: rho_bar = (0.0745356 + 3 * 0.2236068) / 4 = 0.1863390.
    _, stepper, _ = step_once("sam_a", [900, 100], [0, 1, 1, 1])
    assert perturbation_norm(stepper.last_e) == pytest.approx(0.1863390, rel=1e-5)


def test_sam_a_radius_of_cutmix_targets():
    # t = (0.7, 0.3) for every sample: rho_i = 0.7 * 0.0745356 + 0.3 * 0.2236068 = 0.1192570.
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    stepper = build_stepper(cfg_for("sam_a"), [900, 100], opt)
    x, _ = batch([0, 0, 0])
    t = torch.tensor([[0.7, 0.3]] * 3)
    stepper.step(model, make_closure(model, x, t), t)
    assert perturbation_norm(stepper.last_e) == pytest.approx(0.1192570, rel=1e-5)


# ---------------------------------------------------------------- cost and BatchNorm


@pytest.mark.parametrize("sam,passes", [("none", 1), ("sam", 2), ("sam_a", 2)])
def test_passes_per_step(sam, passes):
    model = tiny_model()
    calls = {"fwd": 0, "bwd": 0}
    model.register_forward_hook(lambda *a: calls.__setitem__("fwd", calls["fwd"] + 1))
    # On the head: its input (the features) needs a gradient, so the hook fires once per pass.
    model.head.register_full_backward_hook(
        lambda *a: calls.__setitem__("bwd", calls["bwd"] + 1))
    _, stepper, _ = step_once(sam, [900, 100], [0, 1, 1, 0], model=model)
    assert calls == {"fwd": passes, "bwd": passes}
    assert stepper.passes_per_step == passes


@pytest.mark.parametrize("sam", ["sam", "sam_a"])
def test_bn_running_stats_change_once_per_step(sam):
    erm = tiny_model()
    x, _ = batch([0, 1, 1, 0])
    with torch.no_grad():
        erm.train()(x)  # one ERM forward's update of the running statistics
    model, _, _ = step_once(sam, [900, 100], [0, 1, 1, 0])
    bn, ref = model.backbone[1], erm.backbone[1]
    assert torch.equal(bn.running_mean, ref.running_mean)
    assert torch.equal(bn.running_var, ref.running_var)
    assert int(bn.num_batches_tracked) == 1


def test_asam_perturbation_has_radius_rho_in_the_scaled_metric():
    # ASAM: e = rho T^2 g / ||T g||, T = |w|, so ||e / |w| || = rho.
    model = tiny_model()
    w0 = [p.detach().clone() for p in model.parameters()]
    model, stepper, loss = step_once("sam", [10, 10], [0, 1, 1, 0], model=model,
                                     sam_adaptive=True, rho=0.5)
    assert math.isfinite(float(loss))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    scaled = [torch.where(w != 0, e / w.abs(), torch.zeros_like(e))
              for e, w in zip(stepper.last_e, w0, strict=True)]
    assert perturbation_norm(scaled) == pytest.approx(0.5, rel=1e-5)


def test_fp16_with_sam_is_refused():
    # Refused once, at the edge: the config of a SAM stepper can never ask for fp16.
    opt = torch.optim.SGD(tiny_model().parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="with precision=fp16 is not supported"):
        TrainConfig(sam="sam_a", precision="fp16")
    assert type(build_stepper(cfg_for("none", precision="fp16"), [9, 1], opt)) is Stepper


def test_erm_step_with_grad_scaler_matches_the_plain_step():
    # Loss scaling by a power of two is undone exactly before the optimizer's step.
    plain, _, _ = step_once("none", [10, 10], [0, 1, 1, 0])
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    stepper = build_stepper(cfg_for("none"), [10, 10], opt, scaler)
    x, t = batch([0, 1, 1, 0])
    stepper.step(model, make_closure(model, x, t), t)
    assert torch.allclose(flat(model), flat(plain), atol=1e-7)
    # SAM never meets a GradScaler: the loop makes one for fp16 only, which the config refuses
    # with SAM.
    with pytest.raises(UserError, match="fp16"):
        cfg_for("sam", precision="fp16")


def test_a_class_without_samples_gets_the_base_radius():
    # counts [10, 0]: p = (1, 0); class 0: 0.1 * (2 * 1)^-1/2 = 0.0707107; class 1: rho.
    assert class_radii([10, 0], 0.1).tolist() == pytest.approx([0.0707107, 0.1], abs=1e-6)
