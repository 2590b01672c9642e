"""Imbalance profiles and seeded per-class subsampling (docs/methods.md, "1. Imbalanced data").

A profile maps (n_max, K, r) to per-class counts, class 0 largest, in the dataset's label
order. Subsampling keeps the first n_i samples of a seeded per-class shuffle, so the subset
depends only on `data_seed`, never on the training seed, and the subsets of one seed are
nested: the samples kept at r = 0.01 are a subset of those kept at r = 0.1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from imbtrain.errors import UserError


def _floor(x: float) -> int:
    """floor(x), immune to float noise: 100 * 0.29 is 28.999999999999996 in binary, but
    the count the formula means is 29. Rounding to 9 decimals first keeps every reference
    count of docs/methods.md (CIFAR-10 at r = 0.01: 5000, 2997, ..., 50) unchanged."""
    return math.floor(round(x, 9))


def exp_counts(n_max: int, num_classes: int, ratio: float) -> list[int]:
    """Exponential profile of Liu et al. / LDAM-DRW: n_i = floor(n_max * r ** (i / (K - 1))).

    At least 1 a class. A single class gets n_max. CIFAR-10 (n_max 5000, r = 0.01):
    5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50 (12,406 in all).
    """
    if num_classes == 1:
        return [n_max]
    return [max(1, _floor(n_max * ratio ** (i / (num_classes - 1)))) for i in range(num_classes)]


def step_counts(n_max: int, num_classes: int, ratio: float) -> list[int]:
    """Step profile: the first half of the classes get n_max, the rest max(1, floor(n_max * r)).

    With an odd K the majority half is the larger one, ceil(K / 2) classes (so K = 1 keeps
    n_max, and K = 3 is [n_max, n_max, n_max * r]).
    """
    n_major = (num_classes + 1) // 2
    n_minor = max(1, _floor(n_max * ratio))
    return [n_max] * n_major + [n_minor] * (num_classes - n_major)


PROFILES: dict[str, Callable[[int, int, float], list[int]]] = {
    "exp": exp_counts,
    "step": step_counts,
}


def profile_counts(profile: str, n_max: int, num_classes: int, ratio: float) -> list[int]:
    """Per-class counts of the named profile ("exp" | "step")."""
    if profile not in PROFILES:
        raise UserError(
            f"unknown imbalance_profile {profile!r}; expected one of {sorted(PROFILES)}"
        )
    return PROFILES[profile](n_max, num_classes, ratio)


def class_indices(y: Tensor, num_classes: int, generator: torch.Generator) -> list[Tensor]:
    """Indices of each class in `y`, each shuffled by `generator` (classes in label order).

    The shuffle of class c depends only on the class sizes and the generator's seed, not on
    how many samples are kept afterwards; that is what makes the subsets nested.
    """
    out = []
    for c in range(num_classes):
        idx = torch.nonzero(y == c, as_tuple=True)[0]
        out.append(idx[torch.randperm(len(idx), generator=generator)])
    return out


def subsample_per_class(y: Tensor, counts: list[int], seed: int) -> Tensor:
    """Indices (sorted, int64) of the first counts[c] samples of a seeded shuffle of class c.

    `seed` is `cfg.data_seed`. A class with fewer samples than counts[c] keeps all it has
    (the count is a ceiling, never an oversampling); callers record the real counts.
    """
    g = torch.Generator().manual_seed(int(seed))
    shuffled = class_indices(y, len(counts), g)
    kept = [idx[: max(0, int(n))] for idx, n in zip(shuffled, counts, strict=True)]
    return torch.sort(torch.cat(kept)).values


def split_per_class(
    y: Tensor, fraction: float, seed: int, num_classes: int
) -> tuple[Tensor, Tensor]:
    """Split off `fraction` of each class: returns (split_idx, rest_idx), both sorted.

    Class c of n_c samples gives round(fraction * n_c) (halves up) to the split, clamped to
    [1, n_c - 1] when fraction > 0 and n_c >= 2, so both parts keep every class whenever the
    class allows it. A class of one sample stays in the rest. fraction = 0 splits nothing.
    """
    g = torch.Generator().manual_seed(int(seed))
    split, rest = [], []
    for idx in class_indices(y, num_classes, g):
        n = len(idx)
        k = math.floor(fraction * n + 0.5)
        if fraction > 0 and n >= 2:
            k = min(max(k, 1), n - 1)
        elif n < 2:
            k = 0
        split.append(idx[:k])
        rest.append(idx[k:])
    return torch.sort(torch.cat(split)).values, torch.sort(torch.cat(rest)).values
