"""The scaffold of a paper study script (`studies/*.py`): options, spec, run, analyse, report.

A study of the paper is a search space (`search_spaces/<name>.yaml`, with its `smoke` and
`full` sections) plus an analysis. Its script is thin: what the study draws and what it
concludes. Everything else, the same for every study, lives here:

    from imbtrain.tune.study_script import Outcome, StudyScript, draw

    def analyse(result, args) -> Outcome:
        files = draw(result, {"sensitivity": {"knob": "batch_size", "baseline": 128}})
        return Outcome(table=markdown, finding="Batch size matters more ...", files=files)

    main = StudyScript("batch_size", __doc__, analyse).main
    if __name__ == "__main__":
        sys.exit(main())

`StudyScript.main(argv)` parses every option of `imbtrain study` plus `--dataset`,
`--data-dir` (several folders: a `data_dir` grid, one dataset each), `--full` and `--space`;
loads the space (its `full` section with `--full`, its `smoke` section with `--smoke`, then
--dataset/--data-dir on top of the base); lets the study `prepare` the spec (make pre-trained
weights, fill in variants); runs it (`run_study`); calls `analyse`; writes the finding and the
headline table to `findings.md`; logs the files to the study's MLflow parent run; prints the
table, the finding and the best configuration (`print_summary`). `--resume` on a finished
study trains nothing and analyses it again. A `UserError` anywhere is one line,
`error: ...`, and exit status 2. The study's name is the space's (`<space>_full` with
--full), `_smoke` added with --smoke, unless --name says otherwise.

Prerequisites (a study that needs weights trained before its trials, e.g. pre-training):
`run_prerequisites` runs `train_weights` / `pretrain_weights` jobs, on a cluster as Ray tasks
with a trial's resources (on the GPU workers, writing to the shared storage), locally in the
driver; files already there are kept (a resumed study does not train them again).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imbtrain.errors import UserError
from imbtrain.tune.cli import add_study_options, print_summary, study_kwargs
from imbtrain.tune.runner import StudyResult, init_ray, log_artifacts, run_study
from imbtrain.tune.space import StudySpec, load_space

SPACES = Path(__file__).resolve().parent.parent.parent / "search_spaces"
FINDINGS_FILE = "findings.md"  # the study's paragraph and headline table


@dataclass
class Outcome:
    """What a study's analysis found: the headline table (Markdown, printed), one paragraph
    (a sentence, the key figure, agreement with the paper) and the files it wrote."""

    table: str
    finding: str
    files: list[Path] = field(default_factory=list)


Analyse = Callable[[StudyResult, argparse.Namespace], Outcome]
Prepare = Callable[[StudySpec, argparse.Namespace, dict[str, Any]], StudySpec]


# ================================================================ options and spec


def parse_args(doc: str, space: Path, argv: list[str] | None) -> argparse.Namespace:
    """The options of `imbtrain study` plus a study script's (DESIGN.md, Commands)."""
    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    add_study_options(p)
    p.add_argument("--dataset", help="dataset of every trial (default: the space's; with "
                                     "--full, the paper's)")
    p.add_argument("--data-dir", nargs="+", metavar="DIR",
                   help="folder of an on-disk dataset (cifar100, ...); several folders make "
                        "data_dir a grid knob (one dataset a folder: cross-dataset studies)")
    p.add_argument("--full", action="store_true",
                   help="the paper's setting: its scale and the tuned routine (the space's "
                        "full section; a GPU cluster)")
    p.add_argument("--space", default=str(space), help="search-space file (default %(default)s)")
    return p.parse_args(argv)


def study_spec(args: argparse.Namespace) -> StudySpec:
    """The space, its full section with --full, --dataset / --data-dir on its base, and its
    smoke section with --smoke."""
    spec = load_space(args.space)
    dirs = list(args.data_dir or [])
    data_dir = dirs[0] if dirs else None
    base = {k: v for k, v in (("dataset", args.dataset), ("data_dir", data_dir)) if v}
    changes = {"knobs": {"data_dir": {"grid": dirs}}} if len(dirs) > 1 else None
    if args.full:
        spec = spec.variant("full", base=base, changes=changes)
    elif base:
        spec = spec.variant(None, base=base, changes=changes)
    return spec.with_smoke() if args.smoke else spec


def study_name(spec: StudySpec, args: argparse.Namespace) -> str:
    """--name, else the space's name (`_full` with --full), `_smoke` added with --smoke."""
    if args.name:
        return args.name
    return spec.name + ("_full" if args.full else "") + ("_smoke" if args.smoke else "")


