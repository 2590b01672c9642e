"""Tests of imbtrain.data: profiles, splits, the registry and every loader.

Counts are worked out by hand from n_i = floor(n_max * r ** (i / (K - 1))) (docs/methods.md); the
on-disk loaders read tiny files written here in each dataset's standard layout.
"""

from __future__ import annotations

import doctest
import math
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import imbtrain.data
from imbtrain.data import (
    DATA_FIELDS,
    DATASETS,
    SOURCE_FIELDS,
    RawData,
    build_data,
    cached_data,
    clear_cache,
    exp_counts,
    load_raw,
    profile_counts,
    register_dataset,
    step_counts,
    subsample_per_class,
)
from imbtrain.data.profiles import split_per_class
from imbtrain.errors import UserError

# ----------------------------------------------------------------------------- helpers


def make_cfg(**overrides) -> SimpleNamespace:
    """A duck-typed config with every field build_data and the loaders read."""
    base = dict(
        dataset="synthetic",
        data_dir="",
        train_ratio=1.0,
        imbalance_profile="exp",
        test_ratio=1.0,
        val_fraction=0.5,
        data_seed=0,
        image_size=0,
        synthetic_classes=4,
        synthetic_shape="6",
        synthetic_samples=40,
    )
    base.update(overrides)
    return SimpleNamespace(**base)


def counts(y: torch.Tensor, k: int) -> list[int]:
    return torch.bincount(y, minlength=k).tolist()


def write_pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def cifar_rows(labels: list[int]) -> np.ndarray:
    """Rows of 3072 bytes (R plane, G plane, B plane); channel c of label l is 10 l + c."""
    return np.stack(
        [
            np.repeat(np.array([10 * lab, 10 * lab + 1, 10 * lab + 2], np.uint8), 1024)
            for lab in labels
        ]
    )


def write_png(path: Path, color: tuple[int, int, int], size=(32, 32), fmt=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)


def color_of(c: int) -> tuple[int, int, int]:
    return (40 * c, 200 - 40 * c, 100)


def write_tree(root: Path, classes: list[str], n: int, ext=".png", size=(32, 32)) -> None:
    for c, cls in enumerate(classes):
        for i in range(n):
            write_png(root / cls / f"img{i}{ext}", color_of(c), size)


# ----------------------------------------------------------------------------- profiles


def test_exp_counts_cifar10_reference():
    c = exp_counts(5000, 10, 0.01)
    assert c == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(c) == 12406


def test_exp_counts_cifar100_reference():
    c = exp_counts(500, 100, 0.01)
    assert (c[0], c[-1], sum(c)) == (500, 5, 10847)
    assert all(a >= b for a, b in zip(c, c[1:], strict=False))


def test_exp_counts_edges():
    assert exp_counts(7, 1, 0.01) == [7]  # one class: n_max
    assert exp_counts(30, 3, 1.0) == [30, 30, 30]  # r = 1 is balanced
    # 10 * 0.001 ** 0.5 = 0.316 -> floor 0 -> at least 1
    assert exp_counts(10, 3, 0.001) == [10, 1, 1]


def test_step_counts():
    assert step_counts(5000, 10, 0.01) == [5000] * 5 + [50] * 5
    assert step_counts(10, 4, 0.01) == [10, 10, 1, 1]  # 0.1 -> at least 1
    assert step_counts(100, 3, 0.1) == [100, 100, 10]  # odd K: the larger half is majority
    # 100 * 0.29 is 28.999999999999996 in floating point; the count meant is 29
    assert step_counts(100, 2, 0.29) == [100, 29]


def test_profile_counts_dispatch():
    assert profile_counts("exp", 400, 10, 0.01) == exp_counts(400, 10, 0.01)
    assert profile_counts("step", 400, 10, 0.01) == [400] * 5 + [4] * 5
    with pytest.raises(UserError, match="imbalance_profile"):
        profile_counts("linear", 400, 10, 0.01)


# ----------------------------------------------------------------------------- subsampling

