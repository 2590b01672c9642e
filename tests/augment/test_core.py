"""Augmentation: conversion, per-image policies, flip/crop, erasing, CutMix/Mixup, errors."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from imbtrain.augment import AUGMENTATIONS, MIXES, build_augmentation
from imbtrain.augment.auto import OpSpace
from imbtrain.augment.erasing import random_erasing
from imbtrain.augment.flip_crop import FlipCrop, crop_flip, crop_padding
from imbtrain.augment.mix import cutmix_with
from imbtrain.augment.ops import OPS, affine_grid_sample, inverse_affine_matrix
from imbtrain.errors import UserError

SHAPES = [(1, 28, 28), (1, 8, 8), (3, 32, 32)]
POLICIES = sorted(AUGMENTATIONS)


def make_cfg(augment="none", mix="none", mix_alpha=1.0, random_erasing=0.0):
    return SimpleNamespace(augment=augment, mix=mix, mix_alpha=mix_alpha,
                           random_erasing=random_erasing)


def make_data(shape, name="images"):
    c = shape[0]
    if len(shape) == 1:
        return SimpleNamespace(name=name, is_image=False, input_shape=shape, mean=None,
                               std=None, num_classes=3)
    return SimpleNamespace(name=name, is_image=True, input_shape=shape, mean=(0.5,) * c,
                           std=(0.25,) * c, num_classes=10)


def random_images(n, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)


# ----------------------------------------------------------------- conversion and shapes


def test_policy_none_normalises_grayscale_pixel_by_hand():
    data = SimpleNamespace(name="mnist5k", is_image=True, input_shape=(1, 28, 28),
                           mean=(0.1307,), std=(0.3081,), num_classes=10)
    aug = build_augmentation(make_cfg(), data, "cpu")
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    x[1, 0, 3, 4] = 51  # 51 / 255 = 0.2
    out = aug.train_views(x)
    assert out.dtype == torch.float32 and out.shape == (2, 1, 28, 28)
    assert out[1, 0, 3, 4].item() == pytest.approx((0.2 - 0.1307) / 0.3081, abs=1e-6)  # 0.22493
    assert out[0, 0, 0, 0].item() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    assert torch.equal(out, aug.eval_view(x))


def test_eval_view_rgb_channels_by_hand():
    data = SimpleNamespace(name="rgb", is_image=True, input_shape=(3, 2, 2),
                           mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.1), num_classes=2)
    aug = build_augmentation(make_cfg(), data, "cpu")
    x = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    x[0, 1], x[0, 2] = 102, 255
    out = aug.eval_view(x)
    # (0 - 0.5) / 0.25 = -2, (0.4 - 0.4) / 0.2 = 0, (1 - 0.3) / 0.1 = 7
    assert out[0, :, 0, 0].tolist() == pytest.approx([-2.0, 0.0, 7.0], abs=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_returns_float_images(policy, shape):
    aug = build_augmentation(make_cfg(policy, random_erasing=0.5), make_data(shape), "cpu")
    out = aug.train_views(random_images(8, shape))
    assert out.dtype == torch.float32 and out.shape == (8, *shape)
    # values stay within the normalised range of 0..255: [-2, 2] for mean 0.5, std 0.25
    assert out.min() >= -2.0 - 1e-6 and out.max() <= 2.0 + 1e-6


@pytest.mark.parametrize("policy", ["autoaugment", "trivialaugment", "randaugment", "augmix"])
def test_torchvision_per_image_reference_runs(policy):
    x = random_images(3, (1, 8, 8))
    out = AUGMENTATIONS[policy](8, 8, batched=False)(x)
    assert out.shape == x.shape and out.dtype == torch.uint8


# ----------------------------------------------------------------- one draw per image


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)], ids=str)
@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "none"])
def test_each_image_gets_its_own_draw(policy, shape):
    """32 copies of one image come out in many different versions, also without flip/crop."""
    x = random_images(1, shape).expand(32, *shape).contiguous()
    full = AUGMENTATIONS[policy](shape[1], shape[2])
    parts = [full] if policy == "flip_crop" else [full, full.transforms[1]]  # [1]: the policy
    for part in parts:
        torch.manual_seed(0)
        out = part(x)
        distinct = torch.unique(out.flatten(1), dim=0).shape[0]
        assert distinct > 8, (policy, distinct)


def test_same_seed_same_output_whatever_numpy_and_random_do():
    cfg = make_cfg("trivialaugment", "cutmix", random_erasing=0.5)
    aug = build_augmentation(cfg, make_data((3, 32, 32)), "cpu")
    x, t = random_images(16, (3, 32, 32)), torch.eye(10)[torch.arange(16) % 10]

    def run(py_seed):
        random.seed(py_seed)
        np.random.seed(py_seed)
        return aug.mix(aug.train_views(x), t)

    torch.manual_seed(5)
    a = run(1)
    torch.manual_seed(5)
    b = run(2)
    state = torch.get_rng_state()  # what a checkpoint saves
    c = run(3)
    torch.set_rng_state(state)
    d = run(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(c[0], d[0]) and torch.equal(c[1], d[1])
    assert not torch.equal(a[0], c[0])


# ----------------------------------------------------------------- flip / crop


def test_crop_flip_by_hand():
    x = torch.arange(1, 17, dtype=torch.uint8).view(1, 1, 4, 4).expand(3, 1, 4, 4)
    out = crop_flip(x, top=torch.tensor([0, 0, 2]), left=torch.tensor([2, 2, 1]),
                    flip=torch.tensor([False, True, True]), padding=1)
    # padded rows 0..3, cols 2..5: a zero row on top, columns 1..3 and a zero column
    assert out[0, 0].tolist() == [[0, 0, 0, 0], [2, 3, 4, 0], [6, 7, 8, 0], [10, 11, 12, 0]]
    assert out[1, 0].tolist() == [[0, 0, 0, 0], [0, 4, 3, 2], [0, 8, 7, 6], [0, 12, 11, 10]]
    # padded rows 2..5, cols 1..4: image rows 1..3 and a zero row, mirrored
    assert out[2, 0].tolist() == [[8, 7, 6, 5], [12, 11, 10, 9], [16, 15, 14, 13], [0, 0, 0, 0]]


def test_crop_padding_scales_with_the_image():
    assert [crop_padding(s, s) for s in (8, 28, 32, 64)] == [1, 3, 4, 4]


def test_flip_crop_outputs_are_crops_of_the_padded_image():
    x = random_images(1, (1, 8, 8)).expand(40, 1, 8, 8)
    torch.manual_seed(0)
    out = FlipCrop(8, 8)(x)
    offsets = torch.arange(3)
    top, left, flip = torch.meshgrid(offsets, offsets, torch.tensor([0, 1]), indexing="ij")
    candidates = crop_flip(x[:18], top.flatten(), left.flatten(), flip.flatten().bool(), 1)
    matches = (out[:, None] == candidates[None]).flatten(2).all(-1)  # (40, 18)
    assert matches.any(1).all()
    assert matches.any(0).sum() > 9  # most of the 18 crops drawn


# ----------------------------------------------------------------- torchvision equivalence


def _ops_to_check():
    """(op name, interpolation, magnitude) with bins 0, middle, last and both signs."""
    cases = []
    for space, bins, interp in [(v2.TrivialAugmentWide._AUGMENTATION_SPACE, 31, "nearest"),
                                (v2.AugMix._AUGMENTATION_SPACE, 10, "bilinear"),
                                (v2.AutoAugment._AUGMENTATION_SPACE, 10, "nearest")]:
        table = OpSpace(space, bins, 32, 32)
        for k, name in enumerate(table.names):
            for b in (1, bins // 2, bins - 1):
                m = float(table._magnitudes[k, b])
                signs = (1, -1) if bool(table._signed[k]) else (1,)
                cases += [(name, interp, s * m) for s in signs if name != "Identity"]
    return sorted(set(cases))


def test_every_registered_op_is_checked_against_torchvision():
    assert set(OPS) == {name for name, _, _ in _ops_to_check()}


@pytest.mark.parametrize("name,interp,magnitude", _ops_to_check())
def test_batched_op_equals_torchvision_per_image(name, interp, magnitude):
    ref = v2.TrivialAugmentWide()
    for shape in [(3, 32, 32), (1, 8, 8)]:
        x = random_images(4, shape)
        x[1] = 77  # a flat image: AutoContrast / Equalize / Contrast edge case
        got = OPS[name](x, torch.full((4,), magnitude, dtype=torch.float64), interp)
        want = torch.stack([ref._apply_image_or_video_transform(
            im, name, magnitude, interpolation=interp, fill=ref._fill) for im in x])
        assert torch.equal(got, want), (name, shape, magnitude)


def _geometry_magnitudes(seed=0):
    """Whole and fractional magnitudes: rotations every 15 degrees (90 and 270 take the
    affine path on non-square images) and at random, shears, translations to truncate."""
    g = torch.Generator().manual_seed(seed)

    def uniform(n, lo, hi):
        return (torch.rand(n, generator=g, dtype=torch.float64) * (hi - lo) + lo).tolist()

    shears = [k / 10 for k in range(-9, 10)] + uniform(12, -1, 1)
    translations = [-14.7, -9.0, -3.5, -0.4, 0.6, 2.0, 7.9, 13.0]
    return {"Rotate": [float(a) for a in range(-180, 181, 15)] + uniform(24, -180, 180),
            "ShearX": shears, "ShearY": shears,
            "TranslateX": translations, "TranslateY": translations}


def _torchvision_functional(name, im, m, mode):
    """What AutoAugment's `_apply_image_or_video_transform` calls for op `name`."""
    deg = math.degrees(math.atan(m))
    affine = {"ShearX": dict(shear=[deg, 0.0], translate=[0, 0], center=[0, 0]),
              "ShearY": dict(shear=[0.0, deg], translate=[0, 0], center=[0, 0]),
              "TranslateX": dict(shear=[0.0, 0.0], translate=[int(m), 0]),
              "TranslateY": dict(shear=[0.0, 0.0], translate=[0, int(m)])}
    if name == "Rotate":
        return TF.rotate(im, m, interpolation=mode)
    return TF.affine(im, angle=0.0, scale=1.0, interpolation=mode, **affine[name])