# ================================================================ the script


@dataclass
class StudyScript:
    """One study of the paper: its space (search_spaces/<space>.yaml), its docstring, how it
    analyses a finished study and, optionally, how it prepares the spec before the run."""

    space: str
    doc: str
    analyse: Analyse
    prepare: Prepare | None = None
    findings_file: bool = True  # write findings.md (batch_size's outputs predate it)

    def main(self, argv: list[str] | None = None) -> int:
        """Run the study and report it; the exit status (0, 1 when a trial failed, 2 on a
        user error)."""
        args = parse_args(self.doc, SPACES / f"{self.space}.yaml", argv)
        try:
            kwargs = study_kwargs(args)
            spec = study_spec(args)
            kwargs["name"] = study_name(spec, args)
            if self.prepare is not None:
                spec = self.prepare(spec, args, kwargs)
            result = run_study(spec, **kwargs)
            outcome = self.analyse(result, args)
            if self.findings_file:
                outcome.files.append(write_findings(outcome, result.path))
            log_artifacts(result.mlflow_uri, result.path.name, outcome.files,
                          result.mlflow_study_uid)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        report(outcome, result.path)
        return print_summary(result)


def write_findings(outcome: Outcome, path: Path) -> Path:
    """findings.md in the study folder: the finding, then the headline table."""
    out = Path(path) / FINDINGS_FILE
    out.write_text(f"{outcome.finding}\n\n{outcome.table}")
    return out


def report(outcome: Outcome, path: Path) -> None:
    """The headline table, the finding and the files written."""
    print()
    print(outcome.table)
    print(outcome.finding)
    print(f"wrote {', '.join(f.name for f in outcome.files)} in {path}")


# ================================================================ analyses


def draw(result: StudyResult, analyses: dict[str, dict[str, Any]]) -> list[Path]:
    """Run the analyses {kind: options} on the finished study, writing into its folder, and
    record them (analyses.yaml) so that `imbtrain analyze <study>` draws them again.
    Returns the files written. An analysis that reads the study folder (importance: its
    optuna.db) gets it, without it being recorded (`run_analysis` passes it again)."""
    from imbtrain.analysis import ANALYSES, record_analyses
    from imbtrain.analysis.registry import analysis_options

    files: list[Path] = []
    for kind, options in analyses.items():
        extra = {"results_dir": str(result.path)} if "results_dir" in analysis_options(
            kind) and "results_dir" not in options else {}
        files += ANALYSES[kind](result.results, result.history, result.path, **options,
                                **extra)
    record_analyses(result.path, analyses)
    return files


def finished(result: StudyResult):
    """The trials that finished (status TERMINATED)."""
    res = result.results
    return res[res["status"] == "TERMINATED"] if len(res) else res


def read_table(files: list[Path], stem: str):
    """The Parquet table `<stem>.parquet` among the files an analysis wrote, as a DataFrame."""
    import pandas as pd

    for f in files:
        if f.name == f"{stem}.parquet":
            return pd.read_parquet(f)
    raise UserError(f"the analysis wrote no {stem}.parquet")


def read_markdown(files: list[Path], stem: str) -> str:
    """The Markdown table `<stem>.md` among the files an analysis wrote."""
    for f in files:
        if f.name == f"{stem}.md":
            return f.read_text()
    raise UserError(f"the analysis wrote no {stem}.md")


def sensitivity_study(knob: str, baseline: Any, findings: Callable[[Any], str],
                      metric: str = "test_acc", title: str | None = None) -> Analyse:
    """The `analyse` of a study drawn as imbalance sensitivity (batch_size, pretraining):
    the `sensitivity` analysis of `knob` over `baseline`, its Markdown table, and
    `findings(table)` (the `sensitivity_curve`)."""
    from imbtrain.analysis.sensitivity import sensitivity_curve, sensitivity_markdown

    def analyse(result: StudyResult, args: argparse.Namespace) -> Outcome:
        options = {"knob": knob, "baseline": baseline, "metric": metric}
        files = draw(result, {"sensitivity": {**options, **({"title": title} if title
                                                             else {})}})
        table = sensitivity_curve(result.results, knob, baseline, metric)
        return Outcome(sensitivity_markdown(table), findings(table), files)

    return analyse


