"""The scaffold of a study: options, spec, run, analyse, report.

A study of the paper is a search space (`search_spaces/<name>.yaml`, with its `smoke` and
`full` sections and the `analyses` it draws) plus its findings (`imbtrain.study.paper.<name>`).
Its module is thin: what the study concludes from the tables its analyses wrote. Everything
else, the same for every study, lives here:

    # search_spaces/batch_size.yaml
    analyses:
      sensitivity: {knob: batch_size, baseline: 128, metric: test_acc}

    from imbtrain.study.script import Outcome, StudyScript

    def analyse(result, drawn) -> Outcome:
        table = drawn.table("sensitivity")             # what the analysis wrote
        return Outcome(table=drawn.markdown("sensitivity"), finding="Batch size matters ...")

    STUDY = StudyScript("batch_size", __doc__, analyse)

`imbtrain study batch_size [options]` and `python studies/batch_size.py [options]` run it.
`StudyScript.main(argv, backend)` parses every option of `imbtrain study` plus `--dataset`,
`--data-dir` (several folders: a `data_dir` grid, one dataset each), `--full`, `--section`
and `--space`; loads the space (its `full` section with `--full`, a named section with
`--section NAME`, its `smoke` section with `--smoke`, then --dataset/--data-dir on top of the
base); lets the study `prepare` the spec (make pre-trained
weights, fill in variants); runs it; draws the space's `analyses` (`draw`: an analysis the
finished study cannot feed is not drawn, one line says why) and records them in
analyses.yaml, so that `imbtrain analyze` draws the same again; calls the study's `analyse`
for its findings; writes the finding and the headline table to `findings.md` (a smoke run's
paragraph is labelled "smoke run: not evidence"); logs the files to the study's MLflow parent
run; prints the table, the finding and the best configuration at each train ratio
(`print_summary`). `--resume` on a finished study trains nothing and analyses it again. A
`UserError` before the trials is one line, `error: ...`, and exit status 2. The study's name
is the space's (`<space>_full` with --full, `<space>_<NAME>` with --section NAME), `_smoke`
added with --smoke, unless --name says otherwise. Any space runs the same way: its analyses
drawn, without findings when no study of the paper is behind it.

Every line goes through `imbtrain.study.console` (a heartbeat while nothing else prints).
The Ray side is handed in, never imported: `backend` is `imbtrain.tune` (what the command
line passes), anything with its `run_study`, `log_artifacts` and `run_prerequisites` (and,
optionally, `stop_ray`, called before the study returns).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from imbtrain.errors import StudyInterrupted, UserError
from imbtrain.study.console import CONSOLE
from imbtrain.study.options import add_script_options, study_kwargs
from imbtrain.study.prerequisites import Job
from imbtrain.study.results import BEST_FILE, StudyResult
from imbtrain.study.space import SECTIONS, StudySpec, load_space
from imbtrain.study.storage import StudyDir, as_study_dir

FINDINGS_FILE = "findings.md"  # the study's paragraph and headline table
SMOKE_LABEL = "smoke run: not evidence"  # a smoke run's paragraph starts with it


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
    (a sentence, the key figure, agreement with the paper) and the files it wrote beyond
    those of the space's analyses (decision_boundary's pictures)."""

    table: str
    finding: str
    files: list[Path] = field(default_factory=list)


@dataclass
class Drawn:
    """The analyses drawn on a finished study (`draw`): per kind, its options and the files
    it wrote; the kinds not drawn, with the reason."""

    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> dict[str, Any]:
        """The options analysis `kind` was drawn with; `UserError` when it was not."""
        if kind in self.skipped:
            raise UserError(f"analysis {kind} was not drawn: {self.skipped[kind]}")
        if kind not in self.options:
            raise UserError(f"the space declares no {kind} analysis (its `analyses` key)")
        return self.options[kind]

    def table(self, kind: str, stem: str | None = None):
        """The Parquet table `<stem>` (default: the analysis's) that `kind` wrote."""
        return read_table(self.files[kind], stem or self._stem(kind))

    def markdown(self, kind: str, stem: str | None = None) -> str:
        """The Markdown table `<stem>.md` that `kind` wrote."""
        return read_markdown(self.files[kind], stem or self._stem(kind))

    def _stem(self, kind: str) -> str:
        """The stem of the files `kind` wrote: its `stem` option, else the function's."""
        from imbtrain.analysis.registry import analysis_options

        return self.of(kind).get("stem") or analysis_options(kind).get("stem") or kind

    @property
    def all_files(self) -> list[Path]:
        return [f for files in self.files.values() for f in files]