@pytest.mark.parametrize("interp", ["nearest", "bilinear"])
@pytest.mark.parametrize("shape", [(3, 20, 32), (1, 13, 7)], ids=str)
def test_geometric_ops_equal_torchvisions_functional_on_non_square_images(shape, interp):
    # Height != width: the matrix, the grid's normalisation by (w / 2, h / 2) and the centres
    # of odd sizes differ per axis, so a nearest-neighbour tie that falls the other way shows.
    x = random_images(4, shape)
    mode = v2.InterpolationMode(interp)
    for name, magnitudes in _geometry_magnitudes().items():
        for m in magnitudes:
            got = OPS[name](x, torch.full((4,), m, dtype=torch.float64), interp)
            want = torch.stack([_torchvision_functional(name, im, m, mode) for im in x])
            assert torch.equal(got, want), (name, shape, interp, m)


@pytest.mark.parametrize("shape", [(3, 20, 32), (1, 13, 7)], ids=str)
def test_affine_matrix_with_every_parameter_equals_torchvisions_affine(shape):
    # Rotation, translation and both shears at once, about the centre and about the corner,
    # through the batched matrix and grid: torchvision's F.affine pixel for pixel.
    x = random_images(1, shape)
    h, w = shape[1:]
    g = torch.Generator().manual_seed(1)
    for k in range(60):
        angle, sx, sy = (torch.rand(3, generator=g, dtype=torch.float64) * 2 - 1).tolist()
        angle, sx, sy = 180 * angle, 40 * sx, 40 * sy
        tx, ty = torch.randint(-8, 9, (2,), generator=g).tolist()
        corner = k % 2 == 1
        center = [0, 0] if corner else None
        cx, cy = (-0.5 * w, -0.5 * h) if corner else (0.0, 0.0)
        matrix = inverse_affine_matrix(*[torch.tensor([v], dtype=torch.float64)
                                         for v in (angle, tx, ty, sx, sy)], cx, cy)
        for interp in ("nearest", "bilinear"):
            want = TF.affine(x[0], angle=angle, translate=[tx, ty], scale=1.0, shear=[sx, sy],
                             interpolation=v2.InterpolationMode(interp), center=center)
            got = affine_grid_sample(x, matrix, interp)[0]
            assert torch.equal(got, want), (shape, angle, tx, ty, sx, sy, corner, interp)


