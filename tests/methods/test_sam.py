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
    SAM_A_MODES,
    STEPPERS,
    Stepper,
    build_stepper,
    class_radii,
    perturbation_norm,
    radius_groups,
)
from imbtrain.methods.weights import class_weighted_mean
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


def tiny_model(seed=0, classes=2):
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
    return ImbModel(backbone, feature_dim=8, num_classes=classes)


def batch(labels, seed=1, classes=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(labels), 4, generator=g)
    t = F.one_hot(torch.tensor(labels), classes).float()
    return x, t


def make_closure(model, x, t):
    # The loop's closure without class weights: mean(w_i l_i), one loss per column of a
    # (B, G) matrix w (SAM-A's group modes).
    def closure(w, ssl_share=None):
        per = -(t * F.log_softmax(model(x), 1)).sum(1)
        return class_weighted_mean(per, None, w)
    return closure


def cfg_for(sam, **kw):
    return TrainConfig(sam=sam, sam_rho=kw.pop("rho", 0.1), **kw)


def step_once(sam, counts, labels, model=None, lr=0.1, **kw):
    model = model or tiny_model(classes=len(counts))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    stepper = build_stepper(cfg_for(sam, **kw), counts, opt)
    x, t = batch(labels, classes=len(counts))
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


@pytest.mark.parametrize("sam,mode", [("sam", "weighted"), ("sam_a", "weighted"),
                                      ("sam_a", "per_class"), ("sam_a", "grouped")])
def test_bn_running_stats_change_once_per_step(sam, mode):
    erm = tiny_model()
    x, _ = batch([0, 1, 1, 0])
    with torch.no_grad():
        erm.train()(x)  # one ERM forward's update of the running statistics
    model, _, _ = step_once(sam, [900, 100], [0, 1, 1, 0], sam_a_mode=mode)
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


# ---------------------------------------------------------------- SAM-A's modes


def test_radius_groups_by_hand():
    # per_class: one group per distinct radius; grouped: classes ranked by radius (ties alike)
    # and cut into `groups` buckets of about K / groups classes.
    radii = torch.tensor([0.5, 0.1, 0.3, 0.3, 0.2, 0.4])
    group, r = radius_groups(radii, "per_class")
    assert group.tolist() == [4, 0, 2, 2, 1, 3] and r.tolist() == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.5])
    # ranks (classes of smaller radius) [5, 0, 2, 2, 1, 4]; * 3 // 6 = [2, 0, 1, 1, 0, 2]:
    # groups {0.1, 0.2}, {0.3, 0.3}, {0.5, 0.4} with mean radii 0.15, 0.3, 0.45
    group, r = radius_groups(radii, "grouped", 3)
    assert group.tolist() == [2, 0, 1, 1, 0, 2] and r.tolist() == pytest.approx([0.15, 0.3, 0.45])
    # equal radii: one group in every mode (the step is SAM's)
    for mode in ("per_class", "grouped"):
        group, r = radius_groups(torch.full((4,), 0.05), mode, 3)
        assert group.tolist() == [0] * 4 and r.tolist() == pytest.approx([0.05])
    with pytest.raises(ValueError, match="no groups"):
        radius_groups(radii, "weighted")


def test_sam_a_modes_are_the_config_choices():
    from imbtrain.config import FIELDS

    assert FIELDS["sam_a_mode"].metadata["choices"] == SAM_A_MODES
    assert TrainConfig().sam_a_mode == "weighted" and TrainConfig().sam_a_groups == 3


@pytest.mark.parametrize("mode", SAM_A_MODES)
@pytest.mark.parametrize("counts,power", [([30, 30, 30], 0.5), ([900, 90, 10], 0.0)])
def test_every_sam_a_mode_with_equal_radii_is_sam(mode, counts, power):
    # Balanced counts, or power 0 (rho_c = rho (K p_c)^0 = rho): every radius is rho.
    labels = [0, 1, 2, 0, 1, 0, 2, 0]
    sam_model, _, sam_loss = step_once("sam", counts, labels)
    model, stepper, loss = step_once("sam_a", counts, labels, sam_a_mode=mode,
                                     sam_a_power=power)
    assert not torch.equal(flat(sam_model), flat(tiny_model(classes=3)))
    assert torch.allclose(flat(sam_model), flat(model), atol=1e-6)
    assert float(sam_loss) == pytest.approx(float(loss), abs=1e-6)
    assert perturbation_norm(stepper.last_e) == pytest.approx(0.1, rel=1e-5)


@pytest.mark.parametrize("mode,groups,radius", [
    # counts [900, 90, 10]: K p = (2.7, 0.27, 0.03); rho (K p)^-1/2 with rho 0.1 =
    # (0.0608581, 0.1924501, 0.5773503)
    ("weighted", 3, 0.5773503), ("per_class", 3, 0.5773503), ("grouped", 3, 0.5773503),
    # two groups: ranks (0, 1, 2) * 2 // 3 = (0, 0, 1): class 2 alone keeps its radius
    ("grouped", 2, 0.5773503),
    # one group: the mean radius of the three classes, (0.0608581 + 0.1924501 + 0.5773503) / 3
    ("grouped", 1, 0.2768862),
])
def test_a_one_class_batch_gets_its_class_radius(mode, groups, radius):
    _, stepper, _ = step_once("sam_a", [900, 90, 10], [2, 2, 2, 2], sam_a_mode=mode,
                              sam_a_groups=groups)
    assert perturbation_norm(stepper.last_e) == pytest.approx(radius, rel=1e-5)


