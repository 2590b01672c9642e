"""The batched AutoAugment-family operations against torchvision's, pixel for pixel, and the
op tables (imbtrain/augment/ops.py, auto.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from imbtrain.augment.auto import OpSpace
from imbtrain.augment.ops import OPS, affine_grid_sample, inverse_affine_matrix
from tests.augment.helpers import random_images


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
