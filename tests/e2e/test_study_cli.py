"""`imbtrain study search_spaces/batch_size.yaml --smoke` as a user runs it: a real
subprocess, its output read line by line with the time each line came.

- the console: no Ray warning, banner, box or TensorBoard hint (Ray's own switches,
  imbtrain/tune/quiet.py), a line when each trial starts, and the smoke run's paragraph
  labelled as no evidence;
- the space's analyses: the sensitivity figure and table written by the study, and drawn
  again, the same, by `imbtrain analyze`;
- per train ratio: the closing lines name the best batch size at each ratio, `imbtrain
  export --train-ratio 0.1 --out best.yaml` writes it, `imbtrain train --config best.yaml`
  trains at r = 0.1, and a test-split metric is refused with exit status 2.

The study runs on the embedded digits (`--dataset digits`, 4x faster than mnist5k) and
without RAY_AUTH_MODE, as a user's shell has it, so the token-authentication warning would
show if it were not silenced. The heartbeat (imbtrain/study/console.py) prints the current
phase every 6 s of silence; how long the silences are here is printed, not asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from imbtrain.tune.loopback import LOOPBACK_ENV

ROOT = Path(__file__).resolve().parents[2]
SPACE = ROOT / "search_spaces" / "batch_size.yaml"
# What Ray, Tune and MLflow print on their own (Ray 2.60): none of it may reach the console.
NOISE = [
    "Token authentication", "RAY_AUTH_MODE",                      # the auth warning
    "Started a local Ray instance", "Connected to Ray cluster",   # ray.init's banner
    "Configuration for experiment", "Search algorithm", "╭", "│",  # Tune's box
    "View detailed results here", "TensorBoard", "tensorboard",    # Tune's hints
    "Trial status", "Current time:",                              # Tune's status tables
    "(raylet)", "(pid=", "(autoscaler", "file_system_monitor",     # log_to_driver
    " INFO ", " WARNING ", "INFO mlflow", "Wrote the latest version",  # loggers
]


def run_timed(cmd: list[str], env: dict, timeout: float) -> tuple[int, list, int]:
    """Run `cmd` in a process group of its own, stdout and stderr merged: (exit status, every
    line with the seconds since the start, the group id)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, env=env, cwd=ROOT, start_new_session=True)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.monotonic() - start, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        raise
    reader.join(30)
    lines.append((time.monotonic() - start, "<exit>"))
    return rc, lines, proc.pid


