"""What every dataset loader returns (`RawData`) and the helpers loaders share.

A loader is a function `cfg -> RawData` registered in `imbtrain.registry.DATASETS`, in its
own small module:

    @DATASETS.register("cifar10", on_disk=True)
    def cifar10(cfg) -> RawData: ...

`on_disk=True` marks a dataset that needs `data_dir`; `check_config=fn` adds a rule that
`TrainConfig` runs at validation (e.g. a tabular file needs its label column). A loader
reads only data-source fields of the config (`data_dir`, `image_size`, `synthetic_*`,
`tabular_*`); the imbalance profile, the validation split and the test-ratio profile are
applied afterwards by `imbtrain.data.build_data`, identically for every dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from imbtrain.errors import UserError


@dataclass
class RawData:
    """The untouched pools of one dataset (CPU tensors, y int64 in 0..K-1).

    Images: uint8 (N, C, H, W) with per-channel `mean`/`std` on the 0..1 scale. Vectors:
    float32 (N, D), already standardised, `mean` = `std` = None. `feature_info` describes
    the columns of tabular vectors (`imbtrain.data.tabular.TabularInfo`), None otherwise;
    `tabular_transform` is the fitted transform that made them from a table's rows
    (`imbtrain.data.tabular.TabularTransform`). `image_decode` says how an image file becomes
    one of the images, for a saved model to do the same to new files: {"mode": "RGB",
    "resize": "pil_bilinear"} (decoded with PIL, converted, squashed to the size: the image
    trees) or {"resize": "tensor_bilinear"} (`resize_uint8` of the decoded array: CIFAR with
    image_size); None: the images are arrays of exactly the input shape (embedded data).
    """

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    class_names: list[str]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    feature_info: Any = None
    tabular_transform: Any = None
    image_decode: dict | None = None


Loader = Callable[[object], RawData]


def channel_stats(x: Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) on the 0..1 scale.

    Summed in float64 over chunks, so a large pool is never copied to float whole.
    """
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk].to(torch.float64) / 255.0
        s += part.sum(dim=(0, 2, 3))
        s2 += (part * part).sum(dim=(0, 2, 3))
    n = len(x) * x.shape[2] * x.shape[3]
    mean = s / n
    std = (s2 / n - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def standardise(train_x: Tensor, test_x: Tensor) -> tuple[Tensor, Tensor]:
    """Standardise float vectors with the train pool's per-feature mean and std."""
    mean = train_x.mean(dim=0)
    std = train_x.std(dim=0).clamp_min(1e-8)
    return (train_x - mean) / std, (test_x - mean) / std


def require_data_dir(cfg: object, name: str, layout: str) -> Path:
    """`cfg.data_dir` as a Path, or a UserError that says which layout the dataset expects."""
    data_dir = str(cfg.data_dir or "")
    if not data_dir:
        raise UserError(f"{name}: data_dir is empty; set data_dir to a folder with {layout}")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"{name}: data_dir {root} is not a directory; expected {layout}")
    return root
