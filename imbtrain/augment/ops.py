"""torchvision's AutoAugment-family operations, batched, with one magnitude per image.

`torchvision.transforms.v2` applies one operation with one magnitude to whatever it is given, so
calling AutoAugment on a batch would augment every image alike. The kernels here take a uint8
batch (N, C, H, W) and magnitudes (N,) and do, image by image, what
`v2._auto_augment._AutoAugmentBase._apply_image_or_video_transform` does with that magnitude:
the same inverse affine matrix and sampling grid, the same blends, roundings and casts
(tests/augment/test_ops.py checks them equal to torchvision pixel for pixel over the magnitude
bins, and the geometric ones against `F.rotate` / `F.affine` on non-square images too, where
a nearest-neighbour tie would show a matrix built in another order; only a bilinear shear
beyond AugMix's range can differ by 1 where a value falls half-way between two integers).
The parameter-free ones (AutoContrast, Equalize, Invert) are torchvision's own kernels, which
already work per image. Magnitudes are float64, as
torchvision's Python floats (CPU and CUDA have float64; Apple's MPS does not).

Grayscale (C = 1) follows torchvision and PIL: Color (saturation) leaves one channel unchanged,
Contrast blends towards the image's own mean. Other channel counts are refused by
`check_channels`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from imbtrain.registry import AUGMENT_OPS

# kernel(x uint8 (N, C, H, W), magnitude float64 (N,), interpolation) -> uint8 (N, C, H, W)
OpKernel = Callable[[Tensor, Tensor, str], Tensor]
OPS = AUGMENT_OPS  # the batched kernels by torchvision's operation name
register_op = AUGMENT_OPS.register
"""`@register_op("ShearX")`: a batched kernel under torchvision's operation name."""


def apply_ops(x: Tensor, op_index: Tensor, magnitude: Tensor, names: tuple[str, ...],
              interpolation: str) -> Tensor:
    """Apply `names[op_index[i]]` with `magnitude[i]` to image i; op_index -1 leaves it as is.

    The batch is sorted by operation once, each operation runs on its contiguous slice, and
    one scatter puts the images back: one kernel call per distinct operation, not per image,
    and a single host sync (the slice sizes).
    """
    order = torch.argsort(op_index, stable=True)
    sizes = torch.bincount(op_index + 1, minlength=len(names) + 1).tolist()  # [0]: op -1
    xs, ms = x[order], magnitude[order]
    pieces, start = [], 0
    for k, size in enumerate(sizes):
        piece = xs[start:start + size]
        if k > 0 and size > 0 and names[k - 1] != "Identity":
            piece = AUGMENT_OPS.get(names[k - 1])(piece, ms[start:start + size], interpolation)
        pieces.append(piece)
        start += size
    return torch.empty_like(x).index_copy_(0, order, torch.cat(pieces))


def check_channels(channels: int) -> bool:
    """Whether the colour operations are defined (torchvision: 1 or 3 channels)."""
    return channels in (1, 3)


def _col(values: Tensor) -> Tensor:
    """(N,) float64 -> (N, 1, 1, 1) float32, the way torchvision's Python floats reach float32
    kernels (computed in double, rounded once)."""
    return values.to(torch.float32).view(-1, 1, 1, 1)


# --------------------------------------------------------------------------- geometry


def inverse_affine_matrix(angle: Tensor, tx: Tensor, ty: Tensor, shear_x: Tensor,
                          shear_y: Tensor, cx: float, cy: float) -> Tensor:
    """Per-image inverse affine matrices (N, 2, 3), float64; degrees in, scale 1.

    torchvision's `_get_inverse_affine_matrix`: M^-1 = C RSS^-1 C^-1 T^-1 with
    RSS = R(a) SHy(sy) SHx(sx), centre (cx, cy) relative to the image centre, term by term in
    torchvision's order (its Python floats are float64 here; torch's and the C library's
    trigonometry may differ in a double's last bit, which the float32 matrix the grid uses
    has not shown in the tests).
    """
    rot, sx, sy = torch.deg2rad(angle), torch.deg2rad(shear_x), torch.deg2rad(shear_y)
    cos_sy, tan_sx = torch.cos(sy), torch.tan(sx)
    a = torch.cos(rot - sy) / cos_sy
    b = -(a * tan_sx + torch.sin(rot))
    c = torch.sin(rot - sy) / cos_sy
    d = torch.cos(rot) - c * tan_sx
    m0, m1, m3, m4 = d, -b, -c, a  # det(RSS) = 1
    m2 = cx - m0 * (cx + tx) - m1 * (cy + ty)
    m5 = cy - m3 * (cx + tx) - m4 * (cy + ty)
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=-1).view(-1, 2, 3)


def affine_grid_sample(x: Tensor, matrix: Tensor, interpolation: str) -> Tensor:
    """Resample each image with its own inverse matrix; zero fill; round back to uint8.

    torchvision's `_affine_grid` + `_apply_grid_transform` with a batch of thetas: pixel-centre
    coordinates relative to the image centre, mapped by the matrix, normalised by half the size.
    """
    n, _, h, w = x.shape
    device = x.device
    theta = matrix.to(torch.float32)
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device)
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device)
    base = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), torch.ones(h, w, device=device)],
                       dim=-1).view(1, h * w, 3)
    half = torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float32, device=device)
    grid = base.expand(n, -1, -1).bmm(theta.transpose(1, 2) / half).view(n, h, w, 2)
    out = F.grid_sample(x.to(torch.float32), grid, mode=interpolation, padding_mode="zeros",
                        align_corners=False)
    return out.round_().to(torch.uint8)