Y = torch.arange(4).repeat_interleave(10)[
    torch.randperm(40, generator=torch.Generator().manual_seed(1))
]


def test_subsample_counts_and_classes():
    idx = subsample_per_class(Y, [10, 5, 2, 1], seed=0)
    assert counts(Y[idx], 4) == [10, 5, 2, 1]
    assert torch.equal(idx, idx.sort().values)  # sorted, original pool order
    # a count above what a class holds keeps the whole class
    assert counts(Y[subsample_per_class(Y, [25, 10, 0, 3], seed=0)], 4) == [10, 10, 0, 3]


def test_subsample_deterministic_per_data_seed():
    a = subsample_per_class(Y, [6, 4, 3, 1], seed=3)
    assert torch.equal(a, subsample_per_class(Y, [6, 4, 3, 1], seed=3))
    assert not torch.equal(a, subsample_per_class(Y, [6, 4, 3, 1], seed=4))


def test_subsample_nested_across_ratios():
    small = set(subsample_per_class(Y, [6, 2, 1, 1], seed=5).tolist())
    large = set(subsample_per_class(Y, [9, 7, 5, 3], seed=5).tolist())
    assert small <= large


def test_split_per_class_disjoint_and_clamped():
    y = torch.arange(3).repeat_interleave(torch.tensor([10, 2, 1]))
    val, rest = split_per_class(y, 0.3, seed=0, num_classes=3)
    assert set(val.tolist()).isdisjoint(rest.tolist())
    assert len(val) + len(rest) == 13
    # 0.3 * 10 = 3; 0.3 * 2 = 0.6 -> 1, clamped to [1, 1]; a single sample stays in the rest
    assert counts(y[val], 3) == [3, 1, 0]
    assert counts(y[rest], 3) == [7, 1, 1]
    # tiny and huge fractions still leave one sample a side
    assert counts(y[split_per_class(y, 0.01, 0, 3)[0]], 3) == [1, 1, 0]
    assert counts(y[split_per_class(y, 0.99, 0, 3)[1]], 3) == [1, 1, 1]
    assert len(split_per_class(y, 0.0, 0, 3)[0]) == 0


# ----------------------------------------------------------------------------- build_data


def test_build_data_train_profile_and_val_from_test_pool():
    # synthetic: 4 classes of 40 train-pool and 10 test-pool vectors of 6 values.
    # exp at r = 0.1, n_max 40: 40, floor(18.57) = 18, floor(8.62) = 8, 4
    cfg = make_cfg(train_ratio=0.1, val_fraction=0.3)
    data = build_data(cfg)
    assert data.train_counts == [40, 18, 8, 4] == counts(data.train_y, 4)
    assert (data.input_shape, data.is_image, data.mean) == ((6,), False, None)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    # val is 3 of the 10 test-pool samples a class; test keeps the other 7
    assert counts(data.val_y, 4) == [3] * 4 and counts(data.test_y, 4) == [7] * 4
    assert torch.cdist(data.val_x, data.test_x).min() > 0  # disjoint
    assert torch.cdist(data.val_x, data.train_x).min() > 0  # never from the train pool
    # the train set does not depend on val_fraction
    other = build_data(make_cfg(train_ratio=0.1, val_fraction=0.5))
    assert other.train_counts == data.train_counts
    assert torch.equal(other.train_x, data.train_x)
    assert counts(other.val_y, 4) == [5] * 4


def test_build_data_test_ratio_profile():
    # test part 7 a class, val 3 a class; exp at r = 0.1 on each:
    # 7 -> 7, floor(3.25) = 3, floor(1.51) = 1, max(1, floor(0.7)) = 1
    # 3 -> 3, floor(1.39) = 1, max(1, floor(0.65)) = 1, 1
    data = build_data(make_cfg(train_ratio=0.1, val_fraction=0.3, test_ratio=0.1))
    assert counts(data.test_y, 4) == [7, 3, 1, 1]
    assert counts(data.val_y, 4) == [3, 1, 1, 1]
    assert data.train_counts == [40, 18, 8, 4]


