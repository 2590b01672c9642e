"""Shared statistics and labels of the analyses, against numbers worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis.common import (
    dataset_labels,
    markdown_table,
    mean_se,
    method_labels,
    pearson,
    slope,
    summarise,
)


def test_standard_error_over_seeds():
    # 0.5, 0.6, 0.7: mean 0.6; deviations -0.1, 0, 0.1 -> var (ddof 1) = 0.02 / 2 = 0.01,
    # std 0.1, se = 0.1 / sqrt(3) = 0.057735
    mean, se, n = mean_se([0.5, 0.6, 0.7, math.nan])
    assert (mean, n) == (pytest.approx(0.6), 3)
    assert se == pytest.approx(0.1 / math.sqrt(3))
    one = mean_se([0.4])
    assert one[0] == 0.4 and math.isnan(one[1]) and one[2] == 1
    assert math.isnan(mean_se([])[0])


def test_pearson_r_and_slope():
    x, y = [1.0, 2.0, 3.0], [2.0, 4.0, 5.0]
    # x - 2 = (-1, 0, 1); y - 11/3 = (-5/3, 1/3, 4/3)
    # Sxy = 5/3 + 0 + 4/3 = 3; Sxx = 2; Syy = (25 + 1 + 16) / 9 = 14/3
    # r = 3 / sqrt(2 * 14/3) = 0.98198; slope = Sxy / Sxx = 1.5; intercept 11/3 - 3 = 2/3
    r, p = pearson(x, y)
    assert r == pytest.approx(3 / math.sqrt(28 / 3))
    assert 0 < p < 1
    a, b = slope(x, y)
    assert (a, b) == (pytest.approx(1.5), pytest.approx(2 / 3))
    assert all(math.isnan(v) for v in (*pearson([1.0], [2.0]), *pearson([1, 1], [2, 3]),
                                        *slope([2, 2], [1, 3])))


def test_summarise_groups_mean_and_se():
    df = pd.DataFrame({"g": ["a", "a", "b"], "v": [1.0, 3.0, 5.0]})
    t = summarise(df, ["g"], ["v"])
    # group a: mean 2, std sqrt(2), se = sqrt(2) / sqrt(2) = 1
    assert t.values.tolist()[0] == ["a", 2, 2.0, 1.0]
    assert t.loc[1, "v"] == 5.0 and math.isnan(t.loc[1, "v_se"])


def test_method_labels_join_the_knobs_that_are_on():
    df = pd.DataFrame({"config/method": ["erm", "ldam_drw", "erm", "m2m"],
                       "config/sam": ["none", "none", "sam_a", "sam_a"],
                       "config/ssl": ["none", "none", "vicreg", "vicreg"],
                       "config/smoothing": ["none", "none", "class", "none"]})
    assert method_labels(df).tolist() == [
        "erm", "ldam_drw", "sam_a + vicreg + class smoothing", "m2m + sam_a + vicreg"]
    df["label"] = ["A", "B", "C", "D"]
    assert method_labels(df, "label").tolist() == ["A", "B", "C", "D"]


def test_dataset_labels_tell_folder_datasets_apart():
    df = pd.DataFrame({"config/dataset": ["cifar10", "imagefolder", "imagefolder", "tabular"],
                       "config/data_dir": ["/d/cifar", "/d/isic/", "/d/aptos", "/d/adult.csv"],
                       "config/tabular_preset": ["none", "none", "none", "adult"]})
    assert dataset_labels(df).tolist() == ["cifar10", "imagefolder/isic", "imagefolder/aptos",
                                           "tabular/adult"]


def test_markdown_table():
    # Long numbers to `digits` decimals; short ones (a ratio, a count) as they are.
    df = pd.DataFrame({"method": ["erm", "focal"], "acc": [0.512345678, math.nan],
                       "ratio": [0.001, 1.0], "n": [3, 2]})
    assert markdown_table(df, 2, caption="Note.").splitlines() == [
        "| method | acc | ratio | n |", "|---|---|---|---|", "| erm | 0.51 | 0.001 | 3 |",
        "| focal | – | 1 | 2 |", "", "Note."]
