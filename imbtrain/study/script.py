"""The scaffold of a study: options, spec, run, analyse, report.

A study of the paper is a search space (`search_spaces/<name>.yaml`, with its `smoke` and
`full` sections) plus an analysis (`imbtrain.study.paper.<name>`). Its module is thin: what
the study draws and what it concludes. Everything else, the same for every study, lives here:

    from imbtrain.study.script import Outcome, StudyScript, draw

    def analyse(result, args) -> Outcome:
        files = draw(result, {"sensitivity": {"knob": "batch_size", "baseline": 128}})
        return Outcome(table=markdown, finding="Batch size matters more ...", files=files)

    STUDY = StudyScript("batch_size", __doc__, analyse)

`imbtrain study batch_size [options]` and `python studies/batch_size.py [options]` run it.
`StudyScript.main(argv, backend)` parses every option of `imbtrain study` plus `--dataset`,
`--data-dir` (several folders: a `data_dir` grid, one dataset each), `--full`, `--section`
and `--space`; loads the space (its `full` section with `--full`, a named section with
`--section NAME`, its `smoke` section with `--smoke`, then --dataset/--data-dir on top of the
base); lets the study `prepare` the spec (make pre-trained
weights, fill in variants); runs it; calls `analyse`; writes the finding and the headline
table to `findings.md`; logs the files to the study's MLflow parent run; prints the table,
the finding and the best configuration (`print_summary`). `--resume` on a finished study
trains nothing and analyses it again. A `UserError` anywhere is one line, `error: ...`, and
exit status 2. The study's name is the space's (`<space>_full` with --full, `<space>_<NAME>`
with --section NAME), `_smoke` added with --smoke, unless --name says otherwise. A space with
no study of the paper behind it runs the same way, without the analysis.

The Ray side is handed in, never imported: `backend` is `imbtrain.tune` (what the command
line passes), anything with its `run_study`, `log_artifacts` and `run_prerequisites`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from imbtrain.errors import UserError
from imbtrain.study.options import add_script_options, study_kwargs
from imbtrain.study.prerequisites import Job
from imbtrain.study.results import BEST_FILE, StudyResult
from imbtrain.study.space import SECTIONS, StudySpec, load_space

FINDINGS_FILE = "findings.md"  # the study's paragraph and headline table


class Backend(Protocol):
    """What a study needs of the Ray side (`imbtrain.tune` is one)."""

    def run_study(self, spec: StudySpec, **options: Any) -> StudyResult: ...

    def log_artifacts(self, mlflow_uri: str | None, study_name: str,
                      paths: list, uid: str | None = None) -> str | None: ...

    def run_prerequisites(self, jobs: list[Job], spec: StudySpec,
                          address: str | None) -> None: ...


@dataclass
class Outcome:
    """What a study's analysis found: the headline table (Markdown, printed), one paragraph
    (a sentence, the key figure, agreement with the paper) and the files it wrote."""

    table: str
    finding: str
    files: list[Path] = field(default_factory=list)


Analyse = Callable[[StudyResult, argparse.Namespace], Outcome]
Prepare = Callable[[StudySpec, argparse.Namespace, dict[str, Any], Backend], StudySpec]


# ================================================================ options and spec


def parse_args(doc: str, space: str | Path, argv: list[str] | None) -> argparse.Namespace:
    """The options of `imbtrain study` plus a study script's, `--space` defaulting to
    `space`."""
    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    add_script_options(p)
    _add_space_option(p, space)
    return p.parse_args(argv)


def _add_space_option(p: argparse.ArgumentParser, space: str | Path | None) -> None:
    p.add_argument("--space", default=None if space is None else str(space),
                   help="search-space file (default: the study's own, %(default)s)")


def study_spec(args: argparse.Namespace) -> StudySpec:
    """The space, its full section with --full (a named section with --section),
    --dataset / --data-dir on its base, and its smoke section with --smoke."""
    spec = load_space(args.space)
    dirs = list(args.data_dir or [])
    data_dir = dirs[0] if dirs else None
    base = {k: v for k, v in (("dataset", args.dataset), ("data_dir", data_dir)) if v}
    changes = {"knobs": {"data_dir": {"grid": dirs}}} if len(dirs) > 1 else None
    section = _section(args, spec)
    if section:
        spec = spec.variant(section, base=base, changes=changes)
    elif base:
        spec = spec.variant(None, base=base, changes=changes)
    return spec.with_smoke() if args.smoke else spec


def study_name(spec: StudySpec, args: argparse.Namespace) -> str:
    """--name, else the space's name (`_full` with --full), `_smoke` added with --smoke."""
    if args.name:
        return args.name
    section = "full" if args.full else getattr(args, "section", None)
    return spec.name + (f"_{section}" if section else "") + ("_smoke" if args.smoke else "")


def _section(args: argparse.Namespace, spec: StudySpec) -> str | None:
    """The section --full or --section names (None: the space as it is); one that the space
    does not have is a UserError naming those it has."""
    named = getattr(args, "section", None)
    if args.full and named:
        raise UserError("give --full or --section, not both")
    if not named:
        return "full" if args.full else None
    have = sorted(k for k in spec.sections if k not in SECTIONS)
    if named not in have:
        raise UserError(f"--section {named}: {spec.path} has no section {named!r}; its named "
                        f"sections: {', '.join(have) or 'none'}")
    return named


