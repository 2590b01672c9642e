"""A split's metrics (imbtrain/metrics/split.py) with numbers worked out by hand
(docs/methods.md, "2. Metrics"): confusion matrices, class groups, the split metrics."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from imbtrain.metrics import (
    confusion_matrix,
    confusion_update,
    group_classes,
    majority_classes,
    minority_classes,
    split_metrics,
)

approx = pytest.approx


# ----------------------------------------------------------------------------------------------
# Confusion matrices
# ----------------------------------------------------------------------------------------------

# rows = true class, columns = predicted class
CONF3 = np.array([[8, 2, 0],
                  [1, 3, 1],
                  [0, 2, 3]])  # fmt: skip
# Worked by hand:
#   support (row sums) 10, 5, 5 = 20; predicted (column sums) 9, 7, 4; diagonal 8, 3, 3
#   acc       = (8 + 3 + 3) / 20 = 0.7
#   class acc = 8/10, 3/5, 3/5 = 0.8, 0.6, 0.6;  bal_acc = (0.8 + 0.6 + 0.6) / 3 = 2/3
#   F1 = 2TP / (2TP + FP + FN):
#     class 0: TP 8, FP 1, FN 2 -> 16/19;  class 1: TP 3, FP 4, FN 2 -> 6/12 = 1/2;
#     class 2: TP 3, FP 1, FN 2 -> 6/9 = 2/3;  macro_f1 = (16/19 + 1/2 + 2/3) / 3
MACRO_F1 = (16 / 19 + 1 / 2 + 2 / 3) / 3


def _labels_of(conf):
    """Label / prediction vectors that produce a given confusion matrix."""
    k = conf.shape[0]
    pairs = [(i, j) for i in range(k) for j in range(k) for _ in range(conf[i, j])]
    y, p = zip(*pairs, strict=True)
    return np.array(y), np.array(p)


def test_confusion_matrix_rows_are_true_class():
    assert confusion_matrix([0, 0, 1, 2], [0, 1, 1, 0], 3).tolist() == [
        [1, 1, 0],
        [0, 1, 0],
        [1, 0, 0],
    ]
    y, p = _labels_of(CONF3)
    assert (confusion_matrix(y, p, 3) == CONF3).all()
    assert (confusion_matrix(torch.as_tensor(y), torch.as_tensor(p), 3) == CONF3).all()


def test_confusion_matrix_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], 3)


def test_confusion_update_equals_numpy_confusion_matrix():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (50,), generator=g)
    pred = torch.randint(0, 4, (50,), generator=g)
    conf = torch.zeros(4, 4, dtype=torch.long)
    for yb, pb in zip(y.split(16), pred.split(16), strict=True):  # batches, last one short
        confusion_update(conf, yb, pb)
    assert (conf.numpy() == confusion_matrix(y.numpy(), pred.numpy(), 4)).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_confusion_update_does_not_sync_with_the_host():
    dev = torch.device("cuda")
    conf = torch.zeros(3, 3, dtype=torch.long, device=dev)
    y = torch.tensor([0, 1, 2, 2], device=dev)
    pred = torch.tensor([0, 2, 2, 1], device=dev)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host sync raises
    try:
        confusion_update(conf, y, pred)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert conf.cpu().tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]


# ----------------------------------------------------------------------------------------------
# Class groups
# ----------------------------------------------------------------------------------------------

COUNTS10 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # exp profile, r = 0.01


def test_minority_and_majority_are_20_percent_of_classes():
    # round(0.2 * 10) = 2 classes each
    assert minority_classes(COUNTS10) == [8, 9]
    assert majority_classes(COUNTS10) == [0, 1]
    # unsorted counts: chosen by count, returned in label order
    assert minority_classes([50, 5000, 83, 2997, 645, 387, 232, 139, 1796, 1077]) == [0, 2]
    assert majority_classes([50, 5000, 83, 2997, 645, 387, 232, 139, 1796, 1077]) == [1, 3]


def test_at_least_one_class_and_ties_go_to_lower_label():
    # K = 3: round(0.6) = 1; all counts equal -> label 0 for both
    assert minority_classes([1, 1, 1]) == [0]
    assert majority_classes([1, 1, 1]) == [0]
    # K = 2: round(0.4) = 0 -> at least one
    assert minority_classes([90, 10]) == [1]
    assert majority_classes([90, 10]) == [0]
    # ties at the boundary of the 2 chosen classes
    counts = [7, 3, 3, 3, 3, 3, 3, 3, 3, 7]
    assert minority_classes(counts) == [1, 2]
    assert majority_classes(counts) == [0, 9]
    assert minority_classes([5, 9, 4, 4, 9]) == [2]
    assert majority_classes([5, 9, 4, 4, 9]) == [1]
    # K = 13: round(2.6) = 3; K = 12: round(2.4) = 2
    assert len(minority_classes(list(range(13)))) == 3
    assert len(majority_classes(list(range(12)))) == 2


def test_kang_groups_for_cifar100_exp_r001():
    counts = [math.floor(500 * 0.01 ** (i / 99)) for i in range(100)]
    groups = group_classes(counts)
    # counts[34] = 102 > 100, counts[35] = 98; counts[69] = 20, counts[70] = 19
    assert groups["many"] == list(range(0, 35))
    assert groups["med"] == list(range(35, 70))
    assert groups["few"] == list(range(70, 100))
    assert [len(groups[g]) for g in ("few", "med", "many")] == [30, 35, 35]


def test_kang_group_boundaries():
    assert group_classes([19, 20, 100, 101]) == {"few": [0], "med": [1, 2], "many": [3]}


# ----------------------------------------------------------------------------------------------
# Split metrics
# ----------------------------------------------------------------------------------------------


def test_split_metrics_by_hand():
    # train counts 10, 50, 500: minority = [0] (round(0.6) = 1 class), majority = [2];
    # few = [0] (< 20), med = [1], many = [2]
    m = split_metrics(CONF3, [10, 50, 500], "val", loss=1.25)
    assert m == approx(
        {
            "val_acc": 0.7,
            "val_bal_acc": 2 / 3,
            "val_macro_f1": MACRO_F1,
            "val_minority_acc": 0.8,
            "val_majority_acc": 0.6,
            "val_few_acc": 0.8,
            "val_med_acc": 0.6,
            "val_many_acc": 0.6,
            "val_loss": 1.25,
            "val_class_acc_0": 0.8,
            "val_class_acc_1": 0.6,
            "val_class_acc_2": 0.6,
        }
    )
    assert all(type(v) is float for v in m.values())
    y, p = _labels_of(CONF3)
    assert m["val_macro_f1"] == approx(f1_score(y, p, average="macro"))


def test_empty_group_is_nan_not_zero():
    # train counts 500, 100, 20: nothing below 20 -> few is empty; med = [1, 2], many = [0]
    m = split_metrics(CONF3, [500, 100, 20], "test")
    assert math.isnan(m["test_few_acc"])
    assert m["test_med_acc"] == approx((0.6 + 0.6) / 2)
    assert m["test_many_acc"] == approx(0.8)
    assert m["test_minority_acc"] == approx(0.6)  # class 2 (20 samples)
    assert m["test_majority_acc"] == approx(0.8)  # class 0
    assert "test_loss" not in m and "test_auroc" not in m


def test_class_absent_from_split_is_left_out_of_the_means():
    # class 2 has no test samples but is predicted once
    conf = np.array([[3, 1, 0], [0, 2, 1], [0, 0, 0]])
    m = split_metrics(conf, [100, 50, 5], "test")
    assert math.isnan(m["test_class_acc_2"])
    assert m["test_acc"] == approx(5 / 7)
    assert m["test_bal_acc"] == approx((3 / 4 + 2 / 3) / 2)
    # F1 class 0: 6/(6+0+1) = 6/7; class 1: 4/(4+1+1) = 2/3
    assert m["test_macro_f1"] == approx((6 / 7 + 2 / 3) / 2)
    assert math.isnan(m["test_minority_acc"])  # minority = [2], absent
    assert math.isnan(m["test_few_acc"])  # few = [2], absent


def test_binary_auroc_auprc_of_minority_class():
    labels = np.array([0, 0, 1, 1, 0])
    p1 = np.array([0.1, 0.4, 0.35, 0.8, 0.5])
    scores = np.stack([1 - p1, p1], axis=1)
    conf = confusion_matrix(labels, scores.argmax(1), 2)  # preds 0, 0, 0, 1, 0
    # minority = class 1 (10 train samples). Positives score 0.35, 0.8; negatives 0.1, 0.4, 0.5.
    # AUROC = correctly ordered pos/neg pairs: 0.35 beats 0.1 only (1), 0.8 beats all (3) -> 4/6
    # AUPRC (average precision): ranking 0.8 P, 0.5 N, 0.4 N, 0.35 P, 0.1 N
    #   -> mean precision at the positives = (1/1 + 2/4) / 2 = 0.75
    m = split_metrics(conf, [90, 10], "test", scores=scores, labels=labels)
    assert m["test_auroc"] == approx(2 / 3)
    assert m["test_auprc"] == approx(0.75)
    assert m["test_minority_acc"] == approx(0.5)
    # minority = class 0: positives idx 0, 1, 4 score 0.9, 0.6, 0.5; negatives 0.65, 0.2.
    # AUROC: 0.9 beats both (2), 0.6 and 0.5 beat 0.2 only (1 + 1) -> 4/6
    # AUPRC: ranking 0.9 P, 0.65 N, 0.6 P, 0.5 P, 0.2 N -> (1 + 2/3 + 3/4) / 3 = 29/36
    m = split_metrics(conf, [10, 90], "test", scores=torch.as_tensor(scores), labels=labels)
    assert m["test_auroc"] == approx(2 / 3)
    assert m["test_auprc"] == approx(29 / 36)


def test_binary_auroc_nan_with_one_class_present():
    labels = np.array([0, 0, 0])
    scores = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    m = split_metrics(confusion_matrix(labels, [0, 0, 1], 2), [90, 10], "val", scores, labels)
    assert math.isnan(m["val_auroc"]) and math.isnan(m["val_auprc"])
