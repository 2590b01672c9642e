"""`report.html`: one static page of a finished study, its plots embedded, readable offline.

    write_report("runs/batch_size")          # -> runs/batch_size/report.html

The page reads the study folder's tables only (`results.parquet`, `history.parquet`,
`study.yaml`, `best.yaml`, `optuna.db` when the study searched with Optuna) and, for a study
of `imbtrain autotune`, its summary (`autotune.yaml`: the splits' class counts, the final
model's and the baselines' test metrics and confusion matrices). Sections, each with its id:

- `data`: the class counts (each train ratio's train counts; autotune: train, val, test);
- `searched`: the knobs and their distributions, the searcher, scheduler and metric;
- `compute`: trials, epochs trained, trial-seconds, and the seconds of each trial;
- `best`: the best configuration (the knobs that varied) and its metric;
- `per-class`: the per-class test accuracy of the best trial (autotune: the final model
  against ERM, and both confusion matrices);
- `curves`: the validation metric by epoch of the best trials;
- `sensitivity`: the importance of each knob for the metric (Optuna's fANOVA on optuna.db,
  else eta squared of the trials), and the metric against each knob;
- `baselines` and `prescriptions` (autotune only): the test metrics beside the baselines, by
  how much the final model wins or why it does not, and which of the paper's prescriptions
  held on this data.

Every image is a PNG inside the page (`data:image/png;base64,...`): the page links to no file
and runs no script. Ray-free and MLflow-free: `imbtrain report STUDY_DIR` draws it for any
study folder.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from imbtrain.errors import UserError
from imbtrain.study.results import BEST_FILE, RESULTS_FILE, STUDY_FILE, read_tables
from imbtrain.study.space import budget_text

REPORT_FILE = "report.html"
AUTOTUNE_FILE = "autotune.yaml"  # an autotune's summary, in its folder
SEARCH_DIR = "search"  # an autotune's Ray Tune study, inside its folder
SECTIONS = ("data", "searched", "compute", "best", "per-class", "curves", "sensitivity")
AUTOTUNE_SECTIONS = ("baselines", "prescriptions")
CURVES_TOP = 5  # learning curves of this many best trials


# ================================================================ figures


def _figure(ncols: int = 1, size: tuple[float, float] = (5.5, 3.6)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(size[0] * ncols, size[1]), squeeze=False)
    return fig, axes[0]


def png_data_uri(fig) -> str:
    """A matplotlib figure as a `data:image/png;base64,...` URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _table(df: pd.DataFrame, digits: int = 4) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return "" if math.isnan(v) else f"{v:.{digits}g}" if abs(v) >= 1000 else \
                f"{v:.{digits}f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _bars(ax, labels: list[str], series: dict[str, list[float]], ylabel: str) -> None:
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, labels, rotation=45 if len(labels) > 6 else 0, ha="right"
                  if len(labels) > 6 else "center")
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8)


# ================================================================ the study's facts


def _meta(study_dir: Path) -> dict[str, Any]:
    path = study_dir / STUDY_FILE
    if not path.is_file():
        return {}
    try:
        meta = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise UserError(f"{path} is not valid YAML; it records what the study searched") \
            from None
    return meta if isinstance(meta, dict) else {}


