"""Imbalanced datasets: profiles, the registered loaders and `build_data(cfg)`.

    >>> from types import SimpleNamespace
    >>> cfg = SimpleNamespace(dataset="digits", data_dir="", train_ratio=0.1,
    ...     imbalance_profile="exp", test_ratio=1.0, val_fraction=0.5, data_seed=0,
    ...     image_size=0)
    >>> data = build_data(cfg)
    >>> data.train_counts[0], data.train_counts[-1], data.input_shape
    (119, 12, (1, 8, 8))

Registered datasets (`imbtrain.registry.DATASETS`): embedded `digits`, `mnist5k`, `toy2d`,
`synthetic` (module `embedded`), on-disk `cifar10`, `cifar100`, `cinic10`, `tiny_imagenet`,
`imagefolder` (module `vision`), tabular `tabular` (a CSV or Parquet file) and the embedded
`tabular_synth` (module `tabular`). A new dataset is one loader decorated with
`@DATASETS.register("name")` in a module of its own (`imbtrain.data.base`).

`cached_data(cfg)` is `build_data(cfg)` kept per process for the latest few settings of
`DATA_FIELDS`, the config fields that decide the data; the raw pools it cuts from are kept
apart, keyed by the first `SOURCE_FIELDS` of them, so trials that differ only in their
train ratio decode the files once.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor

# Importing a loader's module registers it; this order is the order `imbtrain keys` lists.
from imbtrain.data import embedded, vision  # noqa: F401

# isort: split
from imbtrain.data import pools, tabular  # noqa: F401  (pools: tabular_pools, autotune's)
from imbtrain.data.base import RawData
from imbtrain.data.profiles import (
    exp_counts,
    profile_counts,
    split_per_class,
    step_counts,
    subsample_per_class,
)
from imbtrain.data.tabular import TabularInfo, TabularTransform
from imbtrain.errors import UserError
from imbtrain.registry import DATASETS

register_dataset = DATASETS.register
"""`@register_dataset("name", on_disk=..., check_config=..., num_classes=...)`:
`DATASETS.register`. `num_classes` (an int, or a function of the config) lets a search space's
metric be checked against the per-class names before a study starts; leave it out when the
files decide (imagefolder, tabular)."""

__all__ = [
    "DATASETS",
    "DATA_FIELDS",
    "ImbalancedData",
    "RawData",
    "SOURCE_FIELDS",
    "build_data",
    "cached_data",
    "clear_cache",
    "exp_counts",
    "load_raw",
    "profile_counts",
    "register_dataset",
    "step_counts",
    "subsample_per_class",
]


@dataclass
class ImbalancedData:
    """One imbalanced train set with its validation and test sets (CPU tensors, y int64).

    Images are uint8 (N, C, H, W), normalised later on the device with `mean`/`std`
    (per channel, 0..1 scale); vectors are float32 (N, D), already standardised.
    `train_counts` are the per-class train counts after the profile (recorded with every
    run: metrics.json, results.parquet). `feature_info` describes the columns of tabular
    data (numeric, missing indicators, one-hot blocks; `imbtrain.data.tabular.TabularInfo`),
    None for other data; `tabular_transform` the fitted transform that made those columns from
    the file's rows, `image_decode` how an image file becomes one of the images (both as in
    `RawData`), for a saved model to apply the same to new inputs (`imbtrain.saved`).
    """

    name: str
    num_classes: int
    input_shape: tuple[int, ...]
    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    train_counts: list[int]
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    class_names: list[str]
    feature_info: TabularInfo | None = None
    tabular_transform: TabularTransform | None = None
    image_decode: dict | None = None

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3


# ================================================================ the cache

# The config fields that decide `build_data(cfg)`: the first SOURCE_FIELDS (those a loader may
# read) decide the raw pools, the rest how they are cut (profile, splits, data seed).
DATA_FIELDS = (
    "dataset", "data_dir", "label_column", "tabular_preset", "tabular_transform",
    "tabular_drop", "image_size", "synthetic_classes", "synthetic_shape", "synthetic_samples",
    "train_ratio", "imbalance_profile", "test_ratio", "val_fraction", "data_seed",
)
SOURCE_FIELDS = DATA_FIELDS[:10]


class _Cache:
    """The latest `size` values by key, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size, self.items = size, OrderedDict()

    def get(self, cfg, fields: tuple[str, ...], make):
        key = tuple(getattr(cfg, f, None) for f in fields)
        if key in self.items:
            self.items.move_to_end(key)
        else:
            self.items[key] = make(cfg)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return self.items[key]


# Ray Tune reuses actors across trials of a study: without the cache every trial would decode
# the same image files again. One raw pool (a process holds at most one), a few cut data sets
# (a study's train ratios of that pool; small next to the pool).
_RAW, _DATA = _Cache(1), _Cache(4)