def test_per_image_magnitudes_in_one_call():
    x = random_images(3, (3, 32, 32))
    got = OPS["Rotate"](x, torch.tensor([0.0, 90.0, -30.0], dtype=torch.float64), "nearest")
    assert torch.equal(got[0], x[0])
    assert torch.equal(got[1], torch.rot90(x[1], 1, dims=(-2, -1)))  # counter-clockwise
    assert torch.equal(got[2], v2.functional.rotate(x[2], -30.0))


def test_op_tables_are_torchvisions():
    ta = OpSpace(v2.TrivialAugmentWide._AUGMENTATION_SPACE, 31, 32, 32)
    assert len(ta) == 14 and ta.names[0] == "Identity"
    assert float(ta._magnitudes[ta.index("Rotate"), 30]) == 135.0
    ra = OpSpace(v2.RandAugment._AUGMENTATION_SPACE, 31, 32, 32)
    assert float(ra._magnitudes[ra.index("Rotate"), 9]) == pytest.approx(9.0)  # 30 * 9 / 30
    assert int(ra._magnitudes[ra.index("Posterize"), 9]) == 7  # round(8 - 9 / 7.5)


# ----------------------------------------------------------------- random erasing


def test_random_erasing_p0_is_identity():
    aug = build_augmentation(make_cfg(random_erasing=0.0), make_data((3, 32, 32)), "cpu")
    x = random_images(8, (3, 32, 32))
    assert torch.equal(aug.train_views(x), aug.eval_view(x))


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 8, 8)], ids=str)
def test_random_erasing_p1_erases_one_rectangle_per_image(shape):
    torch.manual_seed(0)
    out = random_erasing(torch.ones(32, *shape), 1.0)
    boxes = set()
    for image in out:
        zero = image[0] == 0
        assert (image == 0).equal(zero.expand_as(image))  # all channels alike
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert rows.numel() > 0
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert zero[r0:r1, c0:c1].all() and zero.sum() == (r1 - r0) * (c1 - c0)
        assert r1 - r0 < shape[1] and c1 - c0 < shape[2]
        boxes.add((int(r0), int(r1), int(c0), int(c1)))
    assert len(boxes) > 16  # its own box for each image


