"""The loop's fast paths: no host round trip per step on CUDA, channels-last on CPU, the
collapse pass reusing the final test features (benchmarks/RESULTS.md)."""

import pytest
import torch

from imbtrain.config import TrainConfig
from imbtrain.methods.sampling import epoch_indices
from imbtrain.train import Run, epoch_steps, train

TINY = dict(dataset="synthetic", synthetic_shape="3x8x8", synthetic_classes=4,
            synthetic_samples=40, train_ratio=0.1, model="resnet8", epochs=2, batch_size=16,
            lr=0.05)
COLLAPSE = ("cdnv", "cdnv_minority", "ncc_acc_minority_train", "ncc_acc_test")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def quiet(line: str) -> None:
    pass


def test_collapse_with_kept_test_features_equals_a_fresh_pass():
    cfg = TrainConfig(**TINY)
    states = []
    full = train(cfg, report=lambda m, s: states.append(s), log=quiet)
    # Resumed after its last epoch, no evaluation runs, so the collapse pass computes the
    # test features itself: the same numbers as the features kept by the final evaluation.
    again = train(cfg, resume=states[-1], log=quiet)
    assert {k: again.metrics[k] for k in COLLAPSE} == {k: full.metrics[k] for k in COLLAPSE}


def test_channels_last_on_cpu_is_used_deterministic_and_close_to_nchw():
    cfg = TrainConfig(**{**TINY, "channels_last": True})
    run = Run(cfg, None, log=quiet)
    conv = next(m for m in run.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    a, b = train(cfg, log=quiet).metrics, train(cfg, log=quiet).metrics
    nchw = train(cfg.replace(channels_last=False), log=quiet).metrics
    assert a["train_loss"] == b["train_loss"] and a["cdnv"] == b["cdnv"]
    assert a["train_loss"] == pytest.approx(nchw["train_loss"], rel=1e-3)  # rounding only


CUDA_CASES = [
    {},
    {"augment": "flip_crop", "mix": "cutmix", "random_erasing": 0.25, "ema_decay": 0.9},
    {"augment": "flip_crop", "mix": "mixup", "smoothing": "class", "precision": "bf16",
     "channels_last": True},
    {"ssl": "vicreg", "augment": "flip_crop", "method": "drw", "drw_epoch": 0},
    {"sam": "sam"},
    {"method": "resample"},
    {"method": "focal"},
    # SAM-A's radii and LDAM's margins live on the device (built there once), so a step copies
    # nothing from the host (a CPU tensor moved to the device each step waits for the stream).
    {"sam": "sam_a"},
    {"method": "ldam_drw"},
    {"method": "ldam_drw", "drw_epoch": 0, "sam": "sam_a", "sam_a_form": "paper_eq"},
]


def test_per_step_tensors_are_made_on_the_device_once():
    # The CPU half of the CUDA check below: what a step reads (SAM-A's radii, LDAM's margins,
    # the class weights) is on the run's device and is the same tensor step after step, so no
    # step makes or moves one.
    cfg = TrainConfig(**{**TINY, "method": "ldam_drw", "drw_epoch": 1, "sam": "sam_a"})
    run = Run(cfg, None, log=quiet)
    radii = run.stepper.radii
    assert radii.device == run.device
    assert run.class_weights() is None  # plain stage
    epoch_steps(run, epoch_indices(run.train_y, "shuffle"), None)
    margins = run.method.margins
    assert margins.device == run.device
    run.epoch = 1
    weights = run.class_weights()
    assert weights.device == run.device and weights is run.class_weights()
    epoch_steps(run, epoch_indices(run.train_y, "shuffle"), weights)
    assert run.stepper.radii is radii and run.method.margins is margins
    run.epoch = 2
    assert run.class_weights() is weights  # unchanged weights are not moved again


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("extra", CUDA_CASES)
def test_a_cuda_epoch_has_no_host_sync_between_its_steps(extra):
    cfg = TrainConfig(**{**TINY, "device": "cuda", "synthetic_samples": 96, **extra})
    run = Run(cfg, None, log=quiet)

    def plan():  # once an epoch (as train_epoch does): it may sync, the steps may not
        return epoch_indices(run.train_y, run.method.sampling(run.epoch)), run.class_weights()

    epoch_steps(run, *plan())  # warm-up: cuBLAS/cuDNN handles and caches may sync once
    run.epoch += 1
    idx, weights = plan()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
    try:
        conf, loss_sum, seen = epoch_steps(run, idx, weights)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert int(conf.sum()) == seen and torch.isfinite(loss_sum)
