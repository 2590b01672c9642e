"""Study overhead: N short trials through the real study platform against their own compute.

A grid of N trials (one config, N seeds; mnist5k at r = 0.1, the cnn, a few epochs: about
10 s a trial on one core here) runs through `run_study`, exactly what `imbtrain study` runs:
Ray Tune in-process with reused actors, a report every epoch and a checkpoint every
`--checkpoint-every` epochs, the MLflow callback into a sqlite store, the result tables and
best.yaml at the end; once for each `--checkpoint-every` value (default: the default, then 1).
Three layers of time:

- epochs: the trials' `epoch_time_s` summed (training and evaluation, the useful work);
- trainable: Ray's `time_total_s` summed (adds each trial's setup, the final neural-collapse
  pass, the reports and checkpoints);
- study: the wall time of the whole `run_study` call (Ray already started, timed apart),
  times the concurrency c.

The per-trial overhead of the platform is read from a driver-side timeline (Tune's trial
start and completion events): the hand-over from one trial to the next on a reused actor,
plus Tune's bookkeeping around the trainable. The study's fixed start (MLflow store, Tune,
worker processes) and end (tables, best.yaml, artifacts), and a worker's first-trial imports
and data decoding, are printed apart; the amortised figure (study x c - trainable) / N
includes them. The goal is <= 1 s a trial with actor reuse; Ray's scalability
page reports ~0.14 s a trial at scale. The ideal study time is trainable / c. Also printed:
a fresh worker's first trial, its overhead beyond its epochs (goal <= 2 s), and what a
report costs with and without a checkpoint, as a share of a trial (goal < 5% at the default).

    python benchmarks/study_overhead.py                  # 8 trials, 2 at once, twice: ~4 min
    python benchmarks/study_overhead.py --trials 16 --epochs 2 --checkpoint-every 1
    python benchmarks/study_overhead.py --quick          # 2 short digits trials a setting
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
        """Per trial: start, complete, trainable seconds, worker pid, the epochs' seconds and
        each result's (driver time, result); in start order."""
        out: dict[str, dict] = {}
        for t, kind, name, result in self.events:
            row = out.setdefault(name, {"name": name, "epochs": 0.0, "results": []})
            if kind == "result":
                row.update(trainable=result.get("time_total_s"), pid=result.get("pid"))
                row["epochs"] += float(result.get("epoch_time_s", 0.0))
                row["results"].append((t, result))
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
    fresh, reused, seen = [], [], set()
    for r in rows:  # driver's start -> complete, less the trial's epochs
        (reused if r["pid"] in seen else fresh).append(r["complete"] - r["start"] - r["epochs"])
        seen.add(r["pid"])
    print(f"overhead beyond the epochs (driver: trial start -> complete, less its "
          f"epoch_time_s): a fresh worker's first trial median {median(fresh):.2f} s (max "
          f"{max(fresh):.2f}), a reused worker's trial median "
          f"{median(reused) if reused else float('nan'):.2f} s")


def report_costs(timeline: Timeline, every: int) -> dict[str, list[float]]:
    """Seconds a report costs, by kind (with / without a checkpoint), for the epochs between
    a trial's first and last: in the worker, Ray's time_this_iter_s less the epoch (the
    state copy, the checkpoint's save and upload); in the driver, the time between two
    results less the later one's iteration (the round trip, the callbacks)."""
    from imbtrain.tune.trainable import checkpoint_due

    costs: dict[str, list[float]] = {"checkpoint": [], "plain": []}
    for r in timeline.trials():
        res = r["results"]
        epochs = int(res[-1][1].get("epoch", 0)) if res else 0
        for (t0, _), (t1, cur) in zip(res, res[1:], strict=False):
            e = int(cur.get("epoch", 0))
            if e >= epochs or e < 2:  # the last carries the final pass
                continue
            worker = float(cur["time_this_iter_s"]) - float(cur["epoch_time_s"])
            driver = (t1 - t0) - float(cur["time_this_iter_s"])
            kind = "checkpoint" if checkpoint_due(e, epochs, every) else "plain"
            costs[kind].append(worker + max(0.0, driver))
    return costs