# ----------------------------------------------------------------- mixing


def _recover_pairs(t_mixed):
    """From one-hot rows mixed with lam: (lam, partner of each row, rows with a partner)."""
    k = t_mixed.shape[0]
    mixed = [i for i in range(k) if t_mixed[i, i] < 1]
    lam = t_mixed[mixed[0], mixed[0]]
    partner = torch.tensor([int((t_mixed[i] - torch.eye(k)[i] * t_mixed[i, i]).argmax())
                            if i in mixed else i for i in range(k)])
    return lam, partner, mixed


@pytest.mark.parametrize("shape", [(3, 4, 4), (5,)], ids=["images", "vectors"])
def test_mixup_is_lam_x_plus_one_minus_lam_partner(shape):
    aug = build_augmentation(make_cfg(mix="mixup", mix_alpha=0.4), make_data(shape), "cpu")
    x, t = torch.randn(8, *shape), torch.eye(8)
    torch.manual_seed(3)
    xm, tm = aug.mix(x, t)
    assert torch.allclose(tm.sum(1), torch.ones(8))
    lam, partner, mixed = _recover_pairs(tm)
    assert 0 < lam < 1 and len(mixed) > 0
    assert torch.allclose(xm, lam * x + (1 - lam) * x[partner], atol=1e-6)