def sweep_study(knob: str, reference: str, findings: Callable[[Any], str],
                metrics: tuple[str, ...] = ("test_acc", "test_minority_acc",
                                            "test_majority_acc")) -> Analyse:
    """The `analyse` of a study of a knob swept per variant against the variant
    `reference` (sam_a, label_smoothing, joint_ssl): the `sweep` analysis, its Markdown
    table, and `findings(table)` (the `sweep_table`)."""
    from imbtrain.analysis.sweep import sweep_markdown, sweep_table

    def analyse(result: StudyResult, args: argparse.Namespace) -> Outcome:
        files = draw(result, {"sweep": {"knob": knob, "reference": reference,
                                        "metrics": list(metrics)}})
        table = sweep_table(result.results, knob, list(metrics), reference=reference)
        return Outcome(sweep_markdown(table), findings(table), files)

    return analyse


def best_rows(table, metric: str = "test_acc"):
    """Per group (and train ratio) of a sweep table, its row at the knob value with the
    highest mean `metric`; indexed by group (and train ratio)."""
    keys = [*table.attrs.get("by", []), "group"]
    rows = table.loc[table.groupby(keys)[metric].idxmax()]
    return rows.set_index(keys)


def diff_text(row, metric: str, digits: int = 3) -> str:
    """"+0.012 (p = 0.03)": a sweep or comparison row's paired difference and p-value."""
    d, p = row[f"{metric}_diff"], row[f"{metric}_p"]
    p_text = "–" if p != p else f"{p:.2g}"
    return f"{d:+.{digits}f} (p = {p_text})"


def best_against_reference(table, label: str, groups=None) -> str:
    """"g at <label> = v: test accuracy +d (p = ..), minority accuracy +d (p = ..)" for each
    group of a sweep table but the reference (or `groups`, keys of `best_rows`), at its
    best knob value, joined by "; "."""
    best, knob = best_rows(table), table.attrs["knob"]
    keys = groups if groups is not None else [
        k for k in best.index if (k[-1] if isinstance(k, tuple) else k)
        != table.attrs["reference"]]
    return "; ".join(
        f"{_group_label(k)} at {label} = {best.loc[k, knob]:g}: test "
        f"accuracy {diff_text(best.loc[k], 'test_acc')}, minority accuracy "
        f"{diff_text(best.loc[k], 'test_minority_acc')}" for k in keys)


def _group_label(key) -> str:
    """A `best_rows` key: "group", or "group (r = 0.05)" with a train ratio."""
    return f"{key[-1]} (r = {key[0]:g})" if isinstance(key, tuple) else str(key)


def form_winner(table, forms: tuple[str, str], prefix: str, what: str) -> str:
    """Which of two variants of a sweep wins on test accuracy averaged over the knob (then
    minority accuracy): one sentence, empty when the study ran fewer than both."""
    if not all((table["group"] == f).any() for f in forms):
        return ""
    mean = table.groupby("group")[["test_acc", "test_minority_acc"]].mean()
    win = max(forms, key=lambda f: tuple(mean.loc[f]))
    lose = next(f for f in forms if f != win)
    return (f" Of the two {what}, {win.removeprefix(prefix)} wins: mean test accuracy over "
            f"{table.attrs['knob']} {mean.loc[win, 'test_acc']:.3f} vs "
            f"{mean.loc[lose, 'test_acc']:.3f}, minority {mean.loc[win, 'test_minority_acc']:.3f}"
            f" vs {mean.loc[lose, 'test_minority_acc']:.3f}.")


def forms_finding(table, label: str, forms: tuple[str, str], prefix: str, rival: str,
                  metric: str, claim: str) -> str:
    """The paragraph of a sweep of a method's two forms (sam_a, label_smoothing): each
    variant at its best knob value against the reference, which form wins, and whether the
    better form beats the reference and the `rival` variant (plain SAM, uniform smoothing)
    on `metric`."""
    best = best_rows(table)
    text = (f"Against {table.attrs['reference']} (paired by seed), at each variant's best "
            f"{label}: {best_against_reference(table, label)}."
            + form_winner(table, forms, prefix, "forms"))
    present = [f for f in forms if f in best.index]
    if present:
        top = max(present, key=lambda f: best.loc[f, metric])
        over_rival = rival not in best.index or best.loc[top, metric] >= best.loc[rival, metric]
        text += " " + agreement(best.loc[top, f"{metric}_diff"] > 0 and over_rival, claim,
                                best.loc[top, f"{metric}_p"])
    return text


