"""`imbtrain analyze` on a study whose space declared its analyses (study.yaml's `analyses`):
those are drawn, one that would be trivial is skipped with its reason, and `--kind` still
draws it. A hand-made study folder; no Ray."""

from __future__ import annotations

import math

import pandas as pd
import yaml

from imbtrain.analysis import run_analysis
from imbtrain.analysis.registry import fits


def folder(tmp_path, analyses) -> tuple:
    """Batch size 16 vs 64 at r = 1 and 0.1, two seeds; test_acc chosen so that the percent
    change of bs 16 over bs 64 is, per seed, r = 1: 0.5/0.4 - 1 = 25%, 0.6/0.5 - 1 = 20%
    (mean 22.5%); r = 0.1: 0.3/0.2 - 1 = 50%, 0.2/0.25 - 1 = -20% (mean 15%)."""
    acc = {(1.0, 16, 0): 0.5, (1.0, 16, 1): 0.6, (1.0, 64, 0): 0.4, (1.0, 64, 1): 0.5,
           (0.1, 16, 0): 0.3, (0.1, 16, 1): 0.2, (0.1, 64, 0): 0.2, (0.1, 64, 1): 0.25}
    results = pd.DataFrame([
        {"trial_id": f"t{i}", "trial_name": f"t{i}", "status": "TERMINATED",
         "config/train_ratio": r, "config/batch_size": bs, "config/seed": s,
         "val_bal_acc": a, "test_acc": a} for i, ((r, bs, s), a) in enumerate(acc.items())])
    history = pd.DataFrame({"trial_id": results["trial_id"], "epoch": 1,
                            "train_acc": 0.5, "test_acc": results["test_acc"]})
    results.to_parquet(tmp_path / "results.parquet")
    history.to_parquet(tmp_path / "history.parquet")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({"metric": "val_bal_acc",
                                                          "analyses": analyses}))
    return results, history


def test_the_declared_analyses_are_drawn_and_a_trivial_one_skipped(tmp_path):
    folder(tmp_path, {"sensitivity": {"knob": "batch_size", "baseline": 64},
                      "importance": {}})
    said: list[str] = []
    written = run_analysis(tmp_path, log=said.append)
    assert list(written) == ["sensitivity"]
    assert said[0] == ("skipped importance: importance ranks knobs against each other; the "
                       "study varies only batch_size")
    table = pd.read_parquet(tmp_path / "sensitivity.parquet")
    got = table.set_index(["train_ratio", "batch_size"])["pct_change"]
    assert math.isclose(got[(1.0, 16)], 22.5) and math.isclose(got[(0.1, 16)], 15.0)


def test_asked_for_by_kind_a_trivial_analysis_is_still_drawn(tmp_path):
    folder(tmp_path, {"sensitivity": {"knob": "batch_size", "baseline": 64}})
    written = run_analysis(tmp_path, ["importance"], log=lambda line: None)
    assert sorted(p.name for p in written["importance"]) == [
        "importance.md", "importance.parquet", "importance.png"]


def test_the_fits_rules(tmp_path):
    results, history = folder(tmp_path, {})
    assert fits("sensitivity", results, history, {}) is None  # no rule: always fits
    assert fits("fitting", results, history, {}) == (
        "fitting draws train_acc over epochs; history.parquet has it for 1 epoch(s)")
    two = pd.concat([history, history.assign(epoch=2)])
    assert fits("fitting", results, two, {}) is None
    crossed = results.assign(**{"config/lr": [0.1, 0.2] * 4})
    assert fits("importance", crossed, history, {}) is None
