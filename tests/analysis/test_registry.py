"""The analysis registry: every registered analysis draws its PNG and tables from one small
made-up study, `run_analysis` and `imbtrain analyze` re-draw them from a study folder."""

from __future__ import annotations

import doctest
import importlib
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imbtrain.analysis import ANALYSES, record_analyses, run_analysis
from imbtrain.analysis.registry import analysis_options
from imbtrain.cli import main
from imbtrain.errors import UserError

K = 5  # classes


def study() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A crossed study with every column some analysis reads: two datasets, two methods,
    three augmentations, two models, train x test ratios, two seeds; seeded noise."""
    rng = np.random.default_rng(0)
    rows, hist = [], []
    grid = itertools.product(["cifar10", "digits"], ["erm", "focal"],
                             ["none", "flip_crop", "autoaugment"], ["mlp", "cnn"],
                             [1.0, 0.1], [1.0, 0.1], [0, 1])
    for i, (data, method, aug, model, r, t, seed) in enumerate(grid):
        # the minority class keeps 10 samples, the majority grows as 10 / r (curation)
        counts = [round(10 / r * r ** (k / (K - 1))) for k in range(K)]
        acc = rng.uniform(0.3, 0.9, K)
        row = {"trial_id": f"t{i}", "trial_name": f"trial{i}", "status": "TERMINATED",
               "config/dataset": data, "config/method": method, "config/augment": aug,
               "config/model": model, "config/train_ratio": r, "config/test_ratio": t,
               "config/seed": seed, "config/sam": "none", "config/batch_size": 64,
               "config/sam_a_mode": "weighted", "config/sam_a_form": "inverse",
               "config/sam_rho": 0.05,
               "param_count": 1000.0 if model == "mlp" else 5000.0,
               "test_acc": float(acc.mean()), "test_bal_acc": float(acc.mean()),
               "test_minority_acc": float(acc[-1]), "test_majority_acc": float(acc[0]),
               "val_bal_acc": float(acc.mean() - 0.01),
               **{f"test_class_acc_{k}": float(a) for k, a in enumerate(acc)},
               "cdnv": rng.uniform(0.3, 0.5), "cdnv_minority": rng.uniform(0.2, 0.4),
               "ncc_acc_minority_train": rng.uniform(0.8, 1.0),
               "ncc_acc_test": rng.uniform(0.5, 0.8), "minority_margin": rng.uniform(0.1, 1),
               "train_counts": counts}
        rows.append(row)
        for epoch in (1, 2, 3):
            hist.append({"trial_id": row["trial_id"], "trial_name": row["trial_name"],
                         "epoch": epoch, "train_acc": min(1.0, 0.4 * epoch * (0.5 + r))})
    return pd.DataFrame(rows), pd.DataFrame(hist)


OPTIONS = {"sensitivity": {"knob": "augment", "baseline": "none"},
           "sweep": {"knob": "augment", "group": "method", "reference": "erm"}}


@pytest.fixture(scope="module")
def tables():
    return study()


def test_every_module_is_registered():
    kinds = {"sensitivity", "variance", "architecture", "correlation", "alignment", "curation",
             "collapse", "boundary", "comparison", "importance", "fitting"}
    assert kinds <= set(ANALYSES)


@pytest.mark.parametrize("kind", sorted(ANALYSES))
def test_each_analysis_writes_png_parquet_and_markdown(kind, tables, tmp_path):
    results, history = tables
    paths = ANALYSES[kind](results, history, tmp_path, **OPTIONS.get(kind, {}))
    suffixes = {p.suffix for p in paths}
    assert {".png", ".parquet", ".md"} <= suffixes, paths
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0 and p.parent == tmp_path
    for p in paths:
        if p.suffix == ".parquet":
            assert len(pd.read_parquet(p)) > 0
        if p.suffix == ".md":
            assert p.read_text().startswith("|")
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", sorted(ANALYSES))
def test_each_analysis_documents_itself(kind):
    fn = ANALYSES[kind]
    assert fn.__doc__ and fn.__doc__.strip().splitlines()[0].endswith(").")  # cites the paper
    assert "stem" in analysis_options(kind)  # every analysis can write under another name


@pytest.mark.parametrize("module", ["alignment", "architecture", "boundary", "collapse",
                                    "comparison", "correlation", "curation", "fitting",
                                    "importance", "variance", "sensitivity", "sweep"])
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"imbtrain.analysis.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def _study_dir(tmp_path: Path, tables) -> Path:
    results, history = tables
    d = tmp_path / "mystudy"
    d.mkdir()
    results.to_parquet(d / "results.parquet", index=False)
    history.to_parquet(d / "history.parquet", index=False)
    return d


def test_run_analysis_draws_what_is_asked(tables, tmp_path):
    d = _study_dir(tmp_path, tables)
    out = run_analysis(d, ["comparison", "sensitivity"],
                       {"metrics": ["test_acc"], "sensitivity.knob": "augment",
                        "sensitivity": {"baseline": "none"}}, log=lambda s: None)
    assert sorted(out) == ["comparison", "sensitivity"]
    assert (d / "comparison.png").is_file() and (d / "sensitivity.md").is_file()
    assert "test_bal_acc" not in pd.read_parquet(d / "comparison.parquet").columns


def test_run_analysis_without_kinds_skips_what_the_study_cannot_feed(tables, tmp_path):
    results, history = tables
    d = _study_dir(tmp_path, (results.drop(columns=["minority_margin"]), history))
    lines: list[str] = []
    out = run_analysis(d, log=lines.append)
    assert "boundary" not in out and any(s.startswith("skipped boundary") for s in lines)
    # sensitivity needs a knob: several vary here, so it is skipped with the reason
    assert any("skipped sensitivity" in s and "knob" in s for s in lines)
    assert {"comparison", "collapse", "alignment", "fitting", "importance"} <= set(out)


def test_recorded_analyses_are_redrawn_with_their_options(tables, tmp_path):
    d = _study_dir(tmp_path, tables)
    record_analyses(d, {"sensitivity": {"knob": "augment", "baseline": "none",
                                        "stem": "aug"},
                        "comparison": {"metrics": ("test_acc",), "baseline": "erm"}})
    out = run_analysis(d, log=lambda s: None)
    assert list(out) == ["sensitivity", "comparison"] and (d / "aug.png").is_file()
    with pytest.raises(UserError, match="unknown analysis kind"):
        record_analyses(d, {"sensitivity_curve": {}})


def test_bad_kinds_and_options_are_user_errors(tables, tmp_path):
    d = _study_dir(tmp_path, tables)
    with pytest.raises(UserError, match="unknown analysis kind.*nope"):
        run_analysis(d, ["nope"])
    with pytest.raises(UserError, match="taken by none"):
        run_analysis(d, ["comparison"], {"ddof": 0})
    with pytest.raises(UserError, match="analysis variance has no option metrics"):
        run_analysis(d, ["variance"], {"variance.metrics": ["x"]})
    with pytest.raises(UserError, match="analysis curation: .*no metric nope"):
        run_analysis(d, ["curation"], {"metrics": ["nope"]})
    with pytest.raises(UserError, match="no results.parquet"):
        run_analysis(tmp_path / "missing", ["comparison"])


def test_cli_analyze(tables, tmp_path, capsys):
    d = _study_dir(tmp_path, tables)
    out = tmp_path / "figs"
    code = main(["analyze", str(d), "--kind", "collapse", "--kind", "curation", "-o",
                 "collapse.measures=[cdnv]", "--out", str(out)])
    assert code == 0
    assert (out / "collapse.png").is_file() and (out / "curation.md").is_file()
    assert "collapse: wrote" in capsys.readouterr().out
    assert main(["analyze", str(d), "--kind", "variance", "-o", "ddof"]) == 2
    assert "not KEY=VALUE" in capsys.readouterr().err
    assert main(["analyze", "--list"]) == 0
    assert "importance:" in capsys.readouterr().out
