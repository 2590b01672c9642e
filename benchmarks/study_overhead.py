"""Study overhead: N short trials through the real study platform against their own compute.

A grid of N trials (one config, N seeds; mnist5k at r = 0.1, the cnn, a few epochs: about
10 s a trial on one core here) runs through `run_study`, exactly what `imbtrain study` runs:
Ray Tune in-process with reused actors, a checkpoint every epoch, the MLflow callback into a
sqlite store, the result tables and best.yaml at the end. Three layers of time:

- epochs: the trials' `epoch_time_s` summed (training and evaluation, the useful work);
- trainable: Ray's `time_total_s` summed (adds each trial's setup, the final neural-collapse
  pass, the per-epoch checkpoint and report);
- study: the wall time of the whole `run_study` call (Ray already started, timed apart),
  times the concurrency c.

The per-trial overhead of the platform is read from a driver-side timeline (Tune's trial
start and completion events): the hand-over from one trial to the next on a reused actor,
plus Tune's bookkeeping around the trainable. The study's fixed start (MLflow store, Tune,
worker processes) and end (tables, best.yaml, artifacts), and a worker's first-trial imports
and data decoding, are printed apart; the amortised figure (study x c - trainable) / N
includes them. The goal is <= 1 s a trial with actor reuse; Ray's scalability
page reports ~0.14 s a trial at scale. The ideal study time is trainable / c.

    python benchmarks/study_overhead.py                  # 8 trials, 2 at once, ~2 min
    python benchmarks/study_overhead.py --trials 16 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from common import footer, header, median, timed_study, write_space


class Timeline:
    """Driver-side timestamps of each trial's start, results and completion.

    `run_study` takes no extra Tune callbacks, so this wraps the runner's own progress
    callback (`imbtrain.tune.runner._progress_callback`) for the benchmark's run only; where
    that hook is gone, the timeline is skipped and the summary figures still print.
    """

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, dict]] = []

    def __enter__(self) -> Timeline:
        from imbtrain.tune import runner

        self.runner, self.original = runner, getattr(runner, "_progress_callback", None)
        if self.original is None:
            return self
        events, original = self.events, self.original

        def patched(*args, **kwargs):
            progress = original(*args, **kwargs)

            class Timed(type(progress)):
                def on_trial_start(self, iteration, trials, trial, **info):
                    events.append((time.perf_counter(), "start", str(trial), {}))

                def on_trial_result(self, iteration, trials, trial, result, **info):
                    events.append((time.perf_counter(), "result", str(trial), result))
                    super().on_trial_result(iteration, trials, trial, result, **info)

                def on_trial_complete(self, iteration, trials, trial, **info):
                    events.append((time.perf_counter(), "complete", str(trial), {}))
                    super().on_trial_complete(iteration, trials, trial, **info)

            return Timed()

        runner._progress_callback = patched
        return self

    def __exit__(self, *exc) -> None:
        if self.original is not None:
            self.runner._progress_callback = self.original

    def trials(self) -> list[dict]:
        """Per trial: start, complete, trainable seconds, worker pid; in start order."""
        out: dict[str, dict] = {}
        for t, kind, name, result in self.events:
            row = out.setdefault(name, {"name": name})
            if kind == "result":
                row.update(trainable=result.get("time_total_s"), pid=result.get("pid"))
            else:
                row[kind] = t
        rows = [r for r in out.values() if {"start", "complete", "trainable"} <= set(r)]
        return sorted(rows, key=lambda r: r["start"])


def timeline_report(timeline: Timeline, t0: float, t1: float) -> None:
    rows = timeline.trials()
    if not rows:
        print("(no timeline: the runner's progress-callback hook is gone)")
        return
    outside = [r["complete"] - r["start"] - r["trainable"] for r in rows]
    gaps, firsts, later, seen = [], [], [], {}
    for r in rows:
        prev = seen.get(r["pid"])
        (later if prev else firsts).append(r["trainable"])
        if prev:
            gaps.append(r["start"] - prev["complete"])
        seen[r["pid"]] = r
    print(f"timeline (driver clock): study start -> first trial start "
          f"{rows[0]['start'] - t0:.1f} s (MLflow store, Tune, worker processes); last "
          f"trial done -> study returns {t1 - max(r['complete'] for r in rows):.1f} s "
          f"(tables, best.yaml, MLflow artifacts)")
    print(f"per trial on a reused actor: hand-over (previous trial done -> this one starts) "
          f"median {median(gaps) if gaps else float('nan'):.2f} s, Tune's start/complete "
          f"around the trainable median {median(outside):.2f} s")
    if later:
        print(f"a worker's first trial: trainable median {median(firsts):.1f} s vs "
              f"{median(later):.1f} s for the next ones on the same worker (imports, data "
              f"decoding: once a worker)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=2, help="trials at once (1 CPU each)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-ratio", type=float, default=0.1)
    p.add_argument("--no-mlflow", action="store_true", help="turn the MLflow callback off")
    args = p.parse_args()
    header(f"study overhead: {args.trials} trials (mnist5k r={args.train_ratio}, cnn, "
           f"{args.epochs} epochs), {args.concurrency} at once, reused actors, "
           f"MLflow {'off' if args.no_mlflow else 'sqlite'}", threads=1)
    space = {
        "description": "benchmark: identical short trials, one per seed",
        "base": {"dataset": "mnist5k", "model": "cnn", "epochs": args.epochs,
                 "batch_size": 64, "lr": 0.05},
        "knobs": {"batch_size": {"grid": [64]}},
        "train_ratios": [args.train_ratio],
        "seeds": list(range(args.trials)),
        "resources": {"cpus": 1, "gpus": 0},
        "max_concurrent": args.concurrency,
    }
    with tempfile.TemporaryDirectory() as tmp:
        from imbtrain.tune.runner import init_ray

        start = time.perf_counter()
        init_ray(None)
        ray_start = time.perf_counter() - start
        path = write_space(tmp, "overhead", space)
        uri = None if args.no_mlflow else f"sqlite:///{os.path.join(tmp, 'mlflow.db')}"
        log = os.path.join(tmp, "study.log")
        with Timeline() as timeline:
            t0 = time.perf_counter()
            result, wall = timed_study(path, os.path.join(tmp, "runs"), uri, log)
            t1 = time.perf_counter()
        results, history = result.results, result.history
        failed = int((results["status"] != "TERMINATED").sum())
        if failed:
            print(open(log).read()[-3000:])
            raise SystemExit(f"{failed} trials failed")
    c, n = args.concurrency, len(results)
    epochs = float(history["epoch_time_s"].sum())
    trainable = float(results["time_total_s"].sum())
    print(f"Ray start (once a study, not counted below): {ray_start:.1f} s")
    print(f"trials {n}, concurrency {c}; a trial's trainable time: median "
          f"{results['time_total_s'].median():.1f} s")
    print(f"{'':<44}{'seconds':>10}{'per trial':>12}")
    for label, value in (("sum of epochs (training + evaluation)", epochs),
                         ("sum of trainable time (Ray time_total_s)", trainable),
                         ("study wall x concurrency", wall * c)):
        print(f"{label:<44}{value:>10.1f}{value / n:>12.2f}")
    print(f"study wall {wall:.1f} s; ideal (trainable / c) {trainable / c:.1f} s; "
          f"efficiency {trainable / c / wall:.1%}")
    print(f"amortised overhead around the trainable, the study's start and end included: "
          f"{(wall * c - trainable) / n:.2f} s a trial")
    timeline_report(timeline, t0, t1)
    print(f"per-trial time in the trainable beyond the epochs (setup, collapse pass, "
          f"checkpoints): {(trainable - epochs) / n:.2f} s")
    footer()


if __name__ == "__main__":
    main()
