"""What `imbtrain train` prints before and during training: the data and the model it
loaded, and a progress bar within an epoch that takes a while.

    data mnist5k: 4,000 train images in 10 classes (counts 400 ... 8), 200 val, 800 test
      (loaded in 1.2 s); device cpu
    model cnn: 1,234,567 parameters

The bar (tqdm, on stderr) appears only on a terminal and only once an epoch has run for
`BAR_AFTER_S` seconds, and is cleared when the epoch ends, so fast epochs print their one
summary line and nothing else. Written to a file or a pipe (a job's log), a slow epoch
prints a plain line every `LINE_EVERY_S` seconds instead. Ray trials never get either: the
trainable passes no progress to the loop.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from imbtrain.models import count_parameters, create_model_for, model_trainer

BAR_AFTER_S = 3.0
LINE_EVERY_S = 30.0


def _counts(counts: list[int]) -> str:
    if len(counts) <= 5:
        return ", ".join(f"{c:,}" for c in counts)
    return f"{counts[0]:,} ... {counts[-1]:,}"


def data_summary(data, seconds: float, device: str) -> list[str]:
    """The lines that say what was loaded: splits, classes, train counts, the device; and a
    note when validation and test keep an imbalanced pool's own class distribution."""
    kind = "rows" if data.tabular_transform is not None else \
        "images" if data.is_image else "vectors"
    k = data.num_classes
    lines = [f"data {data.name}: {len(data.train_y):,} train {kind} in {k} classes (counts "
             f"{_counts(list(data.train_counts))}), {len(data.val_y):,} val, "
             f"{len(data.test_y):,} test (loaded in {seconds:.1f} s); device {device}"]
    test = [int(n) for n in data.test_y.bincount(minlength=k).tolist()]
    if max(test) > min(test):
        lines.append(f"note: the test split's classes hold {_counts(test)} samples (its pool's "
                     "own distribution, shaped by test_ratio); balanced accuracy weighs "
                     "every class alike")
    return lines


def model_summary(cfg, data) -> str:
    """One line: the model and its parameter count (trees: their rounds and depth)."""
    if model_trainer(cfg.model) == "xgboost":
        return (f"model {cfg.model}: boosted trees, {cfg.xgb_rounds} rounds of depth "
                f"{cfg.xgb_max_depth}")
    model = create_model_for(cfg, data)
    return f"model {cfg.model}: {count_parameters(model):,} parameters"


class EpochProgress:
    """`progress(step, steps)` for the training loop: a bar within slow epochs (above)."""

    def __init__(self, stream: TextIO | None = None, bar_after_s: float = BAR_AFTER_S,
                 line_every_s: float = LINE_EVERY_S) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar_after_s, self.line_every_s = bar_after_s, line_every_s
        self.epoch, self.bar = 0, None
        self.start = self.last_line = 0.0

    def __call__(self, step: int, steps: int) -> None:
        now = time.monotonic()
        if step == 1:
            self.epoch += 1
            self.start = self.last_line = now
        if self.tty:
            self._bar(step, steps, now)
        elif now - self.last_line >= self.line_every_s:
            self.last_line = now
            print(f"  epoch {self.epoch}: step {step:,}/{steps:,} "
                  f"({now - self.start:.0f} s)", file=self.stream, flush=True)

    def _bar(self, step: int, steps: int, now: float) -> None:
        if self.bar is None and now - self.start >= self.bar_after_s and step < steps:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, initial=step, desc=f"epoch {self.epoch}",
                            unit="step", leave=False, file=self.stream, dynamic_ncols=True)
        elif self.bar is not None:
            self.bar.update(step - self.bar.n)
        if step >= steps and self.bar is not None:
            self.bar.close()
            self.bar = None