def test_build_data_step_profile():
    data = build_data(make_cfg(imbalance_profile="step", train_ratio=0.05, test_ratio=0.5))
    assert data.train_counts == [40, 40, 2, 2]
    assert counts(data.test_y, 4) == [5, 5, 2, 2]  # 5 a class after val; floor(2.5) = 2


def test_build_data_data_seed():
    a = build_data(make_cfg(train_ratio=0.1, data_seed=0))
    b = build_data(make_cfg(train_ratio=0.1, data_seed=0))
    c = build_data(make_cfg(train_ratio=0.1, data_seed=1))
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_x, b.val_x)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.train_counts == c.train_counts


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UserError, match="cifar10.*digits"):
        build_data(make_cfg(dataset="nope"))


def test_register_dataset_plugs_into_build_data():
    @register_dataset("tiny_test_set")
    def tiny(cfg):
        y = torch.arange(2).repeat_interleave(4)
        x = y[:, None].float().repeat(1, 3)
        return RawData(x, y, x.clone(), y.clone(), 2, ["a", "b"])

    try:
        data = build_data(make_cfg(dataset="tiny_test_set", train_ratio=0.5))
        assert data.train_counts == [4, 2] and data.class_names == ["a", "b"]
        with pytest.raises(ValueError, match="twice"):
            register_dataset("tiny_test_set")(tiny)
    finally:
        DATASETS.unregister("tiny_test_set")
        clear_cache()


EMBEDDED = [n for n in DATASETS if not DATASETS.meta(n).get("on_disk")]


def test_the_registry_knows_which_datasets_need_files():
    assert {"digits", "mnist5k", "toy2d", "synthetic", "tabular_synth"} <= set(EMBEDDED)
    assert all(DATASETS.meta(n).get("on_disk") for n in ("cifar10", "imagefolder", "tabular"))


@pytest.mark.parametrize("name", EMBEDDED)
def test_every_embedded_dataset_builds(name):
    data = build_data(make_cfg(dataset=name, train_ratio=0.1))
    k = data.num_classes
    assert k == len(data.class_names) == len(data.train_counts) >= 2
    assert data.train_counts == counts(data.train_y, k) and data.train_counts[0] == max(
        data.train_counts) and min(data.train_counts) >= 1
    for x, y in ((data.train_x, data.train_y), (data.val_x, data.val_y),
                 (data.test_x, data.test_y)):
        assert tuple(x.shape[1:]) == data.input_shape and len(x) == len(y) > 0
        assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) < k
        assert x.dtype == (torch.uint8 if data.is_image else torch.float32)


def test_one_cache_keeps_the_latest_data_sets_and_one_raw_pool():
    from imbtrain.config import FIELDS

    assert set(SOURCE_FIELDS) < set(DATA_FIELDS) <= set(FIELDS)
    clear_cache()
    first = cached_data(make_cfg(dataset="digits", train_ratio=0.1))
    assert cached_data(make_cfg(dataset="digits", train_ratio=0.1)) is first
    raw = load_raw(make_cfg(dataset="digits"))
    for ratio in (0.2, 0.3, 0.4, 0.5):  # four more ratios of the same pool
        data = cached_data(make_cfg(dataset="digits", train_ratio=ratio))
        assert data.train_counts[-1] == math.floor(122 * ratio)  # n_max 122 (class 3)
    assert load_raw(make_cfg(dataset="digits", train_ratio=0.5)) is raw  # decoded once
    again = cached_data(make_cfg(dataset="digits", train_ratio=0.1))  # the 5th evicted it
    assert again is not first and again.train_counts == first.train_counts
    clear_cache()


def test_module_docstring_example():
    assert doctest.testmod(imbtrain.data).failed == 0


# ----------------------------------------------------------------------------- embedded


