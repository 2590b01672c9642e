"""Augmentation throughput next to the training step it feeds.

For each policy, images/s of `Augmentation.train_views` on uint8 batches of 128, CIFAR-sized
(3, 32, 32) and MNIST-sized (1, 28, 28), measured side by side with the forward+backward
images/s of a ResNet-20 (imbtrain's model registry) on the same batch, in one run, each from
its fastest call. ratio = augmentation images/s / model images/s: above 1 the augmentation
costs less than the step it feeds (its share of a step is 1 / (1 + ratio)). "per-image" rows
run torchvision's own v2 transform once per image (the reference path), "batched" rows
imbtrain's per-image draws applied batch-wise.

    python benchmarks/augment_throughput.py                 # CPU, 2 threads, ~1-2 minutes
    python benchmarks/augment_throughput.py --device cuda   # on a GPU
    python benchmarks/augment_throughput.py --quick         # seconds: checks the script
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from types import SimpleNamespace

import torch
import torchvision
from common import cpu_name

from imbtrain.augment import AUGMENTATIONS, build_augmentation

SHAPES = {"CIFAR 3x32x32": (3, 32, 32), "MNIST 1x28x28": (1, 28, 28)}
PER_IMAGE = ("autoaugment", "trivialaugment", "randaugment", "augmix")


# ----------------------------------------------------------------------------- setup


def images_per_second(fn, batch: int, device: torch.device, min_time: float, reps: int = 3):
    """batch / the fastest of repeated fn() calls (after one warm-up call).

    The fastest call, not the mean: on a shared machine (the 2 cores here serve several
    people) a call that lost its core says nothing about the code. Model and augmentation are
    measured the same way, so their ratio stays fair.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    times, start = [], time.perf_counter()
    while len(times) < reps or time.perf_counter() - start < min_time:
        tick = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - tick)
    return batch / min(times)


def load_average() -> str:
    try:
        return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "load average n/a"


def make_model(shape: tuple[int, ...], device: torch.device):
    """ResNet-20 from the registry (He et al. 2016, CIFAR variant, 0.27 M parameters)."""
    from imbtrain.models import create_model

    return create_model("resnet20", shape, 10).to(device), "resnet20 (imbtrain.models)"


# ----------------------------------------------------------------------------- measures


def model_rate(shape, batch, device, min_time):
    model, label = make_model(shape, device)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(10, (batch,), device=device)

    def step():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()

    return images_per_second(step, batch, device, min_time, reps=4), label


def augment_rows(shape, batch, device, min_time):
    """(augmentation, implementation) -> images/s of train_views (of mix for the mix rows)."""
    data = SimpleNamespace(name="bench", is_image=True, input_shape=shape,
                           mean=(0.5,) * shape[0], std=(0.25,) * shape[0], num_classes=10)
    x = torch.randint(0, 256, (batch, *shape), dtype=torch.uint8, device=device)
    t = torch.eye(10, device=device)[torch.randint(10, (batch,), device=device)]

    def rate(aug, mixing=False):
        fn = (lambda: aug.mix(aug.eval_view(x), t)) if mixing else (lambda: aug.train_views(x))
        return images_per_second(fn, batch, device, min_time, reps=10)

    def build(augment="none", mix="none", random_erasing=0.0):
        cfg = SimpleNamespace(augment=augment, mix=mix, mix_alpha=1.0,
                              random_erasing=random_erasing)
        return build_augmentation(cfg, data, device)

    rows = {}
    for name in AUGMENTATIONS:
        aug = build(name)
        rows[name, "batched"] = rate(aug)
        if name in PER_IMAGE:
            aug.policy = AUGMENTATIONS[name](shape[1], shape[2], batched=False)
            rows[name, "per-image"] = rate(aug)
    rows["random_erasing=0.25", "batched"] = rate(build(random_erasing=0.25))
    for mix in ("cutmix", "mixup"):
        rows[f"mix={mix} (+convert)", "batched"] = rate(build(mix=mix), mixing=True)
    return rows


# ----------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=0.4, help="seconds per measure")
    parser.add_argument("--quick", action="store_true",
                        help="a check of the script: batches of 8, 0.01 s a measure")
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.min_time = 8, 0.01
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"# augment throughput, batch {args.batch_size}, {args.threads} CPU threads, "
          f"{machine}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"{datetime.date.today().isoformat()}, {load_average()}")
    model, rows = {}, {}
    for label, shape in SHAPES.items():
        model[label] = model_rate(shape, args.batch_size, device, 2 * args.min_time)
        rows[label] = augment_rows(shape, args.batch_size, device, args.min_time)
    labels = list(SHAPES)
    head = f"{'augmentation':<22}{'impl':<11}" + "".join(
        f"{lab + ' img/s':>22}{'ratio':>8}" for lab in labels)
    print(head)
    print("-" * len(head))
    model_name = model[labels[0]][1]
    print(f"{model_name + ' fwd+bwd':<33}" + "".join(
        f"{model[lab][0]:>22.0f}{'1.00':>8}" for lab in labels))
    for key in rows[labels[0]]:
        print(f"{key[0]:<22}{key[1]:<11}" + "".join(
            f"{rows[lab][key]:>22.0f}{rows[lab][key] / model[lab][0]:>8.2f}" for lab in labels))
    print(f"# images/s from the fastest of repeated calls; ratio = augmentation / model; "
          f"{load_average()} at the end")


if __name__ == "__main__":
    main()
