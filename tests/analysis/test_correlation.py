"""Cross-dataset correlation and slope across methods (Table 3) on a hand-made study."""

from __future__ import annotations

import pandas as pd
import pytest

from imbtrain.analysis.correlation import (
    correlation_analysis,
    cross_dataset_correlation,
    method_means,
)
from imbtrain.errors import UserError

# Mean test accuracy per dataset and method (cifar10's erm is the mean of two seeds):
#            erm   focal  drw
#   cifar10  0.1   0.2    0.3
#   isic     0.5   0.7    0.6
#   aptos    0.3   0.5    0.7
ROWS = [("cifar10", "", "erm", 0, 0.05), ("cifar10", "", "erm", 1, 0.15),
        ("cifar10", "", "focal", 0, 0.2), ("cifar10", "", "drw", 0, 0.3),
        ("imagefolder", "/data/isic", "erm", 0, 0.5),
        ("imagefolder", "/data/isic", "focal", 0, 0.7),
        ("imagefolder", "/data/isic", "drw", 0, 0.6),
        ("imagefolder", "/data/aptos", "erm", 0, 0.3),
        ("imagefolder", "/data/aptos", "focal", 0, 0.5),
        ("imagefolder", "/data/aptos", "drw", 0, 0.7),
        ("imagefolder", "/data/aptos", "ldam_drw", 0, 0.9)]  # only on aptos: not paired


@pytest.fixture
def results() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["config/dataset", "config/data_dir", "config/method",
                                       "config/seed", "test_acc"])


def test_method_means(results):
    m = method_means(results)
    erm = m[(m.dataset == "cifar10") & (m.method == "erm")].iloc[0]
    assert erm[["n", "test_acc", "test_acc_se"]].tolist() == pytest.approx([2, 0.1, 0.05])


def test_every_pair_r_and_slope(results):
    t = cross_dataset_correlation(results).set_index(["x", "y"])
    assert list(t.index) == [("cifar10", "imagefolder/aptos"), ("cifar10", "imagefolder/isic"),
                             ("imagefolder/aptos", "imagefolder/isic")]
    # cifar10 -> isic: dx = (-0.1, 0, 0.1) (erm, focal, drw), dy = (-0.1, 0.1, 0):
    #   Sxy = 0.01, Sxx = 0.02, Syy = 0.02 -> r = 0.5, slope = 0.5, intercept 0.6 - 0.5*0.2
    row = t.loc[("cifar10", "imagefolder/isic")]
    assert row[["n_methods", "pearson_r", "slope", "intercept"]].tolist() == pytest.approx(
        [3, 0.5, 0.5, 0.5])
    # cifar10 -> aptos: dy = (-0.2, 0, 0.2) = 2 dx: r = 1, slope 2
    assert t.loc[("cifar10", "imagefolder/aptos"), ["pearson_r", "slope"]].tolist() == \
        pytest.approx([1.0, 2.0])
    # aptos -> isic: dx = (-0.2, 0, 0.2), dy = (-0.1, 0.1, 0): Sxy = 0.02, Sxx = 0.08,
    #   Syy = 0.02 -> r = 0.02 / sqrt(0.0016) = 0.5, slope = 0.25
    assert t.loc[("imagefolder/aptos", "imagefolder/isic"), ["pearson_r", "slope"]].tolist() \
        == pytest.approx([0.5, 0.25])


def test_reference_dataset_only(results):
    t = cross_dataset_correlation(results, reference="cifar10")
    assert t["y"].tolist() == ["imagefolder/aptos", "imagefolder/isic"]
    with pytest.raises(UserError, match="reference dataset 'cifar100'"):
        cross_dataset_correlation(results, reference="cifar100")
    with pytest.raises(UserError, match="two datasets"):
        cross_dataset_correlation(results[results["config/dataset"] == "cifar10"])


def test_writes_figure_and_tables(results, tmp_path):
    paths = correlation_analysis(results, pd.DataFrame(), tmp_path, reference="cifar10")
    assert [p.name for p in paths] == ["cross_dataset.png", "cross_dataset.parquet",
                                       "cross_dataset.md", "cross_dataset_means.parquet",
                                       "cross_dataset_means.md"]
    assert "| cifar10 | imagefolder/isic | 3 | 0.5 |" in (tmp_path / "cross_dataset.md").read_text()
