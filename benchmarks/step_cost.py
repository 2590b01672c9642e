"""Step cost of SAM, SAM-A (each `sam_a_mode`), Joint-SSL and every baseline, relative to ERM.

Same model, data, batch size and augmentation for all; each variant is a training run of
imbtrain's loop (`imbtrain.train.Run`, `train_epoch`), and its epochs are timed interleaved
with the others' (ERM, SAM, SAM-A, ... , ERM, SAM, ...), after one warm-up epoch each. A
step's cost is the epoch's time / its steps; an epoch's cost differs from it where the
method changes the epoch (SMOTE adds samples). Methods that switch on late are timed in the
regime that costs: DRW / LDAM-DRW with their re-weighting on (drw_epoch 0), M2m translating
from the first epoch (m2m_epoch 0) with an ERM teacher trained beforehand (not timed), and
MiSLAS's stage 2 (`finish`: BN re-estimation + classifier re-training) timed once on its own,
in ERM epochs. SAM's floor is 2.0 (two forward/backward passes a step). The passes column is
the forward/backward passes a step reports (`fwd_bwd_passes` / steps, M2m's generation
included): SAM-A's per_class and grouped modes pay 2 per class / radius group in the batch.

    python benchmarks/step_cost.py                       # resnet8, 3x32x32 synthetic, ~3 min
    python benchmarks/step_cost.py --model cnn --set dataset=mnist5k
    python benchmarks/step_cost.py --only sam sam_a "sam_a per_class" "sam_a grouped"
    python benchmarks/step_cost.py --quick               # seconds: checks the script
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch
from common import Clock, footer, header, interleaved, median

from imbtrain.config import TrainConfig, parse_overrides
from imbtrain.data import build_data
from imbtrain.train import Run, train, train_epoch

VARIANTS: dict[str, dict] = {
    "erm": {},
    "sam": {"sam": "sam"},
    "sam_a": {"sam": "sam_a"},
    "sam_a per_class": {"sam": "sam_a", "sam_a_mode": "per_class"},
    "sam_a grouped": {"sam": "sam_a", "sam_a_mode": "grouped"},
    "joint_ssl (vicreg)": {"ssl": "vicreg"},
    "reweight": {"method": "reweight"},
    "resample": {"method": "resample"},
    "smote": {"method": "smote"},
    "drw": {"method": "drw", "drw_epoch": 0},
    "focal": {"method": "focal"},
    "ldam_drw": {"method": "ldam_drw", "drw_epoch": 0},
    "mislas (stage 1)": {"method": "mislas"},
    "m2m": {"method": "m2m", "m2m_epoch": 0},
}


def make_teacher(cfg: TrainConfig, data, folder: str) -> str:
    """An ERM model of the same architecture and data, saved for M2m (not timed)."""
    result = train(cfg.replace(epochs=2), data=data, log=lambda s: None)
    path = os.path.join(folder, "teacher.pt")
    torch.save(result.model.state_dict(), path)
    return path


def epoch_fn(run: Run, steps: list[int]):
    """One timed training epoch of `run` (its epoch counter advances like the loop's); the
    steps taken so far are counted in steps[0]."""
    def step() -> None:
        train_epoch(run)
        run.epoch += 1
        steps[0] += run.steps_per_epoch
    return step


def passes_per_step(run: Run, steps: int) -> float:
    """Forward/backward passes a step, as the loop reports them (stepper and method)."""
    return (run.stepper.passes + run.method.passes) / max(steps, 1)


def stage2_seconds(run: Run) -> float:
    """CPU seconds of MiSLAS's `finish` (stage 2) on the run's model, timed once."""
    ctx = {"device": run.device, "train_view": run.aug.train_views, "log": lambda s: None,
           "batch_size": run.cfg.batch_size, "autocast": run.autocast}
    clock = Clock()
    run.method.finish(run.eval_model(), run.data, ctx)
    return clock.read()[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet8")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", nargs="*", help="variants to time (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="a check of the script: ERM and SAM-A, 1 round, 10 images a class")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="TrainConfig overrides for every variant")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.only = 1, ["sam_a"]
        args.set = [*args.set, "synthetic_samples=10", "synthetic_shape=3x8x8"]
    torch.set_num_threads(args.threads)
    base = TrainConfig(**{
        "dataset": "synthetic", "synthetic_shape": "3x32x32", "synthetic_samples": 100,
        "train_ratio": 0.1, "model": args.model, "batch_size": args.batch_size,
        "augment": "flip_crop", "epochs": 100, "lr": 0.05, "device": "cpu",
        **parse_overrides(args.set)})
    data = build_data(base)
    header(f"step cost vs ERM: {base.model} on {base.dataset} {data.input_shape} "
           f"({len(data.train_y)} train images, counts {data.train_counts}), batch "
           f"{base.batch_size}, augment {base.augment}, overrides {args.set or 'none'}",
           threads=args.threads)
    names = [n for n in VARIANTS if not args.only or n in args.only or n == "erm"]
    with tempfile.TemporaryDirectory() as folder:
        extra = {"m2m_teacher": make_teacher(base, data, folder)} if "m2m" in names else {}
        runs = {n: Run(base.replace(**VARIANTS[n], **(extra if n == "m2m" else {})), data,
                       log=lambda s: None) for n in names}
        steps = {n: [0] for n in runs}
        t = interleaved({n: epoch_fn(r, steps[n]) for n, r in runs.items()}, args.rounds)
    steps_erm = runs["erm"].steps_per_epoch
    taken = {n: steps[n][0] for n in runs}
    erm_cpu, erm_wall = median(t.cpu["erm"]), median(t.wall["erm"])
    print(f"{'variant':<20}{'steps':>6}{'CPU s/ep':>10}{'epoch/ERM':>11}{'ms/step':>9}"
          f"{'step/ERM':>10}{'best':>7}{'wall':>7}{'passes':>8}   (CPU medians; best: best "
          "rounds; wall: wall medians' step/ERM; passes: forward/backward passes a step)")
    for n, run in runs.items():
        steps = run.steps_per_epoch
        cpu = median(t.cpu[n])
        step = (cpu / steps) / (erm_cpu / steps_erm)
        best = (min(t.cpu[n]) / steps) / (min(t.cpu["erm"]) / steps_erm)
        wall = (median(t.wall[n]) / steps) / (erm_wall / steps_erm)
        print(f"{n:<20}{steps:>6}{cpu:>10.3f}{cpu / erm_cpu:>11.2f}{1e3 * cpu / steps:>9.1f}"
              f"{step:>10.3f}{best:>7.3f}{wall:>7.3f}{passes_per_step(run, taken[n]):>8.2f}")
    if "mislas (stage 1)" in runs:
        run = runs["mislas (stage 1)"]
        s2 = stage2_seconds(run)
        print(f"{'mislas stage 2':<20}{'':>6}{s2:>10.3f}{s2 / erm_cpu:>11.2f}   "
              f"(once after training, in ERM epochs: BN "
              f"re-estimation + {run.cfg.mislas_epochs} epochs of classifier re-training)")
    footer()


if __name__ == "__main__":
    main()