Analyse = Callable[[StudyResult, Drawn], Outcome]
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
    """--name, else the space's name (`_full` with --full, `_<NAME>` with --section NAME),
    `_smoke` added with --smoke."""
    if args.name:
        return args.name
    return _name(spec.name, args)


def _name(space: str, args: argparse.Namespace) -> str:
    section = "full" if args.full else getattr(args, "section", None)
    return space + (f"_{section}" if section else "") + ("_smoke" if args.smoke else "")


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
    what it concludes from the analyses drawn (`analyse(result, drawn)`; None: the drawn
    analyses alone) and, optionally, how it prepares the spec before the run."""

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
        from imbtrain.study.catalog import find_space

        with CONSOLE.active():
            try:
                kwargs = study_kwargs(args)
                path = find_space(args.space)  # cheap; loading it imports PyTorch (seconds)
                named = getattr(args, "section", None)
                section = "".join(flag for flag, on in (
                    (" --full", args.full), (f" --section {named}", named),
                    (" --smoke", args.smoke)) if on)
                CONSOLE.step("loading the search space")
                spec = study_spec(args)  # a bad space: its one line, and nothing before it
                CONSOLE.say(f"starting study {args.name or _name(path.stem, args)} ({path}"
                            f"{section})")
                kwargs["name"] = study_name(spec, args)
                CONSOLE.step("loading PyTorch, Ray and MLflow")
                if self.prepare is not None:
                    spec = self.prepare(spec, args, kwargs, backend)
                result = backend.run_study(spec, **kwargs)
                CONSOLE.step("drawing the analyses")
                drawn = draw(result, spec.analyses)
                outcome = self.findings(result, drawn, spec)
                files = drawn.all_files + (outcome.files if outcome else [])
                if outcome is not None and self.findings_file:
                    files.append(write_findings(outcome, result.path, spec.is_smoke))
                study_storage(result).push(*files)  # the storage holds them, not the cache
                CONSOLE.step("logging the files to MLflow")
                if files:
                    backend.log_artifacts(result.mlflow_uri, result.path.name, files,
                                          result.mlflow_study_uid)
            except UserError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            except StudyInterrupted as e:
                print(interrupted_line(e), file=sys.stderr, flush=True)
                return e.status
            report(outcome, result.location, files, spec.is_smoke)
            status = print_summary(result)
            stop = getattr(backend, "stop_ray", None)  # optional: a backend may keep Ray up
            if stop is not None:
                CONSOLE.step("stopping Ray")
                stop()
            return status

    def findings(self, result: StudyResult, drawn: Drawn, spec: StudySpec) -> Outcome | None:
        """The study's `analyse` on the drawn analyses; None without one, or when what it
        needs was not drawn (one line says why)."""
        if self.analyse is None:
            if not spec.analyses:
                CONSOLE.say(f"no analyses: {Path(spec.path).name} declares none (its "
                            "`analyses` key; `imbtrain analyze --list` shows the kinds)")
            return None
        try:
            return self.analyse(result, drawn)
        except UserError as e:
            CONSOLE.say(f"no findings: {e}")
            return None


def study_storage(result: StudyResult) -> StudyDir:
    """Where the study's files go: its storage (its working copy is `result.path`)."""
    return result.storage or as_study_dir(result.path)


