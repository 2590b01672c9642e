"""The end of a study (imbtrain.study.script): the closing lines per train ratio, a smoke
run's paragraph labelled as no evidence, and the space's analyses drawn or skipped with a
reason. Tables made by hand; no Ray."""

from __future__ import annotations

import math

import pandas as pd
import yaml

from imbtrain.study.results import StudyResult
from imbtrain.study.script import (
    FINDINGS_FILE,
    SMOKE_LABEL,
    Outcome,
    draw,
    print_summary,
    report,
    write_findings,
)

NAN = math.nan


def results(rows) -> pd.DataFrame:
    """(ratio, batch size, seed, val_bal_acc, test_acc, status) rows as results.parquet."""
    return pd.DataFrame([
        {"trial_id": f"t{i}", "trial_name": f"r{r:g}_bs{bs}_s{s}", "status": st,
         "error": "boom" if st == "ERROR" else None, "config/train_ratio": r,
         "config/batch_size": bs, "config/seed": s, "val_bal_acc": v, "test_acc": t}
        for i, (r, bs, s, v, t, st) in enumerate(rows)])


# At r = 1: bs 16 has mean (0.7 + 0.8) / 2 = 0.75 over its two seeds, bs 64 (0.9 + 0.5) / 2
# = 0.70, so 16 wins although 64 has the best single trial. At r = 0.1: bs 16 (0.3 + 0.5) / 2
# = 0.40, bs 64 (0.6 + 0.4) / 2 = 0.50, so 64 wins. At r = 0.02 the one trial failed.
ROWS = [
    (1.0, 16, 0, 0.7, 0.50, "TERMINATED"), (1.0, 16, 1, 0.8, 0.60, "TERMINATED"),
    (1.0, 64, 0, 0.9, 0.40, "TERMINATED"), (1.0, 64, 1, 0.5, 0.50, "TERMINATED"),
    (0.1, 16, 0, 0.3, 0.30, "TERMINATED"), (0.1, 16, 1, 0.5, 0.20, "TERMINATED"),
    (0.1, 64, 0, 0.6, 0.20, "TERMINATED"), (0.1, 64, 1, 0.4, 0.25, "TERMINATED"),
    (0.02, 16, 0, NAN, NAN, "ERROR"),
]


def study(tmp_path, rows=ROWS) -> StudyResult:
    path = tmp_path / "bs"
    path.mkdir(exist_ok=True)
    return StudyResult(path, results(rows), pd.DataFrame(), None, "val_bal_acc", "max", None,
                       None)


def test_the_closing_lines_give_the_best_at_each_train_ratio(tmp_path, capsys):
    result = study(tmp_path)
    assert print_summary(result) == 1  # a trial failed
    p = result.path
    assert capsys.readouterr().out.splitlines() == [
        f"study bs: 8/9 trials finished; files in {p}",
        "best configuration at each train ratio (a condition of the data, not a knob), by "
        "mean val_bal_acc over seeds:",
        f"  r = 1     batch_size=16 (val_bal_acc 0.7500 over 2 seeds) -> {p}/best_r1.yaml",
        f"  r = 0.1   batch_size=64 (val_bal_acc 0.5000 over 2 seeds) -> {p}/best_r0.1.yaml",
        "  r = 0.02  no trial finished",
        "FAILED r0.02_bs16_s0 (t8): boom",
    ]


def test_a_study_of_one_train_ratio_names_best_yaml(tmp_path, capsys):
    result = study(tmp_path, ROWS[:4])
    assert print_summary(result) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == ("best configuration by mean val_bal_acc over seeds: batch_size=16 "
                        f"(val_bal_acc 0.7500 over 2 seeds) -> {result.path}/best.yaml")


def test_best_per_ratio_of_a_study_result(tmp_path):
    best = study(tmp_path).best_per_ratio
    assert list(best) == [1.0, 0.1]  # 0.02: no finished trial
    assert (best[1.0].config.batch_size, best[1.0].mean, best[1.0].n) == (16, 0.75, 2)
    assert best[1.0].trial_ids == ["t1", "t0"]  # best first: 0.8, then 0.7
    assert (best[0.1].config.batch_size, best[0.1].mean, best[0.1].trial_ids) == (
        64, 0.5, ["t6", "t7"])
    assert best[0.1].config.train_ratio == 0.1 and best[0.1].config.seed == 0


def test_a_smoke_run_labels_its_paragraph(tmp_path, capsys):
    outcome = Outcome(table="| a |\n|---|\n| 1 |\n", finding="inverse wins over paper_eq.")
    path = write_findings(outcome, tmp_path, smoke=True)
    assert path == tmp_path / FINDINGS_FILE
    assert path.read_text() == ("smoke run: not evidence. inverse wins over paper_eq.\n\n"
                                "| a |\n|---|\n| 1 |\n")
    report(outcome, tmp_path, [path], smoke=True)
    out = capsys.readouterr().out.splitlines()
    assert out == ["", "| a |", "|---|", "| 1 |",
                   f"{SMOKE_LABEL}. inverse wins over paper_eq.",
                   f"wrote findings.md in {tmp_path}"]
    assert write_findings(outcome, tmp_path).read_text().startswith("inverse wins")  # a full run


def test_draw_skips_what_a_study_cannot_feed_and_records_what_it_drew(tmp_path):
    result = study(tmp_path, ROWS[:8])
    said: list[str] = []
    drawn = draw(result, {"sensitivity": {"knob": "batch_size", "baseline": 64},
                          "importance": {}, "fitting": {}}, log=said.append)
    assert said == [
        "analysis importance not drawn: importance ranks knobs against each other; the study "
        "varies only batch_size",
        "analysis fitting not drawn: fitting draws train_acc over epochs; history.parquet has "
        "it for 0 epoch(s)",
    ]
    assert set(drawn.skipped) == {"importance", "fitting"}
    assert sorted(f.name for f in drawn.files["sensitivity"]) == [
        "sensitivity.md", "sensitivity.parquet", "sensitivity.png"]
    # analyses.yaml holds only what was drawn, for `imbtrain analyze` to draw again
    assert yaml.safe_load((result.path / "analyses.yaml").read_text()) == {
        "sensitivity": {"knob": "batch_size", "baseline": 64}}
    # percent change of test_acc over bs 64, same ratio and seed, mean over the two seeds:
    # r = 1: (0.5/0.4 - 1, 0.6/0.5 - 1) = (25%, 20%) -> 22.5%;
    # r = 0.1: (0.3/0.2 - 1, 0.2/0.25 - 1) = (50%, -20%) -> 15%
    table = drawn.table("sensitivity")
    got = table.set_index(["train_ratio", "batch_size"])["pct_change"]
    assert math.isclose(got[(1.0, 16)], 22.5) and math.isclose(got[(0.1, 16)], 15.0)
    assert got[(1.0, 64)] == 0.0