# ================================================================ a study


class Study:
    """A study that runs by name: its options beyond `imbtrain study`'s (`add_arguments`)
    and how it runs (`run`). `main` is its command line."""

    name: str = ""
    doc: str = ""

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        """The study's own options (none by default)."""

    def run(self, args: argparse.Namespace, backend: Backend) -> int:
        raise NotImplementedError

    def parser(self, prog: str | None = None) -> argparse.ArgumentParser:
        """Every option of the study: `imbtrain study`'s and its own."""
        first = (self.doc or "").strip().splitlines()
        p = argparse.ArgumentParser(prog=prog, description=first[0] if first else None)
        add_script_options(p)
        self.add_arguments(p)
        return p

    def main(self, argv: list[str] | None, backend: Backend) -> int:
        """Parse `argv` and run; the exit status (0, 1 when a trial failed, 2 on a user
        error)."""
        return self.run(self.parser().parse_args(argv), backend)


@dataclass
class StudyScript(Study):
    """A study of one search space (a name of `search_spaces/` or a file), its docstring,
    how it analyses a finished study (None: it reports the study alone) and, optionally,
    how it prepares the spec before the run."""

    space: str
    doc: str = ""
    analyse: Analyse | None = None
    prepare: Prepare | None = None
    findings_file: bool = True  # write findings.md (batch_size's outputs predate it)

    @property
    def name(self) -> str:
        return Path(self.space).stem

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        from imbtrain.study.catalog import find_space

        try:
            default = find_space(self.space)
        except UserError:
            default = self.space  # reported when the study runs
        _add_space_option(p, default)

    def run(self, args: argparse.Namespace, backend: Backend) -> int:
        try:
            kwargs = study_kwargs(args)
            spec = study_spec(args)
            kwargs["name"] = study_name(spec, args)
            if self.prepare is not None:
                spec = self.prepare(spec, args, kwargs, backend)
            result = backend.run_study(spec, **kwargs)
            if self.analyse is None:
                return print_summary(result)
            outcome = self.analyse(result, args)
            if self.findings_file:
                outcome.files.append(write_findings(outcome, result.path))
            backend.log_artifacts(result.mlflow_uri, result.path.name, outcome.files,
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


def print_summary(result: StudyResult) -> int:
    """The end of a study: where its files are and the best configuration. Returns the exit
    status: 1 when a trial failed (its error is in results.parquet and its error.txt); a
    diverged trial is a result of its settings (listed, status DIVERGED), not a failure."""
    res = result.results
    ok = int((res["status"] == "TERMINATED").sum()) if len(res) else 0
    print(f"study {result.path.name}: {ok}/{len(res)} trials finished; files in {result.path}")
    failed = res[res["status"] == "ERROR"] if len(res) else res
    if result.best is not None:
        knobs = {k: v for k, v in result.best.to_dict().items() if k != "seed"
                 and f"config/{k}" in res and res[f"config/{k}"].nunique() > 1}
        what = ", ".join(f"{k}={v}" for k, v in knobs.items()) or "the only configuration"
        variant = _variant_of(res, result.best)
        what = f"variant {variant} ({what})" if variant else what
        print(f"best configuration by mean {result.metric} over seeds: {what} -> "
              f"{result.path}/{BEST_FILE}")
    if result.mlflow_parent_run_id:  # the study's URI is absolute already (run_study)
        uri = result.mlflow_uri
        if uri.startswith(("http://", "https://")):  # a server: its UI is at its own URL
            print(f"MLflow: parent run {result.mlflow_parent_run_id} on {uri}; open {uri} "
                  "in a browser")
        else:
            print(f"MLflow: parent run {result.mlflow_parent_run_id} in {uri}; browse it "
                  f"with `mlflow ui --backend-store-uri {uri} --host 127.0.0.1`")
    for row in failed.itertuples():
        print(f"FAILED {row.trial_name} ({row.trial_id}): {row.error}")
    for row in (res[res["status"] == "DIVERGED"] if len(res) else res).itertuples():
        print(f"DIVERGED {row.trial_name} ({row.trial_id}): {row.error}")
    return 1 if len(failed) else 0


def _variant_of(res, best) -> str | None:
    """The variant (studies with `variants`) whose trials have the best configuration."""
    if "variant" not in res.columns:
        return None
    same = res["status"] == "TERMINATED"
    for key, value in best.to_dict().items():
        if key != "seed" and f"config/{key}" in res.columns:
            same &= res[f"config/{key}"] == value
    names = res.loc[same, "variant"].dropna().unique()
    return str(names[0]) if len(names) else None


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

    def analyse(result: StudyResult, args: argparse.Namespace) -> Outcome:
        from imbtrain.analysis.sensitivity import sensitivity_curve, sensitivity_markdown

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

    def analyse(result: StudyResult, args: argparse.Namespace) -> Outcome:
        from imbtrain.analysis.sweep import sweep_markdown, sweep_table

        files = draw(result, {"sweep": {"knob": knob, "reference": reference,
                                        "metrics": list(metrics)}})
        table = sweep_table(result.results, knob, list(metrics), reference=reference)
        return Outcome(sweep_markdown(table), findings(table), files)

    return analyse