def run_once(args, tmp: str, every: int) -> tuple[object, float, Timeline, float, float]:
    space = {
        "description": "benchmark: identical short trials, one per seed",
        "base": {"dataset": args.dataset, "model": "cnn", "epochs": args.epochs,
                 "batch_size": 64, "lr": 0.05},
        "knobs": {"batch_size": {"grid": [64]}},
        "train_ratios": [args.train_ratio],
        "seeds": list(range(args.trials)),
        "resources": {"cpus": 1, "gpus": 0},
        "max_concurrent": args.concurrency,
        "checkpoint_every": every,
    }
    folder = tempfile.mkdtemp(dir=tmp)
    path = write_space(folder, "overhead", space)
    uri = None if args.no_mlflow else f"sqlite:///{os.path.join(folder, 'mlflow.db')}"
    log = os.path.join(folder, "study.log")
    with Timeline() as timeline:
        t0 = time.perf_counter()
        result, wall = timed_study(path, os.path.join(folder, "runs"), uri, log)
        t1 = time.perf_counter()
    failed = int((result.results["status"] != "TERMINATED").sum())
    if failed:
        print(open(log).read()[-3000:])
        raise SystemExit(f"{failed} trials failed")
    return result, wall, timeline, t0, t1


def main() -> None:
    from imbtrain.study.space import CHECKPOINT_EVERY
    from imbtrain.tune.trainable import checkpoint_due

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=2, help="trials at once (1 CPU each)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-ratio", type=float, default=0.1)
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--checkpoint-every", type=int, nargs="+", default=[CHECKPOINT_EVERY, 1],
                   help="one study each, in turn (the first is the one described in full)")
    p.add_argument("--no-mlflow", action="store_true", help="turn the MLflow callback off")
    p.add_argument("--quick", action="store_true",
                   help="a check of the script: 2 two-epoch trials of digits a setting")
    args = p.parse_args()
    if args.quick:
        args.trials, args.epochs, args.dataset = 2, 2, "digits"
    header(f"study overhead: {args.trials} trials ({args.dataset} r={args.train_ratio}, cnn, "
           f"{args.epochs} epochs), {args.concurrency} at once, reused actors, checkpoint "
           f"every {' / '.join(map(str, args.checkpoint_every))} epochs, "
           f"MLflow {'off' if args.no_mlflow else 'sqlite'}", threads=1)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        from imbtrain.tune.runner import init_ray

        start = time.perf_counter()
        init_ray(None)
        ray_start = time.perf_counter() - start
        for every in args.checkpoint_every:
            runs[every] = run_once(args, tmp, every)
    result, wall, timeline, t0, t1 = runs[args.checkpoint_every[0]]
    results, history = result.results, result.history
    c, n = args.concurrency, len(results)
    epochs = float(history["epoch_time_s"].sum())
    trainable = float(results["time_total_s"].sum())
    print(f"Ray start (once a study, not counted below): {ray_start:.1f} s")
    print(f"checkpoint every {args.checkpoint_every[0]}: trials {n}, concurrency {c}; a "
          f"trial's trainable time: median {results['time_total_s'].median():.1f} s")
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
    costs = {"checkpoint": [], "plain": []}
    for every, (_, _, tl, _, _) in runs.items():
        for kind, values in report_costs(tl, every).items():
            costs[kind] += values
    med = {k: median(v) if v else float("nan") for k, v in costs.items()}
    print(f"a report (epochs 2 .. last-1; worker + driver): with a checkpoint median "
          f"{med['checkpoint']:.3f} s ({len(costs['checkpoint'])} measured), without "
          f"{med['plain']:.3f} s ({len(costs['plain'])})")
    for every, (_, _, tl, _, _) in runs.items():
        walls = [r["complete"] - r["start"] for r in tl.trials()]
        cost = sum(med["checkpoint" if checkpoint_due(e, args.epochs, every) else "plain"]
                   for e in range(1, args.epochs + 1))
        print(f"checkpoint every {every}: {args.epochs} reports a trial cost {cost:.2f} s = "
              f"{cost / median(walls):.1%} of a trial's {median(walls):.1f} s (driver: start "
              f"-> complete, median)")
    footer()


if __name__ == "__main__":
    main()