def load_raw(cfg) -> RawData:
    """The raw pools of `cfg.dataset`, cached for the latest data source only."""
    return _RAW.get(cfg, SOURCE_FIELDS, lambda c: DATASETS.get(c.dataset)(c))


def cached_data(cfg) -> ImbalancedData:
    """`build_data(cfg)`, kept per process for the latest few settings of `DATA_FIELDS`."""
    return _DATA.get(cfg, DATA_FIELDS, build_data)


def clear_cache() -> None:
    """Forget the cached pools and data sets (e.g. after the files under data_dir changed)."""
    _RAW.items.clear()
    _DATA.items.clear()


# ================================================================ imbalanced data


def _counts(y: Tensor, num_classes: int) -> list[int]:
    return torch.bincount(y, minlength=num_classes).tolist()


def _apply_profile(y: Tensor, num_classes: int, profile: str, ratio: float, seed: int) -> Tensor:
    """Indices of a subsample of `y` with the profile at `ratio`, n_max its largest class."""
    target = profile_counts(profile, max(_counts(y, num_classes)), num_classes, ratio)
    return subsample_per_class(y, target, seed)


def build_data(cfg) -> ImbalancedData:
    """Load `cfg.dataset` and make it imbalanced (docs/methods.md, "1. Imbalanced data").

    1. Train: the `imbalance_profile` at `train_ratio`, n_max = the largest class of the
       train pool, kept by a per-class shuffle seeded with `data_seed`.
    2. Validation: `val_fraction` of EACH class of the test pool (at least 1 val and 1 test
       sample a class where the class has 2). It comes from the test pool, not the train
       pool, so the train set keeps all its samples: taking val from the train set would cut
       the rarest classes (50 images of CIFAR-10 at r = 0.01) further and change the very
       ratio under study.
    3. The same profile kind at `test_ratio` is applied to the rest of the test pool and to
       val alike (paper A.8), each with n_max = its own largest class; test_ratio = 1 keeps
       them whole, so they keep the test pool's own class distribution: balanced for the
       embedded and benchmark datasets (digits: 46-49 test and 12 val images a class), the
       file's or the folder's own for `tabular` and `imagefolder`. Balanced accuracy, the
       selection metric, weighs every class alike either way.
    4. Both splits hold every class (at least one sample each, which the profile keeps), or
       the run fails here with one line naming the class: a class with a single held-out
       sample cannot be in both, and `val_bal_acc` must never average fewer classes.

    Reads only attributes (dataset, data_dir, train_ratio, imbalance_profile, test_ratio,
    val_fraction, data_seed, image_size, synthetic_*), so any namespace works as `cfg`.
    """
    raw = load_raw(cfg)
    k, profile, seed = raw.num_classes, cfg.imbalance_profile, int(cfg.data_seed)
    tr = _apply_profile(raw.train_y, k, profile, cfg.train_ratio, seed)
    val_idx, test_idx = split_per_class(raw.test_y, cfg.val_fraction, seed, k)
    # Profile each part on its own labels; indices map back into the test pool.
    val_idx = val_idx[_apply_profile(raw.test_y[val_idx], k, profile, cfg.test_ratio, seed)]
    test_idx = test_idx[_apply_profile(raw.test_y[test_idx], k, profile, cfg.test_ratio, seed)]
    check_every_class(cfg, raw, raw.test_y[val_idx], raw.test_y[test_idx])
    train_y = raw.train_y[tr]
    return ImbalancedData(
        name=cfg.dataset,
        num_classes=k,
        input_shape=tuple(raw.train_x.shape[1:]),
        train_x=raw.train_x[tr],
        train_y=train_y,
        val_x=raw.test_x[val_idx],
        val_y=raw.test_y[val_idx],
        test_x=raw.test_x[test_idx],
        test_y=raw.test_y[test_idx],
        train_counts=_counts(train_y, k),
        mean=raw.mean,
        std=raw.std,
        class_names=list(raw.class_names),
        feature_info=raw.feature_info,
        tabular_transform=raw.tabular_transform,
        image_decode=raw.image_decode,
    )


def check_every_class(cfg, raw: RawData, val_y: Tensor, test_y: Tensor) -> None:
    """UserError unless the validation and test splits each hold every class."""
    k = raw.num_classes
    val, test = _counts(val_y, k), _counts(test_y, k)
    missing = [c for c in range(k) if not val[c] or not test[c]]
    if not missing:
        return
    c = missing[0]
    held = int((raw.test_y == c).sum())
    split = "validation" if not val[c] else "test"
    hint = ""
    if cfg.dataset == "imagefolder":
        hint = ("; a plain class-per-folder tree holds out a fifth of each folder (8 images "
                "give 2), a train/ and test/ tree holds out test/<class>")
    raise UserError(f"{cfg.dataset}: class {raw.class_names[c]!r} has {held} held-out "
                    f"sample(s), so the {split} split holds none of it (and val_bal_acc would "
                    f"average the other classes only); every class needs at least 2 held-out "
                    f"samples{hint}")
