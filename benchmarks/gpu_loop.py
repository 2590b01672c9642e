"""Images/s of imbtrain's training loop on generated CIFAR-shaped data, on a GPU.

Sections (each prints its own table; `--sections` picks some):

- `loop`: images/s of the training epochs (`imbtrain.train.train_epoch`: augmentation on the
  device, forward/backward, metrics on the device) for each model, fp32 against bf16
  autocast + channels_last, interleaved;
- `sam`: SAM-A's epoch time over ERM's, same model, bf16 + channels_last (floor 2.0);
- `pipeline`: data-pipeline headroom, images/s of each augmentation policy (+ CutMix) on the
  device, batch by batch as the loop calls it, over the model loop's images/s: above 1 the
  pipeline keeps up with the model; and the loop's own images/s with TrivialAugment + CutMix
  against flip/crop, so the pipeline's real cost in the loop;
- `epoch`: one epoch of the paper's tuned routine with WRN-28-10 on LT-CIFAR-10-shaped data
  (12,406 train images, r = 0.01), evaluation included;
- `compile`: `compile=true` trials one after another in one process (what a Ray worker with
  reused actors does): the first pays torch.compile, the next reuse its graphs.

    python benchmarks/gpu_loop.py                                   # on a GPU (gpu.sh)
    python benchmarks/gpu_loop.py --device cpu --samples 16 --models resnet8 --epochs 1 \\
        --epoch-model wrn_10_1                                      # a check on CPU
"""

from __future__ import annotations

import argparse
import time

import torch
from common import footer, header, interleaved, median, synchronize

from imbtrain.config import TrainConfig
from imbtrain.data import build_data
from imbtrain.train import Run, train, train_epoch

POLICIES = ("none", "flip_crop", "trivialaugment", "autoaugment", "randaugment", "augmix")


def base_config(args, model: str, **extra) -> TrainConfig:
    return TrainConfig(**{"dataset": "synthetic", "synthetic_shape": "3x32x32",
                          "synthetic_samples": args.samples, "model": model,
                          "batch_size": args.batch_size, "augment": "flip_crop", "epochs": 100,
                          "lr": 0.05, "device": args.device, **extra})


def epoch_runner(run: Run):
    def epoch() -> None:
        train_epoch(run)
        run.epoch += 1
    return epoch


def loop_rates(args, data, variants: dict[str, TrainConfig]) -> dict[str, float]:
    """Median images/s of the training epochs of each variant, interleaved."""
    runs = {name: Run(cfg, data, log=lambda s: None) for name, cfg in variants.items()}
    t = interleaved({n: epoch_runner(r) for n, r in runs.items()}, args.epochs,
                    device=args.device, verbose=False)
    return {n: len(data.train_y) / median(t.wall[n]) for n in runs}


FAST = {"precision": "bf16", "channels_last": True}


def section_loop(args, data) -> dict[str, float]:
    print(f"\n## loop: images/s of the training epochs (batch {args.batch_size}, flip/crop)")
    print(f"{'model':<14}{'fp32':>12}{'bf16+NHWC':>12}{'speed-up':>10}")
    rates = {}
    for model in args.models:
        r = loop_rates(args, data, {"fp32": base_config(args, model),
                                    "bf16": base_config(args, model, **FAST)})
        rates[model] = r["bf16"]
        print(f"{model:<14}{r['fp32']:>12.0f}{r['bf16']:>12.0f}{r['bf16'] / r['fp32']:>10.2f}")
    return rates


def section_sam(args, data) -> None:
    print("\n## sam: SAM-A epoch time / ERM epoch time (bf16 + channels_last; floor 2.0)")
    for model in args.models:
        r = loop_rates(args, data, {"erm": base_config(args, model, **FAST),
                                    "sam_a": base_config(args, model, sam="sam_a", **FAST)})
        print(f"{model:<14} ERM {r['erm']:>8.0f} img/s  SAM-A {r['sam_a']:>8.0f} img/s  "
              f"ratio {r['erm'] / r['sam_a']:.3f}")