def resume_command(argv: list[str] | None = None) -> str:
    """The command line that ran this process, with `--resume` (what finishes a study that
    was interrupted): `imbtrain ...` for the console script and `python -m imbtrain.cli`,
    `python <script> ...` for a study script."""
    argv = list(sys.argv if argv is None else argv)
    prog = Path(argv[0]).name if argv else "imbtrain"
    head = ["imbtrain"] if prog in ("imbtrain", "cli.py", "__main__.py", "-c", "") else [
        "python", argv[0]]
    return shlex.join([*head, *(a for a in argv[1:] if a != "--resume"), "--resume"])


def interrupted_line(e: StudyInterrupted) -> str:
    """What an interrupted study says last: how many trials finished, and how to finish."""
    of = f"/{e.total}" if e.total > 0 else ""  # 0: a search until its time budget
    return (f"interrupted: {e.finished}{of} trials finished; `{resume_command()}` "
            f"finishes it (the study is in {e.location})")


def write_findings(outcome: Outcome, path: Path, smoke: bool = False) -> Path:
    """findings.md in the study folder: the finding, then the headline table."""
    out = Path(path) / FINDINGS_FILE
    out.write_text(f"{_paragraph(outcome, smoke)}\n\n{outcome.table}")
    return out


def _paragraph(outcome: Outcome, smoke: bool) -> str:
    """The finding; a smoke run's (a few one-epoch trials) labelled as no evidence."""
    return f"{SMOKE_LABEL}. {outcome.finding}" if smoke else outcome.finding


def report(outcome: Outcome | None, path: Path | str, files: list[Path] | None = None,
           smoke: bool = False) -> None:
    """The headline table, the finding and the files written."""
    if outcome is not None:
        CONSOLE.say("")
        CONSOLE.say(outcome.table.rstrip("\n"))
        CONSOLE.say(_paragraph(outcome, smoke))
    files = outcome.files if files is None and outcome is not None else files or []
    if files:
        CONSOLE.say(f"wrote {', '.join(f.name for f in files)} in {path}")


def print_summary(result: StudyResult) -> int:
    """The end of a study: where its files are and the best configuration at each train
    ratio. Returns the exit status: 1 when a trial failed (its error is in results.parquet
    and its error.txt); a diverged trial is a result of its settings (listed, status
    DIVERGED), not a failure."""
    from imbtrain.study.export import ratio_file, train_ratios

    res = result.results
    ok = int((res["status"] == "TERMINATED").sum()) if len(res) else 0
    CONSOLE.say(f"study {result.path.name}: {ok}/{len(res)} trials finished; files in "
                f"{result.location}")
    failed = res[res["status"] == "ERROR"] if len(res) else res
    best = result.best_per_ratio
    ratios = train_ratios(res) if len(res) else []
    if len(best) == 1 and len(ratios) == 1:
        (b,) = best.values()
        CONSOLE.say(f"best configuration by mean {result.metric} over seeds: "
                    f"{_describe(res, b, result.metric)} -> {result.location}/{BEST_FILE}")
    elif best:
        CONSOLE.say(f"best configuration at each train ratio (a condition of the data, not a "
                    f"knob), by mean {result.metric} over seeds:")
        width = max(len(f"{r:g}") for r in ratios)
        for r in ratios:
            where = (f"{_describe(res, best[r], result.metric)} -> "
                     f"{result.location}/{ratio_file(Path(BEST_FILE), r)}" if r in best
                     else "no trial finished")
            CONSOLE.say(f"  r = {r:<{width}g}  {where}")
    if result.mlflow_parent_run_id:  # the study's URI is absolute already (run_study)
        uri = result.mlflow_uri
        if uri.startswith(("http://", "https://")):  # a server: its UI is at its own URL
            CONSOLE.say(f"MLflow: parent run {result.mlflow_parent_run_id} on {uri}; open "
                        f"{uri} in a browser")
        else:
            CONSOLE.say(f"MLflow: parent run {result.mlflow_parent_run_id} in {uri}; browse "
                        f"it with `mlflow ui --backend-store-uri {uri} --host 127.0.0.1`")
    for row in failed.itertuples():
        CONSOLE.say(f"FAILED {row.trial_name} ({row.trial_id}): {row.error}")
    for row in (res[res["status"] == "DIVERGED"] if len(res) else res).itertuples():
        CONSOLE.say(f"DIVERGED {row.trial_name} ({row.trial_id}): {row.error}")
    return 1 if len(failed) else 0