def test_digits_pools_and_counts():
    data = build_data(make_cfg(dataset="digits", val_fraction=0.5))
    assert data.input_shape == (1, 8, 8) and data.train_x.dtype == torch.uint8
    assert int(data.train_x.max()) == 255  # 16 -> 255
    # a third of each class (halves up) is the test pool: 178 -> 59, 182 -> 61, ...
    assert data.train_counts == [119, 121, 118, 122, 121, 121, 121, 119, 116, 120]
    assert len(data.val_y) + len(data.test_y) == 599
    # the pools never depend on data_seed
    other = load_raw(make_cfg(dataset="digits", data_seed=9))
    assert len(other.train_y) == 1198 and len(data.mean) == 1


def test_mnist5k_shapes_and_counts():
    data = build_data(make_cfg(dataset="mnist5k", train_ratio=0.01, val_fraction=0.2))
    assert data.input_shape == (1, 28, 28) and data.train_x.dtype == torch.uint8
    # n_max 400: 400 * 0.01 ** (i / 9)
    assert data.train_counts == [400, 239, 143, 86, 51, 30, 18, 11, 6, 4]
    # test pool 100 a class: 20 val, 80 test
    assert counts(data.val_y, 10) == [20] * 10 and counts(data.test_y, 10) == [80] * 10
    full = build_data(make_cfg(dataset="mnist5k", train_ratio=1.0))
    assert full.train_counts == [400] * 10


def test_toy2d():
    data = build_data(make_cfg(dataset="toy2d"))
    assert data.input_shape == (2,) and data.num_classes == 3
    assert data.train_counts == [1000, 1000, 1000]
    assert data.train_x.mean(0).abs().max() < 1e-5  # standardised on the train pool
    assert (data.train_x.std(0) - 1).abs().max() < 1e-3
    clear_cache()
    again = build_data(make_cfg(dataset="toy2d"))
    assert torch.equal(again.train_x, data.train_x)  # deterministic
    # exp at r = 0.01 over 3 classes: 1000, 100, 10
    assert build_data(make_cfg(dataset="toy2d", train_ratio=0.01)).train_counts == [1000, 100, 10]


def test_synthetic_images_and_learnable():
    cfg = make_cfg(synthetic_classes=3, synthetic_shape="2x4x5", synthetic_samples=8)
    data = build_data(cfg)
    assert data.input_shape == (2, 4, 5) and data.train_x.dtype == torch.uint8
    assert data.train_counts == [8, 8, 8] and len(data.val_y) + len(data.test_y) == 6
    assert len(data.mean) == 2 and data.is_image
    # vectors of 16 values: the nearest class mean of the train pool classifies the test pool
    vec = build_data(make_cfg(synthetic_classes=5, synthetic_shape="16", synthetic_samples=100))
    means = torch.stack([vec.train_x[vec.train_y == c].mean(0) for c in range(5)])
    pred = torch.cdist(vec.test_x, means).argmin(1)
    assert (pred == vec.test_y).float().mean() > 0.9
    with pytest.raises(UserError, match="synthetic_shape"):
        build_data(make_cfg(synthetic_shape="3x4"))


# ----------------------------------------------------------------------------- CIFAR


