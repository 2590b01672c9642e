"""The training loop: schedules, determinism, exact resume, EMA, the CLI entry point."""

import json
import math

import pandas as pd
import pytest
import torch

from imbtrain.cli import main
from imbtrain.config import TrainConfig
from imbtrain.train import lr_factor, train

TINY = dict(dataset="synthetic", synthetic_shape="1x8x8", synthetic_classes=4,
            synthetic_samples=40, train_ratio=0.1, model="cnn", epochs=3, batch_size=16,
            lr=0.05)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def test_lr_schedules_by_hand():
    cfg = TrainConfig(epochs=10, warmup_epochs=2, schedule="cosine")
    # 5 steps an epoch: warm-up over 10 steps, linear: step 0 -> 1/10, step 9 -> 1.
    assert lr_factor(cfg, 0, 5) == pytest.approx(0.1)
    assert lr_factor(cfg, 9, 5) == pytest.approx(1.0)
    # Cosine over the 40 remaining steps: halfway (step 30) gives 0.5.
    assert lr_factor(cfg, 30, 5) == pytest.approx(0.5)
    assert lr_factor(cfg, 50, 5) == pytest.approx(0.0)
    step = TrainConfig(epochs=10, schedule="step")
    assert [lr_factor(step, s, 10) for s in (0, 49, 50, 75, 99)] == pytest.approx(
        [1, 1, 0.1, 0.01, 0.01])
    assert lr_factor(TrainConfig(schedule="constant"), 123, 10) == 1.0


def test_metrics_of_every_epoch_reported():
    seen = []
    result = train(TrainConfig(**TINY), report=lambda m, s: seen.append((m, s)), log=lambda s: 0)
    assert [m["epoch"] for m, _ in seen] == [1, 2, 3]
    for key in ("train_loss", "val_bal_acc", "test_acc", "test_minority_acc", "test_few_acc",
                "lr", "epoch_time_s", "samples_per_s", "test_class_acc_3", "fwd_bwd_passes"):
        assert key in seen[-1][0], key
    # counts [40, 19, 8, 4] at r = 0.1: floor(40 * 0.1 ** (i / 3)) -> 40, 18, 8, 4
    assert result.train_counts == [40, 18, 8, 4]
    # one forward/backward a step for ERM: ceil(70 / 16) = 5 steps
    assert seen[0][0]["fwd_bwd_passes"] == 5
    for key in ("cdnv", "cdnv_minority", "ncc_acc_minority_train", "ncc_acc_test"):
        assert key in result.metrics


def test_same_seed_same_metrics_on_cpu():
    a = train(TrainConfig(**TINY), log=lambda s: 0).metrics
    b = train(TrainConfig(**TINY), log=lambda s: 0).metrics
    keys = [k for k in a if not k.endswith("_time_s") and k != "samples_per_s"]
    assert {k: a[k] for k in keys} == pytest.approx({k: b[k] for k in keys}, nan_ok=True)
    c = train(TrainConfig(**{**TINY, "seed": 1}), log=lambda s: 0).metrics
    assert c["train_loss"] != a["train_loss"]


@pytest.mark.parametrize("extra", [
    {},
    {"ema_decay": 0.9, "augment": "flip_crop", "mix": "mixup", "warmup_epochs": 1},
])
def test_interrupted_and_resumed_equals_uninterrupted(extra):
    cfg = TrainConfig(**{**TINY, **extra})
    full = train(cfg, log=lambda s: 0)
    states = []
    train(cfg.replace(), report=lambda m, s: states.append(s), log=lambda s: 0)
    saved = states[0]  # the run "crashed" after epoch 1; resume from its checkpoint
    resumed = train(cfg, resume=saved, log=lambda s: 0)
    for k, v in full.metrics.items():
        if k.endswith("_time_s") or k == "samples_per_s":
            continue
        assert resumed.metrics[k] == pytest.approx(v, nan_ok=True, abs=1e-6), k
    pairs = zip(full.model.state_dict().values(), resumed.model.state_dict().values(),
                strict=True)
    for p, q in pairs:
        assert torch.equal(p, q)


def test_ema_model_is_evaluated():
    cfg = TrainConfig(**{**TINY, "ema_decay": 0.5, "epochs": 1})
    result = train(cfg, log=lambda s: 0)
    # The returned model is the EMA copy, not the raw weights.
    assert type(result.model).__name__ == "ImbModel"


def test_cli_train_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    args = [f"{k}={v}" for k, v in TINY.items()] + ["epochs=1", "--out", str(out)]
    assert main(["train", *args]) == 0
    printed = capsys.readouterr().out
    for key in ("test_acc", "test_bal_acc", "test_minority_acc", "test_majority_acc",
                "test_few_acc", "test_med_acc", "test_many_acc"):
        assert key in printed
    assert {p.name for p in out.iterdir()} == {"config.yaml", "run.yaml", "metrics.json",
                                               "history.parquet", "model.pt", "model.yaml"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_counts"] == [40, 18, 8, 4]
    assert len(pd.read_parquet(out / "history.parquet")) == 1
    state = torch.load(out / "model.pt", weights_only=True)
    assert any(k.startswith("head.") for k in state)


@pytest.mark.parametrize("args,message", [
    (["batchsize=3"], "unknown config key 'batchsize'"),
    (["train_ratio=0"], "train_ratio=0 is out of range"),
    (["train_ratio=1.5"], "train_ratio=1.5 is out of range"),
    (["dataset=cifar10", "data_dir=/nonexistent/cifar"], "/nonexistent/cifar"),
    (["dataset=imagenet"], "dataset='imagenet' is not allowed"),
    (["model=resnet1000"], "resnet1000"),
])
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["train", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_final_metrics_are_finite():
    result = train(TrainConfig(**{**TINY, "epochs": 1}), log=lambda s: 0)
    assert math.isfinite(result.metrics["test_acc"])
