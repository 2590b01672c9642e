"""The registry of analyses, and `run_analysis`, which re-draws them for a finished study.

An analysis is a function

    fn(results: DataFrame, history: DataFrame, out_dir: Path, **options) -> list[Path]

from a study's results.parquet and history.parquet (`imbtrain.study.results`) to the files it
wrote in `out_dir` (PNG figures, Parquet and Markdown tables), registered under its kind:

    @register_analysis("variance")
    def variance_analysis(results, history, out_dir, knob="augment", ...): ...

It raises `UserError` when the study lacks what it needs (a column, a knob value), saying
what is missing. `imbtrain analyze RESULTS_DIR --kind K` calls `run_analysis`.

A study's search space declares the analyses it draws (`analyses:`, recorded in its
study.yaml); the study records those it drew, with their options, in `analyses.yaml` beside
results.parquet (`record_analyses`), so that `imbtrain analyze RESULTS_DIR` alone re-draws
exactly those (else the space's, else every kind the results can feed).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from imbtrain.errors import UserError
from imbtrain.files import read_yaml
from imbtrain.registry import ANALYSES
from imbtrain.study.results import OPTUNA_FILE
from imbtrain.study.storage import StudyDir, as_study_dir

Analysis = Callable[..., list[Path]]

ANALYSES_FILE = "analyses.yaml"  # {kind: {option: value}} a study drew, beside its tables
ANALYSES_KIND = "a mapping of analysis kind -> options (the analyses a study drew)"

register_analysis = ANALYSES.register
"""`@register_analysis(kind, fits=None)`: `fn` is the analysis `kind` (`imbtrain analyze --kind
<kind>`), in `imbtrain.registry.ANALYSES` (filled by the modules of imbtrain.analysis on
import). `fits(results, history, **options) -> reason | None` says why the analysis would be
trivial for a study (a one-knob importance bar): a study and `imbtrain analyze` without
`--kind` then skip it with that reason."""


def fits(kind: str, results: pd.DataFrame, history: pd.DataFrame,
         options: dict[str, Any]) -> str | None:
    """Why analysis `kind` would be trivial for this study (its `fits` rule), else None."""
    rule = ANALYSES.meta(kind).get("fits")
    return None if rule is None else rule(results, history, **options)


def analysis_options(kind: str) -> dict[str, Any]:
    """The options of analysis `kind` and their defaults (`inspect.Parameter.empty` for a
    required one)."""
    params = list(inspect.signature(ANALYSES[kind]).parameters.values())[3:]
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY
            or p.kind is p.POSITIONAL_OR_KEYWORD}


def record_analyses(results_dir: str | Path | StudyDir, drawn: dict[str, dict[str, Any]]) -> Path:
    """Write `analyses.yaml` ({kind: options}) into the study folder (a path, a URI or a
    `StudyDir`: its working copy, pushed), so that `imbtrain analyze RESULTS_DIR` re-draws
    those analyses with those options."""
    unknown = sorted(set(drawn) - set(ANALYSES))
    if unknown:
        raise UserError(f"unknown analysis kind(s) {', '.join(unknown)}; kinds: "
                        f"{', '.join(sorted(ANALYSES))}")
    study = as_study_dir(results_dir)
    path = study.local / ANALYSES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({k: _plain(dict(v or {})) for k, v in drawn.items()},
                                   sort_keys=False))
    study.push(path)
    return path


def _plain(value: Any) -> Any:
    """Options as YAML's plain types: tuples as lists, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


