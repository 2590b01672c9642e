"""A/B of the training loop: this tree's `imbtrain.train.train` against another version of
`train.py` (e.g. the last commit's), on the same config and data, interleaved.

How each change to train.py was measured (benchmarks/RESULTS.md):

    git show HEAD:imbtrain/train.py > /tmp/train_old.py
    python benchmarks/train_ab.py /tmp/train_old.py --set train_ratio=0.1
    python benchmarks/train_ab.py /tmp/train_old.py --set channels_last=true --b-set ...

    python benchmarks/train_ab.py imbtrain/train.py --quick    # this tree twice: a check

Both versions must give the same metrics (up to the timings); the script says when they do
not. Prints end-to-end seconds (median and best) and the ratio old / new (> 1: new faster).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys

import torch
from common import footer, header, interleaved, median

from imbtrain.config import TrainConfig, parse_overrides
from imbtrain.data import build_data
from imbtrain.train import train


def load_train(path: str):
    """The other train.py's loop. Loading it registers its own `loop` trainer (and
    `train()` dispatches through the registry), so its loop is taken from the module and
    this tree's stays the registered one."""
    from imbtrain.registry import TRAINERS

    ours = sys.modules["imbtrain.train"]

    spec = importlib.util.spec_from_file_location("train_other", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_other"] = module  # dataclasses look their module up
    TRAINERS.unregister("loop")
    try:
        spec.loader.exec_module(module)
    finally:
        TRAINERS.unregister("loop")
        TRAINERS.register("loop")(ours.train_loop)
    return getattr(module, "train_loop", module.train)


def same(a: dict, b: dict) -> list[str]:
    """Keys whose values differ (timings left out; NaN equals NaN)."""
    skip = ("epoch_time_s", "samples_per_s")
    return [k for k in a if k not in skip and not (
        a[k] == b.get(k) or (isinstance(a[k], float) and math.isnan(a[k])
                             and math.isnan(b.get(k, 0.0))))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("other", help="path of the other train.py (A)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="TrainConfig overrides of both (default: mnist5k, cnn, 3 epochs)")
    p.add_argument("--b-set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra overrides of this tree's run only (B), e.g. channels_last=true")
    p.add_argument("--quick", action="store_true",
                   help="a check of the script: digits, 1 epoch, 1 round")
    args = p.parse_args()
    if args.quick:
        args.rounds = 1
        args.set = [*args.set, "dataset=digits", "epochs=1"]
    torch.set_num_threads(args.threads)
    base = {"dataset": "mnist5k", "model": "cnn", "epochs": 3, "batch_size": 64, "lr": 0.05,
            "device": "cpu", **parse_overrides(args.set)}
    cfg_a = TrainConfig(**base)
    cfg_b = TrainConfig(**{**base, **parse_overrides(args.b_set)})
    data = build_data(cfg_a)
    other = load_train(args.other)
    header(f"train.py A/B: A = {args.other}, B = this tree; {cfg_a.model} on {cfg_a.dataset} "
           f"({len(data.train_y)} train images), {cfg_a.epochs} epochs, overrides "
           f"{args.set or 'none'}, B only {args.b_set or 'none'}", threads=args.threads)
    out: dict[str, dict] = {}
    t = interleaved({
        "A": lambda: out.__setitem__("A", other(cfg_a, data=data, log=lambda s: None).metrics),
        "B": lambda: out.__setitem__("B", train(cfg_b, data=data, log=lambda s: None).metrics),
    }, args.rounds)
    for name in ("A", "B"):
        print(f"{name}: {median(t.wall[name]):.3f} s wall median ({min(t.wall[name]):.3f} best), "
              f"{median(t.cpu[name]):.3f} CPU s median ({min(t.cpu[name]):.3f} best)")
    print(f"A / B time: wall {median(t.wall['A']) / median(t.wall['B']):.3f} median, "
          f"{min(t.wall['A']) / min(t.wall['B']):.3f} best; CPU "
          f"{median(t.cpu['A']) / median(t.cpu['B']):.3f} median, "
          f"{min(t.cpu['A']) / min(t.cpu['B']):.3f} best (> 1: B faster)")
    diff = same(out["A"], out["B"])
    print("metrics identical" if not diff else f"metrics differ: {', '.join(diff[:8])}"
          + (" ..." if len(diff) > 8 else ""))
    footer()


if __name__ == "__main__":
    main()