def _per_class_sam_by_hand(model, x, t, radii, lr):
    """SAM-A's per-class step written as a loop over the classes of the batch: g_c the
    gradient of class c's share mean_i(t_ic l_i) at w, e_c = rho_c g_c / ||g_c||, descent
    gradient sum_c grad share_c(w + e_c), one SGD step at w."""
    params = list(model.parameters())
    w0 = [p.detach().clone() for p in params]

    def share(c):
        per = -(t * F.log_softmax(model(x), 1)).sum(1)
        return (per * t[:, c]).mean()

    present = [c for c in range(t.shape[1]) if t[:, c].sum() > 0]
    eps = {}
    for c in present:
        g = torch.autograd.grad(share(c), params)
        norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
        eps[c] = [float(radii[c]) * gi / norm for gi in g]
    total = [torch.zeros_like(p) for p in params]
    for c in present:
        with torch.no_grad():
            for p, w, e in zip(params, w0, eps[c], strict=True):
                p.copy_(w + e)
        for acc, gi in zip(total, torch.autograd.grad(share(c), params), strict=True):
            acc += gi
    return torch.cat([(w - lr * gi).flatten() for w, gi in zip(w0, total, strict=True)])


@pytest.mark.parametrize("labels", [[0, 1, 2, 0, 1, 0, 2, 0], [0, 2, 2, 0, 0, 0]])
def test_per_class_mode_equals_a_loop_over_the_classes(labels):
    counts = [900, 90, 10]
    model = tiny_model(classes=3)
    ref = copy.deepcopy(model)
    x, t = batch(labels, classes=3)
    expected = _per_class_sam_by_hand(ref, x, t, class_radii(counts, 0.1), lr=0.1)
    step_once("sam_a", counts, labels, model=model, sam_a_mode="per_class")
    assert torch.allclose(flat(model), expected, atol=1e-6)


def test_per_class_mode_splits_mixed_targets_by_their_class_mass():
    # Soft targets (CutMix): sample i counts t_ic towards class c's share; the shares add up
    # to the batch loss, which the step returns.
    counts = [900, 90, 10]
    model = tiny_model(classes=3)
    ref = copy.deepcopy(model)
    x, _ = batch([0, 0, 0, 0], classes=3)
    t = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6], [1.0, 0.0, 0.0], [0.5, 0.0, 0.5]])
    expected = _per_class_sam_by_hand(ref, x, t, class_radii(counts, 0.1), lr=0.1)
    plain = float(make_closure(copy.deepcopy(model), x, t)(None).detach())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    stepper = build_stepper(cfg_for("sam_a", sam_a_mode="per_class"), counts, opt)
    loss = stepper.step(model, make_closure(model, x, t), t)
    assert float(loss) == pytest.approx(plain, rel=1e-6)
    assert torch.allclose(flat(model), expected, atol=1e-6)


@pytest.mark.parametrize("mode,groups,labels,passes", [
    ("per_class", 3, [0, 1, 2, 0], 6),  # three classes in the batch: 2 x 3
    ("per_class", 3, [0, 2, 2, 0], 4),  # two classes: 2 x 2
    ("grouped", 2, [0, 1, 2, 0], 4),    # groups {0, 1} and {2}: 2 x 2
    ("grouped", 2, [0, 1, 1, 0], 2),    # only the group {0, 1}: SAM's 2
])
def test_group_modes_count_their_passes(mode, groups, labels, passes):
    # One forward at w, then per group one backward at w and one forward/backward at w + e_g.
    model = tiny_model(classes=3)
    calls = {"fwd": 0, "bwd": 0}
    model.register_forward_hook(lambda *a: calls.__setitem__("fwd", calls["fwd"] + 1))
    model.head.register_full_backward_hook(
        lambda *a: calls.__setitem__("bwd", calls["bwd"] + 1))
    _, stepper, _ = step_once("sam_a", [900, 90, 10], labels, model=model, sam_a_mode=mode,
                              sam_a_groups=groups)
    assert calls == {"fwd": 1 + passes // 2, "bwd": passes}
    assert stepper.passes == passes and len(stepper.last_groups) == passes // 2
    assert stepper.passes_per_step == 2 * (3 if mode == "per_class" else groups)


@pytest.mark.parametrize("mode,per_step", [("weighted", 2), ("per_class", 6), ("grouped", 4)])
def test_the_loop_reports_the_group_modes_passes(mode, per_step):
    # One batch an epoch that holds all 3 classes: per_class 2 x 3 passes, grouped (2 groups)
    # 2 x 2, weighted 2.
    from imbtrain.train import train

    cfg = TrainConfig(dataset="synthetic", synthetic_shape="6", synthetic_classes=3,
                      synthetic_samples=20, train_ratio=0.25, model="mlp", epochs=2,
                      batch_size=64, sam="sam_a", sam_a_mode=mode, sam_a_groups=2,
                      device="cpu")
    result = train(cfg, log=lambda line: None)
    assert result.train_counts == [20, 10, 5]
    assert [h["fwd_bwd_passes"] for h in result.history] == [per_step, per_step]