def read_tables(results_dir: str | Path | StudyDir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """results.parquet and history.parquet (empty when absent) of a study folder."""
    from imbtrain.study.results import read_history, read_results

    return read_results(results_dir), read_history(results_dir)


def _options_for(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of `options` that `kind` takes: flat keys any kind takes, and
    `{kind: {...}}` (or "kind.key") entries for this kind alone."""
    takes = analysis_options(kind)
    own = {k: v for k, v in options.items() if k in takes}
    own.update(options.get(kind) or {})
    own.update({k.split(".", 1)[1]: v for k, v in options.items()
                if k.startswith(f"{kind}.")})
    bad = sorted(set(own) - set(takes))
    if bad:
        raise UserError(f"analysis {kind} has no option {', '.join(bad)}; options: "
                        f"{', '.join(takes) or 'none'}")
    return own


def _check_options(kinds: Iterable[str], options: dict[str, Any]) -> None:
    """Every flat option must be taken by at least one of the analyses run."""
    kinds = list(kinds)
    taken = {name for k in kinds for name in analysis_options(k)}
    for key, value in options.items():
        kind = key.split(".", 1)[0] if "." in key else key if isinstance(value, dict) else None
        if kind is not None:
            if kind not in ANALYSES:
                raise UserError(f"option {key}: no analysis kind {kind!r}; kinds: "
                                f"{', '.join(sorted(ANALYSES))}")
        elif key not in taken:
            raise UserError(f"option {key!r} is taken by none of the analyses "
                            f"{', '.join(kinds)}")


def run_analysis(results_dir: str | Path, kinds: Iterable[str] | None = None,
                 options: dict[str, Any] | None = None, out_dir: str | Path | None = None,
                 log: Callable[[str], None] = print) -> dict[str, list[Path]]:
    """Draw the analyses `kinds` of the finished study in `results_dir`; the files written,
    per kind. Files go to `out_dir` (default: the study folder, beside results.parquet).

    `kinds` None: those recorded in the study's analyses.yaml, else those its space declared
    (study.yaml), else every registered kind; the last two skip (with a line to `log`) those
    the study cannot feed. Options: the study's
    recorded ones, updated by `options`, whose keys are an option name (given to every kind
    that takes it), `kind.option`, or a kind mapped to a dict of its options. An analysis
    that needs the study folder itself (importance: optuna.db) takes it as `results_dir`.
    """
    study = as_study_dir(results_dir)
    study.pull(OPTUNA_FILE)  # the importance analysis reads it from the working copy
    results_dir = study.local
    recorded = _recorded(study)
    declared = {} if recorded else _declared(study)
    options = dict(options or {})
    explicit = kinds is not None
    kinds = list(kinds) if explicit else (list(recorded) or list(declared) or sorted(ANALYSES))
    recorded = recorded or declared  # their options
    unknown = [k for k in kinds if k not in ANALYSES]
    if unknown:
        raise UserError(f"unknown analysis kind(s) {', '.join(unknown)}; kinds: "
                        f"{', '.join(sorted(ANALYSES))}")
    _check_options(kinds, options)
    results, history = read_tables(study)
    out = Path(out_dir) if out_dir is not None else results_dir
    written: dict[str, list[Path]] = {}
    for kind in kinds:
        opts = {**(recorded.get(kind) or {}), **_options_for(kind, options)}
        if "results_dir" in analysis_options(kind):
            opts.setdefault("results_dir", str(results_dir))
        try:
            _check_required(kind, opts)
            reason = None if explicit else fits(kind, results, history, opts)
            if reason:
                raise UserError(reason)
            written[kind] = ANALYSES[kind](results, history, out, **opts)
        except UserError as e:
            if explicit or (kind in recorded and kind not in declared):
                raise UserError(f"analysis {kind}: {e}") from e
            log(f"skipped {kind}: {e}")
            continue
        if out_dir is None:  # into the study's storage (nothing to do for a local folder)
            study.push(*written[kind])
        log(f"{kind}: wrote {', '.join(p.name for p in written[kind])} in "
            f"{study.uri if out_dir is None else out}")
    return written


def _check_required(kind: str, opts: dict[str, Any]) -> None:
    missing = [k for k, v in analysis_options(kind).items()
               if v is inspect.Parameter.empty and k not in opts]
    if missing:
        raise UserError(f"needs option(s) {', '.join(missing)} (e.g. --option "
                        f"{kind}.{missing[0]}=...)")


def _declared(study: StudyDir) -> dict[str, dict[str, Any]]:
    """The analyses the study's space declared (its study.yaml's `analyses`)."""
    from imbtrain.study.results import STUDY_FILE, STUDY_KIND

    path = study.pull(STUDY_FILE)[0]
    data = read_yaml(path, STUDY_KIND) if path is not None and path.is_file() else None
    analyses = data.get("analyses") if isinstance(data, dict) else None
    return {str(k): dict(v or {}) for k, v in analyses.items()} if isinstance(
        analyses, dict) else {}


def _recorded(study: StudyDir) -> dict[str, dict[str, Any]]:
    path = study.pull(ANALYSES_FILE)[0]
    if path is None or not path.is_file():
        return {}
    data = read_yaml(path, ANALYSES_KIND, empty_ok=True) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict | None) for v in data.values()):
        raise UserError(f"{study.file(ANALYSES_FILE)}: expected a mapping of analysis kind "
                        "-> options")
    return {str(k): dict(v or {}) for k, v in data.items()}
