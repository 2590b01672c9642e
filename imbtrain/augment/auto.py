"""AutoAugment, RandAugment, TrivialAugmentWide and AugMix on a batch, one draw per image.

Each class samples, for every image of the batch, what torchvision's transform of the same name
samples for one image (operation, magnitude bin, sign, sub-policy, chain depth, mixing weights),
with torch's global RNG on the batch's device, then applies the draws with the batched kernels
of `ops.py`, one call per distinct operation. The operation spaces, magnitude bins and the
CIFAR-10 sub-policies are read from torchvision's classes, so they are exactly torchvision's.

- AutoAugment (Cubuk et al. 2019), CIFAR-10 policy: one of 25 sub-policies per image; each of
  its two operations is applied with its probability at its fixed magnitude bin (of 10).
- RandAugment (Cubuk et al. 2020): two operations per image, uniform over 14 (Identity
  included), magnitude bin 9 of 31.
- TrivialAugmentWide (Muller & Hutter 2021): one operation per image, uniform over 14, magnitude
  bin uniform over 31.
- AugMix (Hendrycks et al. 2020): per image, weights m ~ Dirichlet(1, 1) for the original and
  w ~ Dirichlet(1, 1, 1) for 3 chains of depth uniform in 1..3, magnitude bin uniform in the
  first `severity` = 3 of 10; out = m0 x + m1 sum_i w_i chain_i(x), truncated to uint8;
  bilinear resampling.
Signed magnitudes are negated with probability 1/2, as in torchvision.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from imbtrain.augment.ops import apply_ops

SKIP = -1  # op index that leaves an image unchanged (AutoAugment's ops not drawn)


def torchvision_v2():
    """torchvision.transforms.v2, imported when a policy is built (it takes seconds: most
    runs never need it)."""
    from torchvision.transforms import v2

    return v2


class OpSpace:
    """Operation names, magnitude table (ops, bins) in float64 and signedness, on one device.

    Built from a torchvision `_AUGMENTATION_SPACE`: name -> (bins(num_bins, H, W) | None,
    signed). Operations without a magnitude get a row of zeros.
    """

    def __init__(self, space: dict[str, tuple[Callable, bool]], num_bins: int, height: int,
                 width: int) -> None:
        self.names = tuple(space)
        rows = []
        for bins_fn, _ in space.values():
            bins = bins_fn(num_bins, height, width)
            rows.append(torch.zeros(num_bins) if bins is None else bins)
        self.num_bins = num_bins
        self._magnitudes = torch.stack([r.to(torch.float64) for r in rows])
        self._signed = torch.tensor([signed for _, signed in space.values()])
        self._cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def magnitudes(self, op: Tensor, bin_index: Tensor) -> Tensor:
        """Signed magnitude per image (N,) float64 for ops (N,) (SKIP allowed) and bins (N,)."""
        device = op.device
        if device not in self._cache:
            self._cache[device] = (self._magnitudes.to(device), self._signed.to(device))
        table, signed = self._cache[device]
        op = op.clamp(min=0)
        flip = signed[op] & (torch.rand(op.shape, device=device) <= 0.5)
        return torch.where(flip, -table[op, bin_index], table[op, bin_index])


class TrivialAugmentWide:
    """One operation per image, uniform over the 14 of TrivialAugmentWide, uniform bin of 31."""

    def __init__(self, height: int, width: int, num_bins: int = 31,
                 interpolation: str = "nearest") -> None:
        space = torchvision_v2().TrivialAugmentWide._AUGMENTATION_SPACE
        self.space = OpSpace(space, num_bins, height, width)
        self.interpolation = interpolation

    def __call__(self, x: Tensor) -> Tensor:
        n, device = x.shape[0], x.device
        op = torch.randint(len(self.space), (n,), device=device)
        bin_index = torch.randint(self.space.num_bins, (n,), device=device)
        m = self.space.magnitudes(op, bin_index)
        return apply_ops(x, op, m, self.space.names, self.interpolation)


class RandAugment:
    """`num_ops` operations per image in sequence, each uniform over 14, at bin `magnitude`."""

    def __init__(self, height: int, width: int, num_ops: int = 2, magnitude: int = 9,
                 num_bins: int = 31, interpolation: str = "nearest") -> None:
        space = torchvision_v2().RandAugment._AUGMENTATION_SPACE
        self.space = OpSpace(space, num_bins, height, width)
        self.num_ops, self.magnitude, self.interpolation = num_ops, magnitude, interpolation

    def __call__(self, x: Tensor) -> Tensor:
        n, device = x.shape[0], x.device
        bin_index = torch.full((n,), self.magnitude, device=device)
        for _ in range(self.num_ops):
            op = torch.randint(len(self.space), (n,), device=device)
            m = self.space.magnitudes(op, bin_index)
            x = apply_ops(x, op, m, self.space.names, self.interpolation)
        return x


class AutoAugmentCIFAR10:
    """One of the 25 CIFAR-10 sub-policies per image; each step applied with its probability."""

    def __init__(self, height: int, width: int, interpolation: str = "nearest") -> None:
        self.space = OpSpace(torchvision_v2().AutoAugment._AUGMENTATION_SPACE, 10, height, width)
        v2 = torchvision_v2()
        policies = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)._policies
        self._tables = (torch.tensor([[self.space.index(s[0]) for s in p] for p in policies]),
                        torch.tensor([[s[1] for s in p] for p in policies]),
                        torch.tensor([[s[2] or 0 for s in p] for p in policies]))
        self._cache: dict[torch.device, tuple[Tensor, ...]] = {}
        self.interpolation = interpolation

    def __call__(self, x: Tensor) -> Tensor:
        n, device = x.shape[0], x.device
        if device not in self._cache:
            self._cache[device] = tuple(t.to(device) for t in self._tables)
        op_table, prob, bins = self._cache[device]
        sub = torch.randint(len(op_table), (n,), device=device)
        for step in range(op_table.shape[1]):
            # torchvision applies a step when rand <= p
            apply = torch.rand(n, device=device) <= prob[sub, step]
            op = torch.where(apply, op_table[sub, step], SKIP)
            m = self.space.magnitudes(op, bins[sub, step])
            x = apply_ops(x, op, m, self.space.names, self.interpolation)
        return x


class AugMix:
    """Per image: a Dirichlet mix of the original and 3 chains of 1-3 random operations."""

    def __init__(self, height: int, width: int, severity: int = 3, mixture_width: int = 3,
                 chain_depth: int = -1, alpha: float = 1.0,
                 interpolation: str = "bilinear") -> None:
        self.space = OpSpace(torchvision_v2().AugMix._AUGMENTATION_SPACE, 10, height, width)
        self.severity, self.mixture_width = severity, mixture_width
        self.chain_depth, self.alpha, self.interpolation = chain_depth, alpha, interpolation

    def _dirichlet(self, n: int, k: int, device: torch.device) -> Tensor:
        concentration = torch.full((n, k), float(self.alpha), device=device)
        # validate_args=False: the check would be a host sync per batch on CUDA.
        return torch.distributions.Dirichlet(concentration, validate_args=False).sample()

    def _chain(self, x: Tensor) -> Tensor:
        n, device = x.shape[0], x.device
        if self.chain_depth > 0:
            depth = torch.full((n,), self.chain_depth, device=device)
        else:
            depth = torch.randint(1, 4, (n,), device=device)
        for step in range(int(max(self.chain_depth, 3))):
            op = torch.randint(len(self.space), (n,), device=device)
            op = torch.where(step < depth, op, SKIP)
            m = self.space.magnitudes(op, torch.randint(self.severity, (n,), device=device))
            x = apply_ops(x, op, m, self.space.names, self.interpolation)
        return x

    def __call__(self, x: Tensor) -> Tensor:
        n, device = x.shape[0], x.device
        m = self._dirichlet(n, 2, device)
        weights = self._dirichlet(n, self.mixture_width, device) * m[:, 1:]
        mix = m[:, 0].view(-1, 1, 1, 1) * x
        for i in range(self.mixture_width):
            mix.add_(weights[:, i].view(-1, 1, 1, 1) * self._chain(x))
        return mix.to(torch.uint8)


class PerImage:
    """Reference path: a torchvision v2 transform called once per image (correct, slow).

    Its draws come from torch's global CPU generator, whatever the batch's device.
    """

    def __init__(self, transform: Callable[[Tensor], Tensor]) -> None:
        self.transform = transform

    def __call__(self, x: Tensor) -> Tensor:
        return torch.stack([self.transform(image) for image in x])
