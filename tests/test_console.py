"""What `imbtrain train` prints before and during training (`imbtrain.console`): the data
and model lines, worked out by hand from the synthetic set, and the progress within an epoch
(a bar on a terminal, plain lines in a log, nothing for fast epochs)."""

from __future__ import annotations

import io
import re

import pytest

from imbtrain.cli import main
from imbtrain.config import TrainConfig
from imbtrain.console import EpochProgress, data_summary, model_summary
from imbtrain.data import build_data

# 4 classes of 40 train-pool and max(2, 40 // 4) = 10 test-pool samples; exp profile at
# r = 0.1 keeps 40, 18, 8, 4 train samples; val takes round(0.2 * 10) = 2 a class (8), the
# test split the other 8 a class (32).
SYN = dict(dataset="synthetic", synthetic_shape="1x8x8", synthetic_classes=4,
           synthetic_samples=40, train_ratio=0.1)


def test_the_data_line_says_what_was_loaded():
    data = build_data(TrainConfig(**SYN))
    assert data_summary(data, 1.24, "cpu") == [
        "data synthetic: 70 train images in 4 classes (counts 40, 18, 8, 4), 8 val, 32 test "
        "(loaded in 1.2 s); device cpu"]


def test_an_imbalanced_test_split_gets_a_note_and_long_counts_are_shortened():
    # test_ratio=0.1 on 8 a class: 8, 3, 1, 1 (8 * 0.1 ** (i / 3), as the train profile)
    data = build_data(TrainConfig(**SYN, test_ratio=0.1))
    [line, note] = data_summary(data, 0.0, "cuda")
    test = data.test_y.bincount(minlength=4).tolist()
    assert test[0] == 8 and test[-1] < test[0]
    assert note == (f"note: the test split's classes hold {', '.join(map(str, test))} "
                    "samples (its pool's own distribution, shaped by test_ratio); balanced "
                    "accuracy weighs every class alike")
    ten = build_data(TrainConfig(**{**SYN, "synthetic_classes": 10}))
    assert "(counts 40 ... 4)" in data_summary(ten, 0.0, "cpu")[0]


def test_the_model_line_counts_parameters():
    data = build_data(TrainConfig(**SYN))
    # mlp, width 256, depth 2, on 64 inputs and 4 classes:
    # (64 * 256 + 256) + (256 * 256 + 256) + (256 * 4 + 4) = 16,640 + 65,792 + 1,028
    assert model_summary(TrainConfig(**SYN, model="mlp"), data) == \
        "model mlp: 83,460 parameters"
    assert model_summary(TrainConfig(**SYN, model="xgboost", xgb_rounds=7, xgb_max_depth=3),
                         data) == "model xgboost: boosted trees, 7 rounds of depth 3"


def test_imbtrain_train_prints_the_data_and_model_before_the_first_epoch(tmp_path, capsys):
    args = [f"{k}={v}" for k, v in SYN.items()]
    assert main(["train", *args, "model=mlp", "epochs=1", "--out", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("data synthetic: 70 train images in 4 classes (counts 40, "
                               "18, 8, 4), 8 val, 32 test (loaded in ")
    assert lines[0].endswith("; device cpu")
    assert lines[1] == "model mlp: 83,460 parameters"
    assert lines[2].startswith("epoch   1  loss ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def epochs(progress: EpochProgress, n: int, steps: int) -> None:
    for _ in range(n):
        for step in range(1, steps + 1):
            progress(step, steps)


def test_a_log_gets_plain_lines_only_when_an_epoch_is_slow():
    log = io.StringIO()
    epochs(EpochProgress(log, line_every_s=0.0), 2, 3)  # every step is "slow"
    lines = log.getvalue().splitlines()
    assert [re.sub(r"\(\d+ s\)$", "(T s)", line) for line in lines] == [
        f"  epoch {e}: step {s}/3 (T s)" for e in (1, 2) for s in (1, 2, 3)]
    quiet = io.StringIO()
    epochs(EpochProgress(quiet, line_every_s=1e9), 2, 3)  # fast epochs: nothing
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("after, shown", [(0.0, True), (1e9, False)])
def test_a_terminal_gets_a_bar_that_is_cleared_at_the_end_of_the_epoch(after, shown):
    tty = Terminal()
    progress = EpochProgress(tty, bar_after_s=after)
    epochs(progress, 2, 4)
    assert ("epoch 2" in tty.getvalue()) is shown and ("epoch 1" in tty.getvalue()) is shown
    assert progress.bar is None  # closed when the epoch's last step ran
    assert "step 1/4" not in tty.getvalue()  # no log lines on a terminal