def write_cifar10(root: Path, per_batch: int = 1) -> Path:
    """cifar-10-batches-py with 5 train batches of per_batch images a class, test 3 a class."""
    d = root / "cifar-10-batches-py"
    for b in range(1, 6):
        labels = list(range(10)) * per_batch
        write_pickle(d / f"data_batch_{b}", {b"data": cifar_rows(labels), b"labels": labels})
    labels = list(range(10)) * 3
    write_pickle(d / "test_batch", {b"data": cifar_rows(labels), b"labels": labels})
    names = [f"class{i}".encode() for i in range(10)]
    write_pickle(d / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    return d


def test_cifar10_reads_torchvision_layout(tmp_path):
    folder = write_cifar10(tmp_path)
    raw = load_raw(make_cfg(dataset="cifar10", data_dir=str(tmp_path)))
    assert raw.train_x.shape == (50, 3, 32, 32) and raw.test_x.shape == (30, 3, 32, 32)
    assert counts(raw.train_y, 10) == [5] * 10 and raw.class_names[3] == "class3"
    # the row is R, G, B planes: channel c of a label-l image is 10 l + c
    x7 = raw.train_x[raw.train_y == 7]
    assert x7[:, 0].unique().tolist() == [70] and x7[:, 2].unique().tolist() == [72]
    assert raw.mean == (0.4914, 0.4822, 0.4465)
    # data_dir may point at the folder itself; image_size resizes
    small = load_raw(make_cfg(dataset="cifar10", data_dir=str(folder), image_size=16))
    assert small.train_x.shape == (50, 3, 16, 16)
    assert small.train_x[small.train_y == 7][:, 1].unique().tolist() == [71]
    # exp at r = 0.5, n_max 5: floor(5 * 0.5 ** (i / 9)) = 5, 4, 4, 3, 3, 3, 3, 2, 2, 2
    data = build_data(make_cfg(dataset="cifar10", data_dir=str(tmp_path), train_ratio=0.5))
    assert data.train_counts == [5, 4, 4, 3, 3, 3, 3, 2, 2, 2]
    assert counts(data.val_y, 10) == [2] * 10  # 3 a class, half (halves up) to val


def test_cifar100_fine_labels(tmp_path):
    d = tmp_path / "cifar-100-python"
    fine = list(range(100))
    coarse = [f // 5 for f in fine]
    entry = {
        b"data": cifar_rows([f % 25 for f in fine]),
        b"fine_labels": fine,
        b"coarse_labels": coarse,
    }
    write_pickle(d / "train", entry)
    write_pickle(d / "test", entry)
    write_pickle(
        d / "meta",
        {b"fine_label_names": [f"f{i}".encode() for i in fine], b"coarse_label_names": [b"c"] * 20},
    )
    raw = load_raw(make_cfg(dataset="cifar100", data_dir=str(tmp_path)))
    assert raw.num_classes == 100 and raw.train_x.shape == (100, 3, 32, 32)
    assert raw.train_y.tolist() == fine and raw.class_names[42] == "f42"
    assert raw.std == (0.2673, 0.2564, 0.2762)


def test_cifar_errors_name_the_path(tmp_path):
    with pytest.raises(UserError, match=f"no 'cifar-10-batches-py' under {tmp_path}"):
        load_raw(make_cfg(dataset="cifar10", data_dir=str(tmp_path)))
    with pytest.raises(UserError, match="data_dir is empty"):
        load_raw(make_cfg(dataset="cifar100", data_dir=""))
    with pytest.raises(UserError, match="is not a directory"):
        load_raw(make_cfg(dataset="cifar10", data_dir=str(tmp_path / "absent")))
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(UserError, match=f"missing file {folder / 'data_batch_3'}"):
        load_raw(make_cfg(dataset="cifar10", data_dir=str(tmp_path)))
    write_pickle(folder / "data_batch_3", {b"pixels": 1})
    with pytest.raises(UserError, match="no 'data' entry"):
        load_raw(make_cfg(dataset="cifar10", data_dir=str(tmp_path)))
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="cannot unpickle"):
        load_raw(make_cfg(dataset="cifar10", data_dir=str(tmp_path)))


# ----------------------------------------------------------------------------- image trees


def test_cinic10_tree(tmp_path):
    classes = ["dog", "airplane", "cat"]  # read in sorted order
    write_tree(tmp_path / "train", classes, 3)
    write_tree(tmp_path / "test", classes, 2)
    write_tree(tmp_path / "valid", classes, 4)  # ignored
    raw = load_raw(make_cfg(dataset="cinic10", data_dir=str(tmp_path)))
    assert raw.class_names == ["airplane", "cat", "dog"]
    assert raw.train_x.shape == (9, 3, 32, 32) and raw.test_x.shape == (6, 3, 32, 32)
    dog = raw.train_x[raw.train_y == 2]  # "dog" was written as class 0's colour
    assert dog[:, :, 0, 0].unique(dim=0).tolist() == [list(color_of(0))]
    assert raw.mean[2] == pytest.approx(100 / 255)  # blue is 100 everywhere


def test_tiny_imagenet_layout(tmp_path):
    wnids = ["n02", "n01"]  # classes are sorted: n01 -> 0, n02 -> 1
    (tmp_path / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (tmp_path / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\tsnail\n")
    for c, w in enumerate(sorted(wnids)):
        for i in range(3):
            write_png(
                tmp_path / "train" / w / "images" / f"{w}_{i}.JPEG", color_of(c), (64, 64), "JPEG"
            )
    lines = []
    for i, w in enumerate(["n02", "n01", "n02"]):
        write_png(
            tmp_path / "val" / "images" / f"val_{i}.JPEG",
            color_of(int(w == "n02")),
            (64, 64),
            "JPEG",
        )
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    raw = load_raw(make_cfg(dataset="tiny_imagenet", data_dir=str(tmp_path)))
    assert raw.train_x.shape == (6, 3, 64, 64) and raw.class_names == ["goldfish", "snail"]
    assert raw.test_y.tolist() == [1, 0, 1]
    # JPEG is lossy: solid colours come back within a few levels
    got = raw.test_x[:, :, 32, 32].float()
    want = torch.tensor([color_of(1), color_of(0), color_of(1)]).float()
    assert (got - want).abs().max() <= 4
    (tmp_path / "val" / "val_annotations.txt").unlink()
    clear_cache()
    with pytest.raises(UserError, match="missing file .*val_annotations.txt"):
        load_raw(make_cfg(dataset="tiny_imagenet", data_dir=str(tmp_path)))


def test_imagefolder_train_test_layout(tmp_path):
    write_tree(tmp_path / "train", ["a", "b"], 3, size=(10, 12))
    write_tree(tmp_path / "test", ["a", "b"], 1, ext=".jpg", size=(10, 12))
    (tmp_path / "train" / "a" / "notes.txt").write_text("skipped")
    raw = load_raw(make_cfg(dataset="imagefolder", data_dir=str(tmp_path)))
    assert raw.train_x.shape == (6, 3, 64, 64)  # image_size 0 -> 64
    assert counts(raw.train_y, 2) == [3, 3] and counts(raw.test_y, 2) == [1, 1]
    sized = load_raw(make_cfg(dataset="imagefolder", data_dir=str(tmp_path), image_size=8))
    assert sized.test_x.shape == (2, 3, 8, 8)


def test_imagefolder_plain_tree_split_80_20(tmp_path):
    write_tree(tmp_path, ["x", "y"], 5, size=(8, 8))
    raw = load_raw(make_cfg(dataset="imagefolder", data_dir=str(tmp_path), image_size=8))
    # a fifth of 5 is 1 test image a class
    assert counts(raw.train_y, 2) == [4, 4] and counts(raw.test_y, 2) == [1, 1]
    clear_cache()
    again = load_raw(make_cfg(dataset="imagefolder", data_dir=str(tmp_path), image_size=8))
    assert torch.equal(again.train_x, raw.train_x)


def test_image_tree_errors(tmp_path):
    cfg = make_cfg(dataset="imagefolder", data_dir=str(tmp_path))
    write_tree(tmp_path, ["only"], 2, size=(8, 8))
    with pytest.raises(UserError, match="at least 2 class folders, found only 'only'"):
        load_raw(cfg)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=f"no image files .* in {tmp_path / 'empty'}"):
        load_raw(cfg)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="found 1 other entries, e.g. 'readme.txt'"):
        load_raw(cfg)
    (tmp_path / "empty" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image .*bad.png"):
        load_raw(cfg)
    cinic = make_cfg(dataset="cinic10", data_dir=str(tmp_path))
    with pytest.raises(UserError, match=f"missing directory {tmp_path / 'train'}"):
        load_raw(cinic)
    write_tree(tmp_path / "train", ["a", "b"], 1)
    write_tree(tmp_path / "test", ["a", "c"], 1)
    with pytest.raises(UserError, match=r"differ \(\['b', 'c'\]\)"):
        load_raw(cinic)
    with pytest.raises(UserError, match="tiny_imagenet: missing file .*wnids.txt"):
        load_raw(make_cfg(dataset="tiny_imagenet", data_dir=str(tmp_path)))