def agreement(agrees: bool, claim: str, p: float | None = None) -> str:
    """"This agrees with the paper (claim)." or "This does not reproduce the paper's claim
    (claim) at this scale."; with `p`, the p-value of the difference behind it, an
    agreement with p >= 0.05 is one of direction only."""
    if not agrees:
        return f"This does not reproduce the paper's claim ({claim}) at this scale."
    if p is not None and not p < 0.05:
        p_text = "undefined" if p != p else f"{p:.2g}"
        return (f"This agrees in direction with the paper ({claim}), but the difference is "
                f"not significant (p = {p_text}).")
    return f"This agrees with the paper ({claim})."


# ================================================================ trained models


def trial_model(result: StudyResult, trial_id: str):
    """(model, data) of a finished trial: its config rebuilt from results.parquet, the
    weights of its last checkpoint (the EMA weights when it kept an average), in eval mode.
    For analyses that need the models themselves (decision-boundary pictures). The model is
    `create_model`'s: a method that changes it (LDAM's normalised head) is not rebuilt."""
    import torch

    from imbtrain.config import TrainConfig
    from imbtrain.data import build_data
    from imbtrain.models import create_model, model_kwargs
    from imbtrain.tune.trainable import STATE_FILE

    found = sorted(result.path.glob(f"*_{trial_id}/checkpoint_*/{STATE_FILE}"))
    if not found:
        raise UserError(f"no checkpoint of trial {trial_id} in {result.path}")
    # weights_only: the trainable stores numpy's RNG state as a tensor (RELIABILITY.md)
    state = torch.load(found[-1], map_location="cpu", weights_only=True)
    cfg = TrainConfig(**state["config"])
    data = build_data(cfg)
    model = create_model(cfg.model, data.input_shape, data.num_classes,
                         **model_kwargs(cfg, data))
    weights = state["model"]
    if state.get("ema"):  # timm's ModelEmaV3 keeps the averaged model under `module.`
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items()}
    model.load_state_dict(weights)
    return model.eval(), data


# ================================================================ prerequisites


def train_weights(config: dict[str, Any], path: str, cpus: float = 1.0) -> str:
    """Train `config` (imbtrain's loop, as `imbtrain train` does) and save the final model's
    state dict to `path` (the supervised pre-training of the paper's Fig. 4)."""
    import torch

    from imbtrain.config import TrainConfig
    from imbtrain.train import train

    torch.set_num_threads(max(1, int(round(cpus))))
    result = train(TrainConfig(**config), log=lambda line: None)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in result.model.state_dict().items()}, path)
    return path


def pretrain_weights(config: dict[str, Any], path: str, objective: str,
                     cpus: float = 1.0) -> str:
    """Self-supervised pre-training (`imbtrain.pretrain.pretrain`, no labels) of `config`'s
    model on its training images; the weights end up at `path`."""
    import shutil

    import torch

    from imbtrain.config import TrainConfig
    from imbtrain.pretrain import pretrain

    torch.set_num_threads(max(1, int(round(cpus))))
    out = Path(path).with_suffix("")
    written = pretrain(TrainConfig(**config), out, objective=objective, log=lambda line: None)
    shutil.copyfile(written, path)
    return path


@dataclass
class Job:
    """One prerequisite: `fn(*args)` (train_weights or pretrain_weights) writing `path`."""

    path: Path
    fn: Callable[..., str]
    args: tuple


def run_prerequisites(jobs: list[Job], spec: StudySpec, address: str | None,
                      log: Callable[[str], None] = print) -> None:
    """Run the jobs whose file is missing. On a cluster (`address`): as Ray tasks at once,
    each with a trial's resources, so they run where trials run (the GPU workers) and write
    to the shared storage. Locally: one after another in this process, with this machine's
    threads (a Ray worker would first spend seconds importing torch)."""
    todo = [j for j in jobs if not j.path.is_file()]
    for j in jobs:
        if j.path.is_file():
            log(f"prerequisite {j.path} exists; kept")
    if not todo:
        return
    log(f"prerequisites: {len(todo)} job(s) ({', '.join(j.path.name for j in todo)})")
    if not address:
        import torch

        for j in todo:
            j.fn(*j.args, cpus=torch.get_num_threads())
        return
    import ray

    init_ray(address)
    task = ray.remote(num_cpus=spec.cpus_per_trial, num_gpus=spec.gpus_per_trial)(_call)
    ray.get([task.remote(j.fn, *j.args, cpus=spec.cpus_per_trial) for j in todo])


def _call(fn: Callable[..., str], *args: Any, cpus: float = 1.0) -> str:
    return fn(*args, cpus=cpus)