def group_left(pgid: int, within_s: float = 30.0) -> bool:
    """Whether any process of the process group `pgid` is still alive after `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.2)
    return True


def longest_silence(lines: list[tuple[float, str]]) -> tuple[float, str]:
    """The longest interval without a line, from the start to the exit, and the line that
    ended it."""
    gaps, last = [], 0.0
    for t, line in lines:
        gaps.append((t - last, line))
        last = t
    return max(gaps)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    env.update({"HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
                **LOOPBACK_ENV})
    cmd = [sys.executable, "-m", "imbtrain.cli", "study", str(SPACE), "--smoke",
           "--dataset", "digits", "--storage", str(tmp / "runs"),
           "--mlflow-uri", f"sqlite:///{tmp / 'mlflow.db'}"]
    rc, lines, pgid = run_timed(cmd, env, timeout=1500)
    return tmp, rc, lines, tmp / "runs" / "batch_size_smoke", pgid


def test_the_smoke_study_runs(smoke):
    _, rc, lines, _, _ = smoke
    assert rc == 0, "\n".join(line for _, line in lines[-40:])


def test_no_ray_process_outlives_the_command(smoke):
    # Every process Ray started (in the command's process group: GCS, raylet, its agents and
    # workers) ends with the command: the agents outlive a Ray that is not shut down.
    *_, pgid = smoke
    assert not group_left(pgid)


def test_no_ray_warning_banner_or_tensorboard_line(smoke):
    _, _, lines, _, _ = smoke
    noisy = [line for _, line in lines if any(n in line for n in NOISE)]
    assert not noisy, noisy


def test_a_line_when_each_trial_starts_and_the_progress_between(smoke):
    _, _, lines, _, _ = smoke
    # How long the console stays silent depends on the machine: printed for the record (-s),
    # never asserted (the heartbeat itself: tests/study/test_console.py).
    gap, after = longest_silence(lines)
    print(f"longest silence: {gap:.1f} s, ended by {after!r}")
    text = [line for _, line in lines]
    started = [line for line in text if re.fullmatch(r"\[[1-8]/8\] started digits_r(1|0\.1)_"
                                                     r"bs(32|64|128)(_bs(64|128)_steps)?_s0",
                                                     line)]
    assert [int(line[1]) for line in started] == list(range(1, 9))
    assert any(line.startswith("starting study batch_size_smoke (") for line in text[:1])
    assert any(re.match(r"Ray up in \d+ s: \d+ CPUs, 0 GPUs; 8 trials, up to \d at once",
                        line) for line in text)
    assert sum(" finished digits_r" in line for line in text) == 8


def test_the_smoke_paragraph_is_labelled(smoke):
    _, _, lines, _, _ = smoke
    paragraph = [line for _, line in lines if "Test accuracy relative to batch_size 128" in line]
    assert len(paragraph) == 1 and paragraph[0].startswith("smoke run: not evidence. ")


def test_the_closing_lines_give_the_best_at_each_train_ratio(smoke):
    _, _, lines, study, _ = smoke
    text = [line for _, line in lines]
    res = pd.read_parquet(study / "results.parquet")
    # The smoke section: four variants (two batch sizes at fixed epochs, two at fixed
    # steps), one seed each, at two train ratios.
    means = res.groupby(["config/train_ratio", "variant"], sort=False)["val_bal_acc"].mean()
    head = text.index("best configuration at each train ratio (a condition of the data, not "
                      "a knob), by mean val_bal_acc over seeds:")
    for i, ratio in enumerate((1.0, 0.1)):
        best = means.loc[ratio].idxmax()
        line = text[head + 1 + i]
        assert line.startswith(f"  r = {ratio:<3g}  variant {best} ("), line
        assert line.endswith(f"over 1 seed) -> {study / f'best_r{ratio:g}.yaml'}"), line


def test_the_study_draws_its_analyses_and_analyze_draws_them_again(smoke, capsys):
    from imbtrain.cli import main

    _, _, _, study, _ = smoke
    drawn = {p.name: p.read_bytes() for p in study.glob("sensitivity*")}
    assert sorted(drawn) == ["sensitivity.md", "sensitivity.parquet", "sensitivity.png"]
    assert yaml.safe_load((study / "analyses.yaml").read_text()) == {"sensitivity": {
        "knob": "batch_size", "baseline": 128, "metric": "test_acc",
        "title": "Percent change of test accuracy over batch size 128 (mean ± s.e. over "
                 "seeds)",
        "groups": {"fixed_epochs": ["bs32", "bs128"], "fixed_steps": ["bs64_steps",
                                                                     "bs128_steps"]}}}
    for name in drawn:
        (study / name).unlink()
    assert main(["analyze", str(study)]) == 0
    assert "sensitivity: wrote sensitivity.png, sensitivity.md, sensitivity.parquet" in (
        capsys.readouterr().out)
    again = {p.name: p.read_bytes() for p in study.glob("sensitivity*")}
    assert sorted(again) == sorted(drawn)
    for name in ("sensitivity.md", "sensitivity.parquet"):
        assert again[name] == drawn[name]  # the same analysis, the same table
    assert pd.read_parquet(study / "sensitivity.parquet")["batch_size"].tolist().count(32) == 2


def test_export_at_a_train_ratio_then_train_it(smoke, tmp_path, capsys):
    from imbtrain.cli import main
    from imbtrain.config import load_config

    _, _, _, study, _ = smoke
    out = tmp_path / "best.yaml"
    assert main(["export", str(study), "--train-ratio", "0.1", "--out", str(out)]) == 0
    res = pd.read_parquet(study / "results.parquet")
    at = res[res["config/train_ratio"] == 0.1]
    best_bs = at.groupby("config/batch_size")["val_bal_acc"].mean().idxmax()
    cfg = load_config(out)
    assert (cfg.batch_size, cfg.train_ratio) == (best_bs, 0.1)
    assert main(["train", "--config", str(out), "--out", str(tmp_path / "final")]) == 0
    metrics = json.loads((tmp_path / "final" / "metrics.json").read_text())
    counts = metrics["train_counts"]
    assert load_config(tmp_path / "final" / "config.yaml").train_ratio == 0.1
    assert min(counts) / max(counts) == pytest.approx(0.1, abs=0.02)  # trained imbalanced
    capsys.readouterr()
    assert main(["export", str(study), "--metric", "test_bal_acc", "--train-ratio", "0.1",
                 "--out", str(tmp_path / "no.yaml")]) == 2
    assert "model selection never uses the test split" in capsys.readouterr().err
    assert not (tmp_path / "no.yaml").exists()