def policy_rate(args, run: Run, x: torch.Tensor) -> float:
    """Images/s of train_views + mix on one batch, best of repeated calls after a warm-up."""
    t = torch.eye(run.K, device=x.device)[torch.zeros(len(x), dtype=torch.long,
                                                      device=x.device)]

    def once() -> None:
        run.aug.mix(run.aug.train_views(x), t)

    once()
    best = float("inf")
    for _ in range(args.reps):
        synchronize(args.device)
        start = time.perf_counter()
        once()
        synchronize(args.device)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def section_pipeline(args, data, loop: dict[str, float]) -> None:
    model = args.models[0]
    rate = loop.get(model) or loop_rates(args, data, {"m": base_config(args, model, **FAST)})["m"]
    print(f"\n## pipeline: augmentation images/s (batch {args.batch_size}, on the device) "
          f"over the {model} bf16 loop's {rate:.0f} img/s")
    x = data.train_x[:args.batch_size].to(args.device)
    for policy in POLICIES:
        for mix in ("none", "cutmix"):
            run = Run(base_config(args, model, augment=policy, mix=mix), data,
                      log=lambda s: None)
            aug = policy_rate(args, run, x)
            # share: of a step that runs this augmentation and then the model's step
            print(f"{policy:<16}{'+ ' + mix if mix != 'none' else '':<10}{aug:>12.0f} img/s"
                  f"   headroom {aug / rate:>8.1f}x   share of step {rate / (rate + aug):>6.1%}")
    r = loop_rates(args, data, {
        "flip_crop": base_config(args, model, **FAST),
        "trivial+cutmix": base_config(args, model, augment="trivialaugment", mix="cutmix",
                                      **FAST)})
    slow, fast = r["trivial+cutmix"], r["flip_crop"]
    print(f"loop with trivialaugment + cutmix: {slow:.0f} img/s, with flip/crop {fast:.0f} "
          f"img/s (ratio {slow / fast:.3f}: trivialaugment + cutmix take "
          f"{1 - slow / fast:.1%} more of the step than flip/crop)")


def section_epoch(args) -> None:
    """One epoch of the paper's tuned routine (routines/tuned.yaml: WRN-28-10, batch 64,
    TrivialAugment + CutMix, EMA, bf16 + channels_last) on LT-CIFAR-10-shaped data: a
    3x32x32 pool of 5,000 images a class cut to the exp profile at r = 0.01 (12,406 train
    images, as CIFAR-10-LT), val and test evaluated: the second epoch's time (the first
    pays cuDNN's autotuning)."""
    samples, ratio = (5000, 0.01) if args.device != "cpu" else (args.samples, 0.5)
    model = args.epoch_model
    cfg = TrainConfig(dataset="synthetic", synthetic_shape="3x32x32", synthetic_samples=samples,
                      train_ratio=ratio, model=model, epochs=2, batch_size=64,
                      augment="trivialaugment", mix="cutmix", smoothing="uniform",
                      smoothing_eps=0.1, ema_decay=0.999, precision="bf16",
                      channels_last=True, lr=0.1, weight_decay=0.0002, momentum=0.9,
                      device=args.device)
    data = build_data(cfg)
    result = train(cfg, data=data, log=lambda s: None)
    last = result.history[-1]
    print(f"\n## epoch: {model}, tuned routine, {len(data.train_y)} train images "
          f"(r = {ratio}), {len(data.val_y)} val + {len(data.test_y)} test evaluated: epoch 2 "
          f"{last['epoch_time_s']:.1f} s ({last['samples_per_s']:.0f} train images/s over the "
          f"epoch); epoch 1 {result.history[0]['epoch_time_s']:.1f} s")


def section_compile(args, data) -> None:
    model = args.models[0]
    print(f"\n## compile: {model}, compile=true, trials one after another in one process "
          "(a reused Ray actor)")
    import torch._dynamo

    for i, bs in enumerate((args.batch_size, args.batch_size, args.batch_size // 2)):
        cfg = base_config(args, model, compile=True, epochs=1, seed=i, batch_size=bs, **FAST)
        start = time.perf_counter()
        train(cfg, data=data, log=lambda s: None)
        synchronize(args.device)
        stats = torch._dynamo.utils.counters["stats"]
        print(f"trial {i + 1} (batch {bs}): {time.perf_counter() - start:7.1f} s, dynamo "
              f"graphs so far {stats['unique_graphs']}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--models", nargs="+", default=["resnet32", "wrn_28_10"])
    p.add_argument("--samples", type=int, default=2000,
                   help="train images a class (synthetic_samples; 10 classes)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs a variant")
    p.add_argument("--reps", type=int, default=20, help="timed calls an augmentation")
    p.add_argument("--sections", nargs="+", default=["loop", "sam", "pipeline", "epoch"],
                   choices=["loop", "sam", "pipeline", "epoch", "compile"])
    p.add_argument("--epoch-model", default="wrn_28_10", help="model of the epoch section")
    args = p.parse_args()
    torch.manual_seed(0)
    data = build_data(base_config(args, args.models[0]))
    header(f"imbtrain loop on {args.device}: synthetic 3x32x32, {len(data.train_y)} train "
           f"images, batch {args.batch_size}", device=args.device)
    loop = section_loop(args, data) if "loop" in args.sections else {}
    if "sam" in args.sections:
        section_sam(args, data)
    if "pipeline" in args.sections:
        section_pipeline(args, data, loop)
    if "epoch" in args.sections:
        section_epoch(args)
    if "compile" in args.sections:
        section_compile(args, data)
    footer()


if __name__ == "__main__":
    main()