def test_cutmix_lambda_is_one_minus_box_area():
    aug = build_augmentation(make_cfg(mix="cutmix"), make_data((1, 8, 8)), "cpu")
    x = torch.arange(1.0, 9.0).view(8, 1, 1, 1).expand(8, 1, 8, 8)  # image i is constant i+1
    torch.manual_seed(1)
    xm, tm = aug.mix(x, torch.eye(8))
    assert torch.allclose(tm.sum(1), torch.ones(8))
    lam, partner, mixed = _recover_pairs(tm)
    changed = xm != x
    area = int(changed[mixed[0]].sum())
    assert 0 < area < 64
    assert lam.item() == pytest.approx(1 - area / 64)
    for i in mixed:  # the same box everywhere, filled from the partner
        assert changed[i].equal(changed[mixed[0]])
        assert (xm[i][changed[i]] == partner[i] + 1).all()


def test_cutmix_with_box_by_hand():
    x, t = torch.zeros(2, 1, 4, 4), torch.eye(2)
    x[1] = 1.0
    box = torch.tensor([[1.0, 2.0, 3.0, 2.0]])  # rows 1..3, cols 2..3: 6 of 16 pixels
    xm, tm = cutmix_with(x, t, box, torch.tensor([1, 0]))
    assert xm[0, 0].tolist() == [[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]
    assert tm[0].tolist() == pytest.approx([10 / 16, 6 / 16])
    assert tm[1].tolist() == pytest.approx([6 / 16, 10 / 16])


def test_mix_none_is_identity():
    aug = build_augmentation(make_cfg(), make_data((1, 8, 8)), "cpu")
    x, t = torch.randn(4, 1, 8, 8), torch.eye(4)
    assert aug.mix(x, t) == (x, t)
    assert set(MIXES) == {"none", "cutmix", "mixup"}


@pytest.mark.parametrize("mix", MIXES.names())
def test_every_mix_keeps_shapes_and_gives_distributions(mix):
    torch.manual_seed(0)
    x, t = torch.randn(6, 3, 8, 8), torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])]
    mixed_x, mixed_t = MIXES[mix](x, t, 1.0)
    assert mixed_x.shape == x.shape and mixed_t.shape == t.shape
    assert (mixed_t >= 0).all() and torch.allclose(mixed_t.sum(1), torch.ones(6))


# ----------------------------------------------------------------- errors


def test_vector_data_refuses_image_augmentation():
    data = make_data((2,), name="toy2d")
    with pytest.raises(UserError) as err:
        build_augmentation(make_cfg("flip_crop"), data, "cpu")
    assert str(err.value) == ("augment=flip_crop needs image data; dataset 'toy2d' gives "
                              "vectors; use augment=none")
    with pytest.raises(UserError, match="mix=cutmix needs image data"):
        build_augmentation(make_cfg(mix="cutmix"), data, "cpu")
    with pytest.raises(UserError, match="random_erasing=0.1 needs image data"):
        build_augmentation(make_cfg(random_erasing=0.1), data, "cpu")
    aug = build_augmentation(make_cfg(), data, "cpu")
    x = torch.randn(4, 2)
    assert torch.equal(aug.train_views(x), x) and torch.equal(aug.eval_view(x), x)


def test_unknown_names_and_channel_counts_are_user_errors():
    with pytest.raises(UserError, match="augment=cutout is unknown; allowed: "):
        build_augmentation(make_cfg("cutout"), make_data((3, 8, 8)), "cpu")
    four = make_data((4, 8, 8))
    with pytest.raises(UserError, match="needs 1- or 3-channel images"):
        build_augmentation(make_cfg("trivialaugment"), four, "cpu")
    out = build_augmentation(make_cfg("flip_crop"), four, "cpu").train_views(
        random_images(2, (4, 8, 8)))
    assert out.shape == (2, 4, 8, 8)
