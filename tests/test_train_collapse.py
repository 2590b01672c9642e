"""The neural-collapse pass on a per-class sample of the train split (`collapse_per_class`):
the whole split where no class has more (the same numbers as a full pass), else a seeded
sample of `collapse_per_class` a class, whose numbers are those of the measures on exactly
those samples."""

from __future__ import annotations

import torch

from imbtrain.config import TrainConfig
from imbtrain.metrics import neural_collapse
from imbtrain.train import Run, collapse_metrics, collapse_sample, eval_passes, train

COLLAPSE = ("cdnv", "cdnv_minority", "ncc_acc_minority_train", "ncc_acc_test")
# digits at r = 0.1: train counts 119 ... 12 (exp profile)
BASE = dict(dataset="digits", model="cnn", epochs=1, train_ratio=0.1, batch_size=64,
            device="cpu")


def quiet(line: str) -> None:
    pass


def collapse(cfg: TrainConfig) -> dict[str, float]:
    return {k: train(cfg, log=quiet).metrics[k] for k in COLLAPSE}


def test_a_sample_that_is_the_whole_split_gives_the_full_pass_numbers():
    torch.set_num_threads(1)
    full = collapse(TrainConfig(**BASE, collapse_per_class=0))
    assert collapse(TrainConfig(**BASE, collapse_per_class=119)) == full  # the largest class
    assert collapse(TrainConfig(**BASE, collapse_per_class=10_000)) == full
    assert all(v == v for v in full.values())  # numbers, not NaN


def test_the_sample_keeps_at_most_the_cap_a_class_seeded():
    torch.set_num_threads(1)
    cfg = TrainConfig(**BASE, collapse_per_class=20)
    run = Run(cfg, None, quiet)
    counts = torch.bincount(run.train_y, minlength=10).tolist()
    x, y = collapse_sample(run)
    assert torch.bincount(y, minlength=10).tolist() == [min(c, 20) for c in counts]
    x2, y2 = collapse_sample(Run(cfg, None, quiet))
    assert torch.equal(x, x2) and torch.equal(y, y2)  # same seed, same sample
    other = collapse_sample(Run(cfg.replace(seed=1), None, quiet))[0]
    assert not torch.equal(x, other)
    whole = collapse_sample(Run(cfg.replace(collapse_per_class=0), None, quiet))
    assert whole[0] is not None and len(whole[1]) == sum(counts)


def test_the_sampled_numbers_are_the_measures_on_the_sample():
    torch.set_num_threads(1)
    run = Run(TrainConfig(**BASE, collapse_per_class=15), None, quiet)
    x, y = collapse_sample(run)
    feats = torch.cat([f for f, _ in eval_passes(run, x, head=False)]).float()
    test_x, test_y = run.splits["test"]
    test_feats = torch.cat([f for f, _ in eval_passes(run, test_x, head=False)]).float()
    expected = neural_collapse(feats, y, test_feats, test_y, run.counts)
    assert collapse_metrics(run) == expected
