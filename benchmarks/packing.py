"""Packing gain: K small trials sharing one GPU (`--gpus-per-trial 1/K`) against one at a time.

The same study (K seeds of ResNet-32 on generated CIFAR-shaped data, a few epochs) runs twice
through the real platform (`run_study`, what `imbtrain study --gpus-per-trial F` runs): with
a whole GPU a trial (one at a time) and with 1/K of it (K at once). Small models leave most
of an H100 idle (kernel launches, the Python loop); packed trials fill it. Gain = wall time
one at a time / wall time packed. Ray is started once, before both.

    python benchmarks/packing.py                      # on a GPU machine (gpu.sh)
    python benchmarks/packing.py --device cpu --samples 16 --epochs 1 --trials 2   # smoke
"""

from __future__ import annotations

import argparse
import os
import tempfile

from common import footer, header, timed_study, write_space


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=4, help="K: trials, and trials packed a GPU")
    p.add_argument("--model", default="resnet32")
    p.add_argument("--samples", type=int, default=1000, help="train images a class (x10)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="cuda", help="cpu: a smoke run, K CPUs vs 1")
    p.add_argument("--cpus-per-trial", type=float, default=2)
    args = p.parse_args()
    gpu = args.device == "cuda"
    header(f"packing {args.trials} trials of {args.model} (synthetic 3x32x32, "
           f"{10 * args.samples} train images, {args.epochs} epochs)", device=args.device)
    base = {"dataset": "synthetic", "synthetic_shape": "3x32x32",
            "synthetic_samples": args.samples, "model": args.model, "epochs": args.epochs,
            "batch_size": 128, "augment": "flip_crop", "lr": 0.05, "device": args.device,
            **({"precision": "bf16", "channels_last": True} if gpu else {})}
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        from imbtrain.tune.runner import init_ray

        init_ray(None)
        for name, share, concurrent in (("one at a time", 1.0, 1),
                                        ("packed", 1.0 / args.trials, args.trials)):
            space = {"base": base, "knobs": {"batch_size": {"grid": [128]}},
                     "seeds": list(range(args.trials)),
                     "resources": {"cpus": args.cpus_per_trial, "gpus": 0}}
            path = write_space(tmp, name.replace(" ", "_"), space)
            # --gpus-per-trial and --max-concurrent, as on the command line
            result, wall = timed_study(path, os.path.join(tmp, "runs"), None,
                                       os.path.join(tmp, "study.log"),
                                       gpus_per_trial=share if gpu else None,
                                       max_concurrent=concurrent)
            res = result.results
            bad = int((res["status"] != "TERMINATED").sum())
            walls[name] = wall
            print(f"{name:<14} gpus/trial {share if gpu else 0:<5.2f} wall {wall:7.1f} s, "
                  f"trainable {res['time_total_s'].sum():7.1f} s, {bad} failed", flush=True)
    print(f"packing gain (wall one at a time / packed): "
          f"{walls['one at a time'] / walls['packed']:.2f}x")
    footer()


if __name__ == "__main__":
    main()