def _describe(res, best, metric: str) -> str:
    """"batch_size=32 (val_bal_acc 0.9000 over 2 seeds)", the variant first when the study
    has variants."""
    from imbtrain.study.export import knobs_of

    knobs = knobs_of(best, res)
    what = ", ".join(f"{k}={v}" for k, v in knobs.items()) or "the only configuration"
    variant = _variant_of(res, best.config)
    what = f"variant {variant} ({what})" if variant else what
    return f"{what} ({metric} {best.mean:.4f} over {best.n} seed{'s' * (best.n != 1)})"


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


def draw(result: StudyResult, analyses: dict[str, dict[str, Any]],
         log: Callable[[str], None] = CONSOLE.say) -> Drawn:
    """Run the analyses {kind: options} (a space's `analyses`) on the finished study, writing
    into its folder, and record those drawn (analyses.yaml) so that `imbtrain analyze
    <study>` draws them again. An analysis the study cannot feed (a `UserError`: too few
    trials finished, a knob value missing) or that would be trivial for it (its `fits` rule:
    importance of one knob) is not drawn; `log` gets one line saying why. An
    analysis that reads the study folder (importance: its optuna.db) gets it, without it
    being recorded (`run_analysis` passes it again)."""
    from imbtrain.analysis import ANALYSES, record_analyses
    from imbtrain.analysis.registry import analysis_options, fits

    drawn = Drawn()
    for kind, options in analyses.items():
        extra = {"results_dir": str(result.path)} if "results_dir" in analysis_options(
            kind) and "results_dir" not in options else {}
        try:
            reason = fits(kind, result.results, result.history, {**options, **extra})
            if reason:
                raise UserError(reason)
            files = ANALYSES[kind](result.results, result.history, result.path, **options,
                                   **extra)
        except UserError as e:
            drawn.skipped[kind] = str(e)
            log(f"analysis {kind} not drawn: {e}")
            continue
        drawn.options[kind], drawn.files[kind] = dict(options), list(files)
    if drawn.options:
        record_analyses(study_storage(result), drawn.options)
    return drawn


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


def sensitivity_study(findings: Callable[..., str]) -> Analyse:
    """The `analyse` of a study drawn as imbalance sensitivity (batch_size, pretraining): the
    space's `sensitivity` analysis, its Markdown table, and `findings(table, knob, baseline)`
    on its `sensitivity_curve`."""

    def analyse(result: StudyResult, drawn: Drawn) -> Outcome:
        from imbtrain.analysis.sensitivity import sensitivity_curve

        opts = drawn.of("sensitivity")
        knob, baseline = opts["knob"], opts["baseline"]
        table = sensitivity_curve(result.results, knob, baseline, opts.get("metric", "test_acc"))
        return Outcome(drawn.markdown("sensitivity"), findings(table, knob, baseline))

    return analyse


def sweep_study(findings: Callable[[Any], str]) -> Analyse:
    """The `analyse` of a study of a knob swept per variant against a reference variant
    (sam_a, label_smoothing, joint_ssl): the space's `sweep` analysis, its Markdown table,
    and `findings(table)` on its `sweep_table`."""

    def analyse(result: StudyResult, drawn: Drawn) -> Outcome:
        from imbtrain.analysis.sweep import METRICS, sweep_table

        opts = drawn.of("sweep")
        table = sweep_table(result.results, opts["knob"], list(opts.get("metrics", METRICS)),
                            opts.get("group", "variant"), opts.get("reference"))
        return Outcome(drawn.markdown("sweep"), findings(table))

    return analyse