def _affine(x: Tensor, interpolation: str, *, angle=None, tx=None, ty=None, shear_x=None,
            shear_y=None, corner: bool = False) -> Tensor:
    """Build the per-image matrices (zeros where a parameter is not given) and resample."""
    n, _, h, w = x.shape
    zero = torch.zeros(n, dtype=torch.float64, device=x.device)
    # Shears pivot on the top-left corner (torchvision passes center=[0, 0]), the rest on
    # the image centre.
    cx, cy = (-0.5 * w, -0.5 * h) if corner else (0.0, 0.0)
    params = [zero if v is None else v for v in (angle, tx, ty, shear_x, shear_y)]
    return affine_grid_sample(x, inverse_affine_matrix(*params, cx, cy), interpolation)


@register_op("ShearX")
def shear_x(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Horizontal shear by m (x' = x + m y); torchvision: shear=[degrees(atan(m)), 0]."""
    return _affine(x, interpolation, shear_x=torch.rad2deg(torch.atan(m)), corner=True)


@register_op("ShearY")
def shear_y(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Vertical shear by m; torchvision: shear=[0, degrees(atan(m))]."""
    return _affine(x, interpolation, shear_y=torch.rad2deg(torch.atan(m)), corner=True)


@register_op("TranslateX")
def translate_x(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Shift right by int(m) pixels (truncated towards zero, as torchvision's int())."""
    return _affine(x, interpolation, tx=torch.trunc(m))


@register_op("TranslateY")
def translate_y(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Shift down by int(m) pixels."""
    return _affine(x, interpolation, ty=torch.trunc(m))


@register_op("Rotate")
def rotate(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Rotate counter-clockwise by m degrees about the centre; torchvision's rotate_image uses
    the affine matrix of -(m mod 360)."""
    return _affine(x, interpolation, angle=-torch.remainder(m, 360.0))


# --------------------------------------------------------------------------- colour


def _blend(x: Tensor, degenerate: Tensor, ratio: Tensor) -> Tensor:
    """ratio x + (1 - ratio) degenerate, clamped and truncated to uint8 (torchvision `_blend`).

    addcmul rounds like torchvision's `add_(degenerate, alpha=1 - ratio)` (a fused multiply-add),
    which matters: a flat image of 77 blended with its own mean may truncate to 76.
    """
    out = x.mul(_col(ratio)).addcmul_(degenerate, _col(1.0 - ratio))
    return out.clamp_(0, 255).to(torch.uint8)


def _grayscale(x: Tensor) -> Tensor:
    """ITU-R 601 luma, floored (torchvision's `_rgb_to_grayscale_image` + floor for uint8)."""
    r, g, b = x.unbind(dim=-3)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3).floor_()


@register_op("Brightness")
def brightness(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Multiply by 1 + m."""
    return x.mul(_col(1.0 + m)).clamp_(0, 255).to(torch.uint8)


@register_op("Color")
def color(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Saturation: blend with the grayscale image by 1 + m; one channel stays unchanged."""
    if x.shape[-3] == 1:
        return x
    return _blend(x, _grayscale(x), 1.0 + m)


@register_op("Contrast")
def contrast(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Blend with the mean grey level of the image by 1 + m."""
    gray = _grayscale(x) if x.shape[-3] == 3 else x.to(torch.float32)
    return _blend(x, gray.mean(dim=(-3, -2, -1), keepdim=True), 1.0 + m)


@register_op("Sharpness")
def sharpness(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Blend the interior with a 3x3 smoothing (1s around a 5, /13) by 1 + m; borders kept."""
    n, c, h, w = x.shape
    if h <= 2 or w <= 2:
        return x
    a, b = 1.0 / 13.0, 5.0 / 13.0
    kernel = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], device=x.device)
    out = x.to(torch.float32)
    blurred = F.conv2d(out, kernel.expand(c, 1, 3, 3), groups=c).round_()
    inner = out[..., 1:-1, 1:-1]
    inner.addcmul_(blurred.sub_(inner), _col(1.0 - (1.0 + m)))  # torchvision's 1 - factor
    return out.clamp_(0, 255).to(torch.uint8)


@register_op("Posterize")
def posterize(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Keep the m high bits of each value: x & (255 << (8 - m))."""
    bits = m.to(torch.int32)
    mask = torch.bitwise_left_shift(torch.full_like(bits, 255), 8 - bits) & 255
    return x & mask.to(torch.uint8).view(-1, 1, 1, 1)


@register_op("Solarize")
def solarize(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Invert the values >= 255 m."""
    return torch.where(x >= _col(255.0 * m), x.bitwise_not(), x)


@register_op("AutoContrast")
def autocontrast(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Stretch each channel of each image to 0..255 (torchvision's kernel, per image)."""
    from torchvision.transforms.v2 import functional as TF  # lazy: torchvision is slow to import

    return TF.autocontrast(x)


@register_op("Equalize")
def equalize(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """Histogram equalisation per channel and image (torchvision's kernel, PIL's LUT)."""
    from torchvision.transforms.v2 import functional as TF  # lazy: torchvision is slow to import

    return TF.equalize(x)


@register_op("Invert")
def invert(x: Tensor, m: Tensor, interpolation: str) -> Tensor:
    """255 - x."""
    from torchvision.transforms.v2 import functional as TF  # lazy: torchvision is slow to import

    return TF.invert(x)
