"""imbtrain's `train()` against a minimal hand-written PyTorch loop doing the same work.

Same model (imbtrain.models), data (one `build_data`), batch size, epochs, optimiser (SGD,
momentum, weight decay), per-step cosine learning rate, and once per epoch an evaluation of
the val and test splits. The minimal loop is what one would write by hand: a shuffled
permutation of in-memory tensors, uint8 -> float -> (x / 255 - mean) / std, cross-entropy on
integer labels, `zero_grad / backward / step`, accuracy counted on the device and read once
an epoch. The trainer does all that plus what the platform adds: soft targets, class-aware
hooks, the confusion matrix and all group metrics per split, the epoch's report, and at the
end the neural-collapse pass (one eval forward over the train split; docs/methods.md, "Metrics").
Two ratios: up to the end of the epochs (for the trainer: its last epoch's report), and end
to end (a whole `train()` call against the whole minimal loop); both include building the
model. Each in wall seconds and in CPU seconds of this process (steadier on a shared
machine; see common.Clock). Runs interleaved, trainer / minimal / ..., medians and best
rounds.

    python benchmarks/trainer_vs_minimal.py                # mnist5k at r = 0.1, cnn, ~2 min
    python benchmarks/trainer_vs_minimal.py --model resnet8 --dataset synthetic \\
        --set synthetic_shape=3x32x32 synthetic_samples=100
    python benchmarks/trainer_vs_minimal.py --set channels_last=false  # both loops NCHW
    python benchmarks/trainer_vs_minimal.py --quick        # digits, 1 epoch: checks the script
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F
from common import Clock, footer, header, interleaved, median

from imbtrain.config import TrainConfig, parse_overrides
from imbtrain.data import build_data
from imbtrain.models import create_model
from imbtrain.train import train

# ============================================================================ the minimal loop


def minimal_loop(cfg: TrainConfig, data, clock: Clock) -> dict[str, float]:
    """Hand-written training of cfg.model on `data`: the last epoch's accuracies, and the
    clock's (wall, CPU) seconds at the end of the epochs."""
    torch.manual_seed(cfg.seed)
    channels_last = cfg.channels_last and data.is_image
    model = create_model(cfg.model, data.input_shape, data.num_classes)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    n, bs = len(data.train_y), cfg.batch_size
    steps = n // bs + int(n % bs > 1)  # the trainer's rule: drop only a trailing batch of 1
    total = cfg.epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    mean = torch.tensor(data.mean).view(-1, 1, 1)
    std = torch.tensor(data.std).view(-1, 1, 1)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = (x.float() / 255 - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    accs: dict[str, float] = {}
    ebs = cfg.eval_batch_size or 128  # the trainer's rule on a CPU: 0 = auto = 128
    for _ in range(cfg.epochs):
        model.train()
        perm = torch.randperm(n)
        loss_sum = torch.zeros(())
        for s in range(steps):
            b = perm[s * bs:(s + 1) * bs]
            loss = F.cross_entropy(model(prepare(data.train_x[b])), data.train_y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach()
        model.eval()
        with torch.no_grad():
            for split in ("val", "test"):
                x_all, y_all = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
                correct = torch.zeros((), dtype=torch.long)
                for i in range(0, len(y_all), ebs):
                    logits = model(prepare(x_all[i:i + ebs]))
                    correct += (logits.argmax(1) == y_all[i:i + ebs]).sum()
                accs[f"{split}_acc"] = int(correct) / len(y_all)
        accs["train_loss"] = float(loss_sum) / steps
    return {**accs, "epochs_end": clock.read()}


# ============================================================================ the benchmark


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--model", default="cnn")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-ratio", type=float, default=0.1,
                   help="imbalance ratio r (0.1: 1,630 mnist5k train images)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=8,
                   help="interleaved rounds (a run of one loop can be 20%% off its median)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: what a study trial with cpus=1 uses)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="more TrainConfig overrides, applied to both loops where they apply")
    p.add_argument("--quick", action="store_true",
                   help="a check of the script itself: digits, 1 epoch, 1 round")
    args = p.parse_args()
    if args.quick:
        args.dataset, args.epochs, args.rounds = "digits", 1, 1
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(**{"dataset": args.dataset, "model": args.model,
                         "batch_size": args.batch_size, "epochs": args.epochs, "lr": 0.05,
                         "train_ratio": args.train_ratio,
                         "device": "cpu", **parse_overrides(args.set)})
    data = build_data(cfg)
    n = len(data.train_y)
    header(f"trainer vs minimal loop: {cfg.model} on {cfg.dataset} ({n} train images, "
           f"{len(data.val_y)} val, {len(data.test_y)} test, shape {data.input_shape}), "
           f"batch {cfg.batch_size}, {cfg.epochs} epochs, eval batch "
           f"{cfg.eval_batch_size or '128 (auto)'}, "
           f"overrides {args.set or 'none'}", threads=args.threads)
    clock = Clock()
    ends: dict[str, list[tuple[float, float]]] = {"trainer": [], "minimal": []}
    accs: dict[str, float] = {}

    def run_trainer() -> None:
        clock.start()
        marks = []  # (wall, CPU) at each epoch's report: the epochs end at the last one
        result = train(cfg, data=data, report=lambda m, s: marks.append(clock.read()),
                       log=lambda s: None)
        ends["trainer"].append(marks[-1])
        accs["trainer"] = result.metrics["test_acc"]

    def run_minimal() -> None:
        clock.start()
        out = minimal_loop(cfg, data, clock)
        ends["minimal"].append(out["epochs_end"])
        accs["minimal"] = out["test_acc"]

    t = interleaved({"trainer": run_trainer, "minimal": run_minimal}, args.rounds)
    work = cfg.epochs * n
    rows = {}
    for name in ("minimal", "trainer"):
        kept = ends[name][-args.rounds:]  # the warm-up round is not counted
        rows[name] = {"end to end, wall": t.wall[name], "end to end, CPU": t.cpu[name],
                      "epochs, wall": [w for w, _ in kept], "epochs, CPU": [c for _, c in kept]}
    print(f"{'images/s (median / best)':<26}" + "".join(f"{k:>22}" for k in rows["minimal"]))
    for name, cols in rows.items():
        print(f"{name:<26}" + "".join(f"{work / median(v):>12.0f} /{work / min(v):>7.0f}"
                                      for v in cols.values()))
    print(f"{'ratio trainer / minimal':<26}" + "".join(
        f"{median(rows['minimal'][k]) / median(rows['trainer'][k]):>12.3f} /"
        f"{min(rows['minimal'][k]) / min(rows['trainer'][k]):>7.3f}" for k in rows["minimal"]))
    after = [a - e for a, e in zip(t.cpu["trainer"], rows["trainer"]["epochs, CPU"],
                                   strict=True)]
    print(f"trainer after its epochs (neural-collapse pass, result): {median(after):.2f} CPU s "
          f"median = {median(after) / median(t.cpu['trainer']):.1%} of the run; test_acc "
          f"trainer {accs['trainer']:.4f}, minimal {accs['minimal']:.4f}")
    footer()


if __name__ == "__main__":
    main()
