"""M2m: seed probabilities by hand, translations and the teacher's acceptance test with a
fixed linear teacher whose verdict is known in closed form, pixel units and clamping on
images, the random keep step, and the batch transformation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from imbtrain.config import TrainConfig
from imbtrain.errors import UserError
from imbtrain.methods.m2m import (
    M2mMethod,
    keep_step,
    seed_weights,
    teacher_accepts,
    translate,
)
from imbtrain.models import create_model
from imbtrain.models.base import ImbModel


def linear(weight: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.zero_()
    return layer.requires_grad_(False)


def teacher() -> nn.Linear:
    """Logits [0, 10 x_1]: p(class 1 | x) = sigmoid(10 x_1), >= 0.99 iff x_1 >= ln(99) / 10
    = 0.4595; its CE gradient for target 1 is -10 (1 - p) e_1, so a normalised descent step
    of size 0.1 adds exactly 0.1 to x_1."""
    return linear([[0.0, 0.0], [0.0, 10.0]])


def cfg(**overrides) -> SimpleNamespace:
    base = dict(method="m2m", epochs=10, batch_size=8, seed=0, model="mlp", m2m_teacher="",
                m2m_epoch=-1, m2m_beta=0.999, m2m_gamma=0.99, m2m_lambda=0.5, m2m_steps=10,
                m2m_step_size=0.1, m2m_noise=0.0)
    # Every other field at TrainConfig's default (the teacher is built from the config).
    return SimpleNamespace(**{**TrainConfig().to_dict(), **base, **overrides})


def fake_data(counts: list[int]) -> SimpleNamespace:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return SimpleNamespace(num_classes=len(counts), train_counts=list(counts),
                           train_x=torch.zeros(len(y), 2), train_y=y, input_shape=(2,),
                           is_image=False)


def test_seed_weights_by_hand():
    # 1 - 0.999 ** gap: gap 990 -> 1 - 0.371393 = 0.628607; 90 -> 1 - 0.913890 = 0.086110;
    # 900 -> 1 - 0.406387 = 0.593613; classes no larger than the target -> 0.
    counts = torch.tensor([1000.0, 100.0, 10.0])
    w = seed_weights(counts, torch.tensor([0, 1, 2]), torch.tensor([2, 1]), 0.999)
    assert w[0].tolist() == pytest.approx([0.628607, 0.086110, 0.0], abs=1e-5)
    assert w[1].tolist() == pytest.approx([0.593613, 0.0, 0.0], abs=1e-5)


def test_teacher_accepts_exactly_the_translations_it_is_confident_about():
    # Seeds with x_1 in [-1, -0.6, -0.5, 0]; no noise; 10 steps of 0.1 along e_1 (f's logits
    # are constant, so the lambda term adds no gradient): x_1 ends at [0, 0.4, 0.5, 1.0],
    # p(1) = sigmoid(10 x_1) = [0.5, 0.9820, 0.9933, 0.99995]; only the last two reach 0.99.
    x0 = torch.tensor([[0.3, -1.0], [0.3, -0.6], [0.3, -0.5], [0.3, 0.0]])
    target, seed_class = torch.ones(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)
    g, f = teacher(), linear([[0.0, 0.0], [0.0, 0.0]])
    x = translate(g, f, x0, target, seed_class, steps=10, step_size=0.1, noise=0.0, lam=0.5)
    assert torch.allclose(x, x0 + torch.tensor([0.0, 1.0]), atol=1e-5)
    assert teacher_accepts(g, x, target, 0.99).tolist() == [False, False, True, True]


def test_translation_lowers_the_seed_class_logit_of_f_and_starts_on_the_noise_sphere():
    # g constant: only lambda * f_0(x) = 0.5 * 5 x_0 drives the steps, each -0.1 along e_0.
    g, f = linear([[0.0, 0.0], [0.0, 0.0]]), linear([[5.0, 0.0], [0.0, 0.0]])
    x0 = torch.zeros(3, 2)
    zeros = torch.zeros(3, dtype=torch.long)
    x = translate(g, f, x0, zeros + 1, zeros, steps=4, step_size=0.1, noise=0.0, lam=0.5)
    assert torch.allclose(x, torch.tensor([[-0.4, 0.0]] * 3), atol=1e-6)
    start = translate(g, f, x0, zeros + 1, zeros, steps=0, step_size=0.1, noise=0.5, lam=0.5)
    assert start.norm(dim=1).tolist() == pytest.approx([0.5] * 3)


def batch(seed_x1: float) -> tuple[torch.Tensor, torch.Tensor]:
    # three class-0 seeds at (0.3, seed_x1), two class-1 samples far away
    x = torch.tensor([[0.3, seed_x1]] * 3 + [[-5.0, -5.0]] * 2)
    return x, torch.tensor([0, 0, 0, 1, 1])


def test_transform_batch_replaces_minority_samples_by_accepted_translations_only():
    # counts [100000, 1]: class 1 is a candidate with probability 1 - 1e-5, class 0 never;
    # the keep step's 1 - 0.999 ** 99999 = 1 - 3.6e-44 is 1 in float32: every translation the
    # teacher accepts is kept.
    method = M2mMethod(cfg(m2m_epoch=2), fake_data([100000, 1]))
    method.teacher = teacher()
    f = ImbModel(nn.Identity(), feature_dim=2, num_classes=2)
    with torch.no_grad():
        f.head.weight.zero_()
    f.train()
    x, y = batch(0.0)
    assert method.sampling(1) == "shuffle" and method.sampling(2) == "balanced"
    assert method.transform_batch(f, x, y, epoch=1)[0] is x  # before m2m_epoch: untouched
    torch.manual_seed(0)
    out, out_y = method.transform_batch(f, x, y, epoch=2)
    # every seed is (0.3, 0); its translation (0.3, 1.0) has p(1) = 0.99995: accepted
    assert torch.equal(out_y, y) and torch.equal(out[:3], x[:3])
    assert torch.allclose(out[3:], torch.tensor([[0.3, 1.0]] * 2), atol=1e-5)
    assert f.training and not method.teacher.training
    assert (method.generated, method.accepted, method.passes) == (2, 2, 20)
    # seeds at (0.3, -1): translations end at x_1 = 0, p(1) = 0.5 < 0.99: all rejected
    x, y = batch(-1.0)
    out, _ = method.transform_batch(f, x, y, epoch=5)
    assert torch.equal(out, x)
    assert (method.generated, method.accepted, method.passes) == (4, 2, 40)


def test_m2m_epoch_default_and_a_batch_without_larger_classes():
    method = M2mMethod(cfg(m2m_epoch=-1, epochs=10), fake_data([1000, 1]))
    assert method.start == 8  # floor(0.8 * 10)
    method.teacher = teacher()
    x, y = torch.zeros(2, 2), torch.tensor([1, 1])  # no class-0 seed in the batch
    out, _ = method.transform_batch(ImbModel(nn.Identity(), 2, 2), x, y, epoch=9)
    assert out is x and method.passes == 0


def test_teacher_loads_from_a_state_dict_and_bad_files_are_user_errors(tmp_path):
    data = fake_data([5, 2])
    g = create_model("mlp", (2,), 2)
    path = tmp_path / "teacher.pt"
    torch.save(g.state_dict(), path)
    method = M2mMethod(cfg(m2m_teacher=str(path)), data)
    x = torch.randn(4, 2)
    assert torch.allclose(method.teacher(x), g.eval()(x))
    assert not any(p.requires_grad for p in method.teacher.parameters())
    assert method.configure_model(g) is g  # a loaded teacher: no extra training
    with pytest.raises(UserError, match="is not a file"):
        M2mMethod(cfg(m2m_teacher=str(tmp_path / "missing.pt")), data)
    torch.save(create_model("mlp", (2,), 3).state_dict(), path)
    with pytest.raises(UserError, match="does not fit model mlp with 2 classes"):
        M2mMethod(cfg(m2m_teacher=str(path)), data)


# ---------------------------------------------------------------- images: pixel units


def image_data(counts: list[int]) -> SimpleNamespace:
    """1 x 1 x 2 "images" normalised with mean 0.5, std 0.25: z = (x - 0.5) / 0.25 = 4x - 2."""
    data = fake_data(counts)
    data.is_image, data.input_shape, data.mean, data.std = True, (1, 1, 2), (0.5,), (0.25,)
    return data


class Flat(nn.Module):
    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x.flatten(1))


def pixel_teacher() -> nn.Module:
    """On the normalised input z: logits [0, 10 z_1], so p(1) = sigmoid(10 (4 x_1 - 2)) on
    pixels x; >= 0.99 iff x_1 >= (ln(99) / 10 + 2) / 4 = 0.614880."""
    return Flat(teacher())


def test_one_step_moves_step_size_in_pixels_through_the_normalisation():
    # Seed pixels (0.2, 0.3). The objective's gradient on pixels is the normalised one times
    # dz/dx = 1 / std = 4: d CE / d x_1 = -10 (1 - p) * 4 < 0, d / d x_0 = 0, so the
    # normalised step is +e_1 and x_1 moves by exactly step_size = 0.1 pixels, to 0.4 (0.4 in
    # normalised units: the normalised translation of old moved 0.1 / 4 = 0.025 pixels).
    method = M2mMethod(cfg(), image_data([1000, 10]))
    x0 = torch.tensor([[[[0.2, 0.3]]]])
    g, f = pixel_teacher(), Flat(linear([[0.0, 0.0], [0.0, 0.0]]))
    one = torch.ones(1, dtype=torch.long)
    x = translate(g, f, x0, one, one * 0, steps=1, step_size=0.1, noise=0.0, lam=0.5,
                  to_input=method.to_input, clamp=(0.0, 1.0))
    assert x.flatten().tolist() == pytest.approx([0.2, 0.4], abs=1e-6)
    assert method.to_input(x).flatten().tolist() == pytest.approx([-1.2, -0.4], abs=1e-6)


def test_translations_are_clamped_to_the_pixel_range():
    # From x_1 = 0.95, three steps of 0.1 would reach 1.25: each step is clamped, so 1.0.
    # (A gentle teacher, logits [0, z_1]: its gradient along e_1 never vanishes in float32.)
    g, f = Flat(linear([[0.0, 0.0], [0.0, 1.0]])), Flat(linear([[0.0, 0.0], [0.0, 0.0]]))
    method = M2mMethod(cfg(), image_data([1000, 10]))
    one = torch.ones(1, dtype=torch.long)
    x0 = torch.tensor([[[[0.02, 0.95]]]])
    x = translate(g, f, x0, one, one * 0, steps=3, step_size=0.1, noise=0.0, lam=0.5,
                  to_input=method.to_input, clamp=(0.0, 1.0))
    assert x.flatten().tolist() == pytest.approx([0.02, 1.0], abs=1e-6)
    # the noisy start too: seeds at the corners of the range stay inside it
    torch.manual_seed(0)
    corners = torch.tensor([[[[0.0, 1.0]]]] * 64)
    start = translate(g, f, corners, one.repeat(64), one.repeat(64) * 0, steps=0,
                      step_size=0.1, noise=0.5, lam=0.5, clamp=(0.0, 1.0))
    assert float(start.min()) >= 0.0 and float(start.max()) <= 1.0
    assert bool((start != corners).any())


def test_transform_batch_translates_images_in_pixels_and_returns_them_normalised():
    # counts [100000, 1] (keep probability 1). Class-0 seeds at pixels (0.3, 0.25), normalised
    # (-0.8, -3.0); ten steps of 0.1 along e_1 end at pixels (0.3, 1.0) (clamped from 1.25,
    # p(1) = sigmoid(20) >= 0.99: accepted), normalised (-0.8, 2.0).
    method = M2mMethod(cfg(m2m_epoch=0), image_data([100000, 1]))
    method.teacher = pixel_teacher()
    f = ImbModel(nn.Flatten(), feature_dim=2, num_classes=2)
    with torch.no_grad():
        f.head.weight.zero_()
    x = torch.tensor([[[[-0.8, -3.0]]]] * 3 + [[[[2.0, -2.0]]]] * 2)
    y = torch.tensor([0, 0, 0, 1, 1])
    torch.manual_seed(0)
    out, _ = method.transform_batch(f, x, y, epoch=0)
    assert torch.equal(out[:3], x[:3])
    assert out[3:].flatten(1).tolist() == [pytest.approx([-0.8, 2.0], abs=1e-5)] * 2


def test_keep_step_keeps_with_probability_one_minus_beta_to_the_count_gap():
    # M2m's `torch.bernoulli(p_accept)`: counts [1000, 1], one class-0 seed for 4000 class-1
    # candidates, every translation confident (seed at pixel x_1 = 1): p_keep = 1 - 0.999 ** 999
    # = 1 - exp(999 ln 0.999) = 1 - exp(-0.999500) = 1 - 0.368063 = 0.631937. Over 4000 draws
    # the kept share has sd sqrt(0.632 * 0.368 / 4000) = 0.0076; seeded, so the share is fixed.
    method = M2mMethod(cfg(m2m_epoch=0, m2m_steps=1), image_data([1000, 1]))
    method.teacher = pixel_teacher()
    f = ImbModel(nn.Flatten(), feature_dim=2, num_classes=2)
    with torch.no_grad():
        f.head.weight.zero_()
    x = torch.tensor([[[[-0.8, 2.0]]]] + [[[[2.0, -2.0]]]] * 4000)
    y = torch.tensor([0] + [1] * 4000)
    torch.manual_seed(0)
    method.transform_batch(f, x, y, epoch=0)
    candidates = method.generated
    assert candidates == pytest.approx(4000 * 0.999, abs=10)  # chosen w.p. 1 - 1 / 1000
    assert method.accepted / candidates == pytest.approx(0.631937, abs=4 * 0.0076)
    # keep_step itself: Bernoulli draws of the global RNG, reproducible from its seed
    p = torch.full((20000,), 0.095208)  # 1 - 0.999 ** 100
    torch.manual_seed(1)
    first = keep_step(p)
    assert float(first.float().mean()) == pytest.approx(0.095208, abs=4 * 0.0021)
    torch.manual_seed(1)
    assert torch.equal(first, keep_step(p))