def _finished(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    if not len(results) or metric not in results:
        return results.iloc[0:0]
    ok = results[(results["status"] == "TERMINATED") & results[metric].notna()]
    return ok


def _score(results: pd.DataFrame, metric: str) -> pd.Series:
    """A trial's metric at its best epoch (model selection), else its last."""
    best = f"best/{metric}"
    if best in results:
        return results[best].fillna(results[metric])
    return results[metric]


def _ranked(results: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    ok = _finished(results, metric)
    if not len(ok):
        return ok
    return ok.assign(_score=_score(ok, metric)).sort_values(
        "_score", ascending=mode == "min", kind="stable")


def _knob_columns(results: pd.DataFrame, meta: dict[str, Any]) -> list[str]:
    """The config keys that varied: the space's knobs, else every config column that did."""
    keys = list((meta.get("knobs") or {}).keys())
    if meta.get("variants"):
        keys.append("variant")
    if not keys:
        keys = [c.removeprefix("config/") for c in results.columns if c.startswith("config/")
                and results[c].astype(str).nunique() > 1 and c != "config/seed"]
    return [k for k in keys if (f"config/{k}" in results or k in results)]


def _col(results: pd.DataFrame, key: str) -> pd.Series:
    return results[f"config/{key}"] if f"config/{key}" in results else results[key]


# ================================================================ sections


def section_data(results: pd.DataFrame, summary: dict[str, Any] | None) -> str:
    if summary and summary.get("class_counts"):
        counts = summary["class_counts"]
        names = [str(n) for n in summary["class_names"]]
        fig, (ax,) = _figure(size=(max(5.5, 0.5 * len(names) + 3), 3.6))
        _bars(ax, names, {split: counts[split] for split in counts}, "samples")
        ax.set_title("class counts of each split")
        table = pd.DataFrame({"class": names, **{s: counts[s] for s in counts}})
        note = html.escape(summary.get("split_note", ""))
        return (f"<p>{note}</p>" + _img(png_data_uri(fig), "class counts") + _table(table))
    if not len(results) or "train_counts" not in results:
        return "<p>The study's results hold no class counts.</p>"
    by = "config/train_ratio" if "config/train_ratio" in results else None
    rows = results.drop_duplicates(by) if by else results.iloc[:1]
    series = {f"r={r:g}" if by else "train": list(map(int, counts)) for r, counts in
              zip(rows[by] if by else [1.0], rows["train_counts"], strict=True)
              if counts is not None}
    if not series:
        return "<p>The study's results hold no class counts.</p>"
    k = len(next(iter(series.values())))
    fig, (ax,) = _figure(size=(max(5.5, 0.5 * k + 3), 3.6))
    _bars(ax, [str(c) for c in range(k)], series, "train samples")
    ax.set_yscale("log")
    ax.set_title("train counts a class at each train ratio")
    table = pd.DataFrame({"class": list(range(k)), **series})
    return _img(png_data_uri(fig), "class counts") + _table(table)


def section_searched(results: pd.DataFrame, meta: dict[str, Any]) -> str:
    knobs = meta.get("knobs") or {}
    rows = [{"knob": k, "distribution": next(iter(v)), "values": str(next(iter(v.values())))}
            for k, v in knobs.items() if isinstance(v, dict) and v]
    for name, over in (meta.get("variants") or {}).items():
        rows.append({"knob": "variant", "distribution": name, "values": str(over)})
    facts = {"searcher": meta.get("searcher", "?"), "scheduler": meta.get("scheduler", "?"),
             "metric": f"{meta.get('metric', '?')} ({meta.get('mode', '?')})",
             "train ratios": ", ".join(f"{r:g}" for r in meta.get("train_ratios", [])),
             "seeds": ", ".join(str(s) for s in meta.get("seeds", [])),
             "trials asked": budget_text(int(meta.get("num_trials", len(results))),
                                         meta.get("time_budget_s"))}
    lines = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>"
                    for k, v in facts.items())
    body = f"<ul>{lines}</ul>"
    return body + (_table(pd.DataFrame(rows)) if rows else "<p>No knobs were varied.</p>")


def section_compute(results: pd.DataFrame, summary: dict[str, Any] | None) -> str:
    if not len(results):
        return "<p>No trials ran.</p>"
    status = results["status"].value_counts().to_dict()
    seconds = results["time_total_s"].fillna(0.0) if "time_total_s" in results else \
        pd.Series([0.0] * len(results))
    epochs = int(results["epochs_run"].fillna(0).sum()) if "epochs_run" in results else 0
    facts = {"trials": len(results), "by status": ", ".join(f"{k} {v}" for k, v in
                                                            status.items()),
             "epochs trained": epochs, "trial-seconds": f"{seconds.sum():.1f}"}
    if summary and summary.get("compute"):
        facts.update(summary["compute"])
    lines = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>"
                    for k, v in facts.items())
    fig, (ax,) = _figure()
    names = results["trial_name"].astype(str).tolist()
    ax.barh(np.arange(len(names)), seconds.to_numpy(), color="tab:gray")
    ax.set_yticks(np.arange(len(names)), names, fontsize=6 if len(names) > 12 else 8)
    ax.set_xlabel("seconds of training")
    ax.set_title("compute of each trial")
    return f"<ul>{lines}</ul>" + _img(png_data_uri(fig), "compute of each trial")


