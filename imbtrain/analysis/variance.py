"""Augmentation variance by class group (paper Section 3.1, Fig. 2; A.2, Fig. 6, 7).

For train ratio r, seed s, class group G (minority / majority / all) and augmentation policy
p, with acc_G the mean per-class test accuracy over the classes of G:

    improvement(p, r, s, G) = (acc_G(p, r, s) - acc_G(none, r, s)) / acc_G(none, r, s) * 100

(paired by seed; the baseline in the denominator, as in `sensitivity`). Fig. 2 left / Fig. 6,
7: its mean ± standard error over seeds, per policy. Fig. 2 right, the augmentation variance:

    variance(r, s, G) = Var_p improvement(p, r, s, G)     (over the policies p != none,
                                                            ddof = 1 by default)

then mean ± standard error over seeds. Groups follow docs/methods.md ("Metrics"): minority /
majority are the 20% of classes with the fewest / most TRAIN samples
(`imbtrain.metrics.minority_classes`), taken from each trial's `train_counts` and its
`test_class_acc_<k>` columns; without those, the trial's own `test_minority_acc`,
`test_majority_acc` and `test_bal_acc`.

    >>> import pandas as pd
    >>> results = pd.DataFrame({
    ...     "config/augment": ["none", "flip_crop", "autoaugment"], "config/seed": [0] * 3,
    ...     "config/train_ratio": [0.1] * 3, "test_minority_acc": [0.2, 0.3, 0.25],
    ...     "test_majority_acc": [0.8, 0.8, 0.8], "test_bal_acc": [0.5, 0.55, 0.5]})
    >>> imp, var = augmentation_variance(results)
    >>> var[["group", "variance"]].round(6).values.tolist()  # minority: 50, 25 -> 312.5
    [['all', 50.0], ['majority', 0.0], ['minority', 312.5]]
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from imbtrain.analysis.common import (
    config_frame,
    figure,
    markdown_table,
    mean_se,
    mean_se_frame,
    ratio_axis,
    save_figure,
    summarise,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

GROUPS = ("minority", "majority", "all")


def class_group_accuracy(results: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Mean per-class accuracy of each row over its minority, majority and all classes
    (columns minority, majority, all; index of `results`). NaN where a row has none."""
    pattern = re.compile(rf"^{split}_class_acc_(\d+)$")
    per_class = sorted((int(m.group(1)), c) for c in results.columns
                       if (m := pattern.match(str(c))))
    if per_class and "train_counts" in results.columns:
        return _from_classes(results, [c for _, c in per_class])
    fallback = {"minority": f"{split}_minority_acc", "majority": f"{split}_majority_acc",
                "all": f"{split}_bal_acc"}
    missing = [c for c in fallback.values() if c not in results.columns]
    if missing:
        raise UserError(f"class-group accuracies need {split}_class_acc_<k> and train_counts, "
                        f"or {', '.join(fallback.values())}; missing {', '.join(missing)}")
    return pd.DataFrame({g: results[c].astype(float) for g, c in fallback.items()})


