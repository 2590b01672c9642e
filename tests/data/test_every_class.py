"""The validation and test splits hold every class, or the run stops before training with one
line naming the class (`imbtrain.data.check_every_class`): `val_bal_acc` never averages
fewer classes than the model has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imbtrain.cli import main
from imbtrain.config import TrainConfig
from imbtrain.data import build_data
from imbtrain.errors import UserError


def images(folder: Path, n: int, value: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), value + i, np.uint8)).save(folder / f"{i}.png")


def tree_config(root: Path) -> TrainConfig:
    return TrainConfig(dataset="imagefolder", data_dir=str(root), image_size=8, model="mlp")


def per_split(data) -> tuple[list[int], list[int]]:
    k = data.num_classes
    return (data.val_y.bincount(minlength=k).tolist(),
            data.test_y.bincount(minlength=k).tolist())


def test_a_plain_tree_class_of_8_images_gives_one_to_validation_and_one_to_test(tmp_path):
    # A fifth of 8 is round(1.6) = 2 held out; val takes round(0.2 * 2) = 0, clamped to 1.
    images(tmp_path / "common", 10, 0)
    images(tmp_path / "rare", 8, 100)
    data = build_data(tree_config(tmp_path))
    assert data.class_names == ["common", "rare"]
    assert per_split(data) == ([1, 1], [1, 1])  # common: 2 held out, 1 + 1 as well


def test_a_plain_tree_class_of_7_images_stops_the_run_with_one_line(tmp_path, capsys):
    # A fifth of 7 is round(1.4) = 1 held out: it cannot be in validation and test both.
    images(tmp_path / "tree" / "common", 10, 0)
    images(tmp_path / "tree" / "rare", 7, 100)
    out = tmp_path / "run"
    assert main(["train", "dataset=imagefolder", f"data_dir={tmp_path / 'tree'}",
                 "image_size=8", "model=mlp", "epochs=1", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "error: imagefolder: class 'rare' has 1 held-out sample(s), so the validation split "
        "holds none of it (and val_bal_acc would average the other classes only); every "
        "class needs at least 2 held-out samples; a plain class-per-folder tree holds out a "
        "fifth of each folder (8 images give 2), a train/ and test/ tree holds out "
        "test/<class>\n")
    assert not out.exists()


@pytest.mark.parametrize("n_test_b", [1, 2])
def test_a_train_test_tree_needs_two_test_images_a_class(tmp_path, n_test_b):
    for split, n_b in (("train", 5), ("test", n_test_b)):
        images(tmp_path / split / "a", 6, 0)
        images(tmp_path / split / "b", n_b, 100)
    if n_test_b == 1:
        with pytest.raises(UserError, match=r"^imagefolder: class 'b' has 1 held-out "
                                            r"sample\(s\), so the validation split holds none"):
            build_data(tree_config(tmp_path))
    else:  # test/a: 6 give round(1.2) = 1 to val, 5 to test; test/b: 2 give 1 and 1
        assert per_split(build_data(tree_config(tmp_path))) == ([1, 1], [5, 1])


def test_a_test_ratio_profile_keeps_one_sample_of_every_class():
    # synthetic: 10 test-pool samples a class, val 2 and test 8 a class; test_ratio=0.01 on
    # 10 classes keeps max(1, ...) of each, so the rarest class still has one in each split.
    cfg = TrainConfig(dataset="synthetic", synthetic_shape="4", synthetic_classes=10,
                      synthetic_samples=40, test_ratio=0.01)
    val, test = per_split(build_data(cfg))
    assert min(val) == 1 and min(test) == 1
    assert (val[0], test[0]) == (2, 8)


def test_the_smallest_synthetic_pool_still_holds_every_class():
    # synthetic_samples=4 gives max(2, 4 // 4) = 2 test-pool samples a class: 1 val, 1 test.
    cfg = TrainConfig(dataset="synthetic", synthetic_shape="4", synthetic_classes=3,
                      synthetic_samples=4)
    assert per_split(build_data(cfg)) == ([1, 1, 1], [1, 1, 1])