def section_best(results: pd.DataFrame, meta: dict[str, Any], study_dir: Path,
                 metric: str, mode: str) -> str:
    ranked = _ranked(results, metric, mode)
    if not len(ranked):
        return "<p>No trial finished with the metric, so there is no best configuration.</p>"
    knobs = _knob_columns(results, meta)
    top = ranked.head(10)
    table = pd.DataFrame({"trial": top["trial_name"].astype(str),
                          **{k: _col(top, k).astype(str) for k in knobs},
                          metric: top["_score"]})
    best = ranked.iloc[0]
    text = ", ".join(f"{k}={_col(ranked, k).iloc[0]}" for k in knobs) or "the only one"
    path = study_dir / BEST_FILE
    where = f" (the full config: {BEST_FILE})" if path.is_file() else ""
    return (f"<p>Best trial <b>{html.escape(str(best['trial_name']))}</b>: "
            f"{html.escape(text)}, {metric} {best['_score']:.4f}{where}.</p>" + _table(table))


def _confusion_plot(ax, conf: np.ndarray, names: list[str], title: str) -> None:
    conf = np.asarray(conf, dtype=float)
    norm = conf / np.clip(conf.sum(axis=1, keepdims=True), 1, None)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{int(conf[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, fontsize=7, rotation=45)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)


def section_per_class(results: pd.DataFrame, summary: dict[str, Any] | None, metric: str,
                      mode: str) -> str:
    if summary and summary.get("models"):
        names = [str(n) for n in summary["class_names"]]
        models = summary["models"]
        series = {m: models[m]["per_class_acc"] for m in models}
        fig, (ax,) = _figure(size=(max(5.5, 0.6 * len(names) + 3), 3.6))
        _bars(ax, names, series, "test accuracy")
        ax.set_ylim(0, 1.05)
        ax.set_title("per-class test accuracy")
        shown = [m for m in ("final", "erm") if m in models] or list(models)[:2]
        cfig, axes = _figure(ncols=len(shown), size=(4.2, 4.0))
        for a, m in zip(axes, shown, strict=True):
            _confusion_plot(a, np.array(models[m]["confusion"]), names,
                            f"{m}: confusion (test)")
        table = pd.DataFrame({"class": names, **series})
        return (_img(png_data_uri(fig), "per-class test accuracy")
                + _img(png_data_uri(cfig), "confusion matrices") + _table(table))
    ranked = _ranked(results, metric, mode)
    cols = sorted((c for c in results.columns if c.startswith("test_class_acc_")),
                  key=lambda c: int(c.rsplit("_", 1)[1]))
    if not len(ranked) or not cols:
        return "<p>The results hold no per-class accuracies.</p>"
    best = ranked.iloc[0]
    worst = ranked.iloc[-1]
    labels = [c.rsplit("_", 1)[1] for c in cols]
    series = {f"best: {best['trial_name']}": [float(best[c]) for c in cols]}
    if len(ranked) > 1:
        series[f"worst: {worst['trial_name']}"] = [float(worst[c]) for c in cols]
    fig, (ax,) = _figure(size=(max(5.5, 0.5 * len(cols) + 3), 3.6))
    _bars(ax, labels, series, "test accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("class")
    ax.set_title("per-class test accuracy of the best and the worst trial")
    return _img(png_data_uri(fig), "per-class test accuracy") + _table(
        pd.DataFrame({"class": labels, **series}))


def section_curves(results: pd.DataFrame, history: pd.DataFrame, metric: str,
                   mode: str) -> str:
    ranked = _ranked(results, metric, mode)
    if not len(ranked) or not len(history) or metric not in history:
        return "<p>No learning curves: the history holds no epoch of the metric.</p>"
    fig, axes = _figure(ncols=2)
    for row in ranked.head(CURVES_TOP).itertuples():
        h = history[history["trial_id"] == row.trial_id].sort_values("epoch")
        axes[0].plot(h["epoch"], h[metric], marker="o", ms=3, label=str(row.trial_name))
        if "train_loss" in h:
            axes[1].plot(h["epoch"], h["train_loss"], marker="o", ms=3)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel(metric)
    axes[0].legend(fontsize=6)
    axes[0].set_title(f"{metric} of the {min(CURVES_TOP, len(ranked))} best trials")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("train loss")
    axes[1].set_title("train loss")
    return _img(png_data_uri(fig), "learning curves")


def section_sensitivity(results: pd.DataFrame, study_dir: Path, meta: dict[str, Any],
                        metric: str) -> str:
    from imbtrain.analysis.importance import knob_importance

    ok = _finished(results, metric)
    knobs = _knob_columns(results, meta)
    if len(ok) < 2 or not knobs:
        return "<p>Too few finished trials (or no knob varied) to measure sensitivity.</p>"
    parts = []
    try:
        imp = knob_importance(ok, study_dir, metric=metric)
        source = imp.attrs.get("source", "")
        if "by" in imp.columns and imp["by"].nunique() > 1:
            imp = imp.groupby("knob", as_index=False)["importance"].mean()
        imp = imp.sort_values("importance")
        fig, (ax,) = _figure(size=(5.5, 0.4 * len(imp) + 1.5))
        ax.barh(imp["knob"].astype(str), imp["importance"], color="tab:purple")
        ax.set_xlabel("importance")
        ax.set_title(f"importance of each knob for {metric}")
        parts.append(f"<p>Importances: {html.escape(source)}.</p>"
                     + _img(png_data_uri(fig), "knob importances"))
    except (UserError, RuntimeError, ValueError) as e:  # e.g. fANOVA: every trial equal
        parts.append(f"<p>No importances: {html.escape(str(e).strip() or type(e).__name__)}"
                     ".</p>")
    score = _score(ok, metric)
    fig, axes = _figure(ncols=min(3, len(knobs)), size=(3.8, 3.2))
    for ax, key in zip(axes, knobs[:3], strict=False):
        values = _col(ok, key)
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            ax.scatter(values, score, s=14)
            if values.min() > 0 and values.max() / max(values.min(), 1e-12) > 20:
                ax.set_xscale("log")
        else:
            cats = sorted(values.astype(str).unique())
            pos = {c: i for i, c in enumerate(cats)}
            ax.scatter([pos[v] for v in values.astype(str)], score, s=14)
            ax.set_xticks(range(len(cats)), cats, fontsize=7, rotation=30)
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
    parts.append(_img(png_data_uri(fig), "metric against each knob"))
    return "".join(parts)


def section_baselines(summary: dict[str, Any]) -> str:
    models = summary.get("models") or {}
    rows = [{"model": name, "what": m.get("what", ""), **{k: m["test"].get(k, math.nan)
            for k in ("test_bal_acc", "test_acc", "test_macro_f1", "test_minority_acc")}}
            for name, m in models.items()]
    table = pd.DataFrame(rows)
    fig, (ax,) = _figure()
    ax.barh(table["model"], table["test_bal_acc"], color=["tab:green" if m == "final" else
                                                          "tab:gray" for m in table["model"]])
    ax.set_xlabel("test balanced accuracy")
    ax.set_xlim(0, 1)
    ax.set_title("the final model and the baselines on the test split")
    verdict = html.escape(summary.get("verdict", ""))
    return f"<p>{verdict}</p>" + _img(png_data_uri(fig), "baselines") + _table(table)


def section_prescriptions(summary: dict[str, Any]) -> str:
    rows = summary.get("prescriptions") or []
    if not rows:
        return "<p>No prescription could be checked.</p>"
    return _table(pd.DataFrame(rows))


# ================================================================ the page

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}th{background:#f4f4f4}
img{max-width:100%;display:block;margin:.6em 0}"""

TITLES = {"data": "Data: class counts", "searched": "What was searched",
          "compute": "Compute", "best": "Best configuration",
          "per-class": "Per-class accuracy", "curves": "Learning curves of the best trials",
          "sensitivity": "Sensitivity of the metric to each knob",
          "baselines": "Test metrics beside the baselines",
          "prescriptions": "The paper's prescriptions on this data"}


def read_summary(study_dir: Path) -> dict[str, Any] | None:
    """autotune.yaml of an autotune folder, None for a plain study folder."""
    path = study_dir / AUTOTUNE_FILE
    if not path.is_file():
        return None
    try:
        summary = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise UserError(f"{path} is not valid YAML; run the autotune again") from None
    return summary if isinstance(summary, dict) else None


def tables_dir(study_dir: str | Path) -> Path:
    """Where the study's tables are: the folder itself, or an autotune's `search/`."""
    study_dir = Path(study_dir)
    if not (study_dir / RESULTS_FILE).is_file() and (study_dir / SEARCH_DIR / RESULTS_FILE
                                                      ).is_file():
        return study_dir / SEARCH_DIR
    return study_dir


def render_report(study_dir: str | Path) -> str:
    """The page of the study in `study_dir` as HTML text."""
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise UserError(f"{study_dir}: no such folder; give a finished study's folder, "
                        "<storage>/<name> (e.g. runs/batch_size)")
    summary = read_summary(study_dir)
    tdir = tables_dir(study_dir)
    tables = read_tables(tdir)
    meta = _meta(tdir)
    metric, mode = meta.get("metric", "val_bal_acc"), meta.get("mode", "max")
    res, hist = tables.results, tables.history
    body = {"data": section_data(res, summary), "searched": section_searched(res, meta),
            "compute": section_compute(res, summary),
            "best": section_best(res, meta, tdir, metric, mode),
            "per-class": section_per_class(res, summary, metric, mode),
            "curves": section_curves(res, hist, metric, mode),
            "sensitivity": section_sensitivity(res, tdir, meta, metric)}
    if summary is not None:
        body["baselines"] = section_baselines(summary)
        body["prescriptions"] = section_prescriptions(summary)
    name = html.escape(str(meta.get("name") if summary is None else
                           summary.get("name", study_dir.name)))
    what = html.escape(summary.get("data", "") if summary else str(meta.get("space", "")))
    version = html.escape(f"imbtrain {meta.get('imbtrain_version', meta.get('version', ''))}"
                          f" {meta.get('git_commit', '')}".strip())
    order = list(SECTIONS) + ([s for s in AUTOTUNE_SECTIONS] if summary else [])
    if summary is not None:  # the verdict first: what a user came for
        order = ["baselines", *[s for s in order if s != "baselines"]]
    sections = "\n".join(f'<section id="{s}"><h2>{TITLES[s]}</h2>{body[s]}</section>'
                         for s in order)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{name}: imbtrain report</title><style>{STYLE}</style></head><body>"
            f"<h1>{name}</h1><p>{what}</p><p><small>{version}</small></p>\n{sections}\n"
            "</body></html>\n")


def write_report(study_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the page of the study in `study_dir` to `out` (default
    `<study_dir>/report.html`); returns its path."""
    text = render_report(study_dir)
    path = Path(out) if out else Path(study_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    tmp.replace(path)
    return path