def _from_classes(results: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    from imbtrain.metrics import majority_classes, minority_classes

    acc = results[cols].to_numpy(dtype=float)
    rows = []
    for accs, counts in zip(acc, results["train_counts"], strict=True):
        if counts is None or len(counts) != len(cols):
            rows.append({g: np.nan for g in GROUPS})
            continue
        counts = [int(c) for c in counts]
        rows.append({"minority": np.nanmean(accs[minority_classes(counts)]),
                     "majority": np.nanmean(accs[majority_classes(counts)]),
                     "all": np.nanmean(accs)})
    return pd.DataFrame(rows, index=results.index, columns=list(GROUPS))


def improvements(results: pd.DataFrame, knob: str = "augment", baseline="none",
                 split: str = "test") -> pd.DataFrame:
    """One row a (train ratio, seed, policy, group): the group accuracy `acc`, that of the
    baseline policy at the same ratio and seed `base`, and `pct_change` (module formula).
    Failed trials and pairs without their baseline are left out."""
    ok = results if "status" not in results.columns else results[
        results["status"] == "TERMINATED"]
    groups = class_group_accuracy(ok, split)
    df = pd.concat([config_frame(ok, ["train_ratio", "seed", knob]), groups], axis=1)
    df = df.melt(id_vars=["train_ratio", "seed", knob], value_vars=list(GROUPS),
                 var_name="group", value_name="acc").dropna(subset=["acc"])
    if not (df[knob] == baseline).any():
        raise UserError(f"no finished trial has the baseline {knob}={baseline}; values: "
                        f"{', '.join(map(str, sorted(df[knob].unique(), key=str)))}")
    df = df.groupby(["train_ratio", "seed", knob, "group"], as_index=False)["acc"].mean()
    base = df[df[knob] == baseline].drop(columns=knob).rename(columns={"acc": "base"})
    df = df[df[knob] != baseline].merge(base, on=["train_ratio", "seed", "group"])
    df["pct_change"] = (df["acc"] - df["base"]) / df["base"] * 100.0
    return df.rename(columns={knob: "policy"})


def augmentation_variance(results: pd.DataFrame, knob: str = "augment", baseline="none",
                          split: str = "test", ddof: int = 1) -> tuple[pd.DataFrame,
                                                                         pd.DataFrame]:
    """(improvement, variance) tables (module formulas).

    improvement: train_ratio, group, policy, n (seeds), pct_change, pct_change_se.
    variance: train_ratio, group, n (seeds with >= 2 policies), n_policies, variance,
    variance_se (standard error over seeds). Sorted balanced first.
    """
    df = improvements(results, knob, baseline, split)
    if df.empty:
        raise UserError(f"no {knob} policy other than {baseline} has a paired baseline trial")
    imp = summarise(df, ["train_ratio", "group", "policy"], ["pct_change"])
    rows = []
    for (r, g), part in df.groupby(["train_ratio", "group"]):
        per_seed = [p["pct_change"].var(ddof=ddof) for _, p in part.groupby("seed")
                    if len(p) > ddof]
        mean, se, n = mean_se(per_seed)
        rows.append({"train_ratio": r, "group": g, "n": n,
                     "n_policies": part["policy"].nunique(), "variance": mean,
                     "variance_se": se})
    var = pd.DataFrame(rows)
    order = {"ascending": [False, True], "ignore_index": True}
    imp = imp.sort_values(["train_ratio", "group"], **order, kind="stable")
    var = var.sort_values(["train_ratio", "group"], **order)
    for t in (imp, var):
        t.attrs.update(knob=knob, baseline=baseline, split=split)
    return imp, var


def plot_variance(imp: pd.DataFrame, var: pd.DataFrame, out_dir: str | Path,
                  policy: str | None = None, stem: str = "augmentation_variance") -> Path:
    """Fig. 2: left, the improvement of `policy` (default trivialaugment, else the first)
    over no augmentation vs train ratio per class group; middle, every policy's improvement
    on the minority classes (Fig. 6); right, the augmentation variance per group."""
    policies = sorted(imp["policy"].unique(), key=str)
    policy = policy or ("trivialaugment" if "trivialaugment" in policies else policies[0])
    fig, axes = figure(ncols=3, size=(5.0, 4.0))
    left, mid, right = axes[0]
    for g, part in imp[imp["policy"] == policy].groupby("group"):
        _line(left, part, "pct_change", g)
    for p, part in imp[imp["group"] == "minority"].groupby("policy"):
        _line(mid, part, "pct_change", str(p))
    for g, part in var.groupby("group"):
        _line(right, part, "variance", g)
    base = imp.attrs.get("baseline", "none")
    left.set_title(f"{policy} over {base}")
    mid.set_title("minority classes, every policy")
    right.set_title("variance across policies")
    for ax, ylabel in ((left, "% improvement"), (mid, "% improvement"),
                       (right, "variance of % improvement")):
        ratio_axis(ax, imp["train_ratio"])
        ax.set_xlabel("train ratio")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, out_dir, stem, "Augmentation under imbalance (mean ± s.e.)")


def _line(ax, part: pd.DataFrame, value: str, label: str) -> None:
    part = part.sort_values("train_ratio")
    ax.errorbar(part["train_ratio"], part[value], yerr=part[f"{value}_se"].fillna(0.0),
                marker="o", capsize=3, label=label)


@register_analysis("variance")
def variance_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                      knob: str = "augment", baseline="none", split: str = "test",
                      ddof: int = 1, policy: str | None = None,
                      stem: str = "augmentation_variance") -> list[Path]:
    """Augmentation improvement and variance across policies by class group (Fig. 2, 6, 7).

    Writes `<stem>.png`; tables `<stem>` (variance) and `<stem>_improvement` (per policy)."""
    imp, var = augmentation_variance(results, knob, baseline, split, ddof)
    keys = ["train_ratio", "group"]
    md_var = markdown_table(
        mean_se_frame(var, keys, ["variance"]).assign(n_policies=var["n_policies"]),
        caption=f"Variance across {knob} policies (ddof {ddof}) of the percent improvement "
                f"of {split} accuracy over {knob}={baseline}, per class group; mean ± "
                "standard error over seeds.")
    md_imp = markdown_table(
        mean_se_frame(imp, [*keys, "policy"], ["pct_change"]),
        caption=f"Percent improvement of {split} accuracy over {knob}={baseline} (same "
                "train ratio and seed); mean ± standard error over seeds.")
    return [plot_variance(imp, var, out_dir, policy, stem),
            *write_table(var, out_dir, stem, md_var),
            *write_table(imp, out_dir, f"{stem}_improvement", md_imp)]
