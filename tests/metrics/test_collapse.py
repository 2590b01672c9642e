"""Neural-collapse metrics (imbtrain/metrics/collapse.py) with numbers worked out by hand
(docs/methods.md, "2. Metrics"): class means, CDNV, nearest-class-centre accuracy."""

import math

import numpy as np
import pytest
import torch

from imbtrain.metrics import (
    cdnv,
    class_means,
    ncc_accuracy,
    ncc_predict,
    neural_collapse,
    within_class_variance,
)

approx = pytest.approx


# class 0 at (0,0), (2,0): mu_0 = (1,0), sigma_0^2 = (1 + 1)/2 = 1
# class 1 at (5,2), (5,-2): mu_1 = (5,0), sigma_1^2 = (4 + 4)/2 = 4
# class 2 at (1,1), (1,7): mu_2 = (1,4), sigma_2^2 = (9 + 9)/2 = 9
FEATS = np.array([[0, 0], [2, 0], [5, 2], [5, -2], [1, 1], [1, 7]], dtype=np.float32)
LABELS = np.array([0, 0, 1, 1, 2, 2])
# ||mu_0 - mu_1||^2 = 16, ||mu_0 - mu_2||^2 = 16, ||mu_1 - mu_2||^2 = 16 + 16 = 32
# CDNV(0,1) = (1 + 4) / 32 = 10/64;  CDNV(0,2) = (1 + 9) / 32 = 20/64;
# CDNV(1,2) = (4 + 9) / 64 = 13/64
CDNV_01, CDNV_02, CDNV_12 = 10 / 64, 20 / 64, 13 / 64


def test_class_means_and_within_class_variance():
    means = class_means(FEATS, LABELS, 4)  # class 3 absent -> NaN row
    assert means[:3].tolist() == [[1, 0], [5, 0], [1, 4]]
    assert np.isnan(means[3]).all()
    var = within_class_variance(FEATS, LABELS, means)
    assert var[:3].tolist() == approx([1, 4, 9])
    assert np.isnan(var[3])


def test_cdnv_two_classes():
    two = LABELS < 2
    assert cdnv(FEATS[two], LABELS[two], 2) == approx(5 / 32)


def test_cdnv_all_pairs_and_minority_pairs():
    assert cdnv(FEATS, LABELS, 3) == approx((CDNV_01 + CDNV_02 + CDNV_12) / 3)
    assert cdnv(FEATS, LABELS, 3, pairs_with={2}) == approx((CDNV_02 + CDNV_12) / 2)
    assert cdnv(FEATS, LABELS, 3, pairs_with={0, 2}) == approx((CDNV_01 + CDNV_02 + CDNV_12) / 3)
    # an absent class (3) is skipped, with or without pairs_with
    assert cdnv(FEATS, LABELS, 4) == approx((CDNV_01 + CDNV_02 + CDNV_12) / 3)
    assert math.isnan(cdnv(FEATS, LABELS, 4, pairs_with={3}))
    # torch inputs give the same number
    t = cdnv(torch.as_tensor(FEATS), torch.as_tensor(LABELS), 3, pairs_with={2})
    assert t == approx((CDNV_02 + CDNV_12) / 2)


# Test points and their squared distances to mu_0 = (1,0), mu_1 = (5,0), mu_2 = (1,4):
#   (0.5,0.5): 0.5, 20.5, 12.5 -> 0      (4,1): 10, 2, 18 -> 1
#   (1,2.5): 6.25, 22.25, 2.25 -> 2      (2.9,0): 3.61, 4.41, 17.61 -> 0
TEST_FEATS = np.array([[0.5, 0.5], [4, 1], [1, 2.5], [2.9, 0]])
TEST_LABELS = np.array([0, 1, 1, 2])  # right, right, wrong, wrong


def test_ncc_predict_and_accuracy():
    means = class_means(FEATS, LABELS, 3)
    assert ncc_predict(TEST_FEATS, means).tolist() == [0, 1, 2, 0]
    assert ncc_accuracy(TEST_FEATS, TEST_LABELS, means) == approx(0.5)
    assert ncc_accuracy(TEST_FEATS, TEST_LABELS, means, classes=[0]) == approx(1.0)
    assert ncc_accuracy(TEST_FEATS, TEST_LABELS, means, classes={1}) == approx(0.5)
    assert ncc_accuracy(TEST_FEATS, TEST_LABELS, means, classes=[2]) == approx(0.0)
    assert math.isnan(ncc_accuracy(TEST_FEATS, TEST_LABELS, means, classes=[5]))
    t_pred = ncc_predict(torch.as_tensor(TEST_FEATS), torch.as_tensor(means))
    assert isinstance(t_pred, torch.Tensor) and t_pred.tolist() == [0, 1, 2, 0]


def test_ncc_never_predicts_an_absent_class():
    means = class_means(FEATS, LABELS, 4)  # mean of class 3 is NaN
    assert ncc_predict(TEST_FEATS, means).tolist() == [0, 1, 2, 0]


def test_neural_collapse_keys_and_values():
    # train counts 100, 50, 2: minority = [2]. Minority train samples (1,1) and (1,7): (1,1)
    # is 1 from mu_0 and 3 from mu_2 -> predicted 0 (wrong); (1,7) -> 2 (right): 0.5
    expected = {
        "cdnv": (CDNV_01 + CDNV_02 + CDNV_12) / 3,
        "cdnv_minority": (CDNV_02 + CDNV_12) / 2,
        "ncc_acc_minority_train": 0.5,
        "ncc_acc_test": 0.5,
    }
    nc = neural_collapse(FEATS, LABELS, TEST_FEATS, TEST_LABELS, [100, 50, 2])
    assert nc == approx(expected)
    as_t = torch.as_tensor
    nc = neural_collapse(
        as_t(FEATS), as_t(LABELS), as_t(TEST_FEATS), as_t(TEST_LABELS), [100, 50, 2]
    )
    assert nc == approx(expected)
    assert all(type(v) is float for v in nc.values())
