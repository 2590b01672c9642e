"""The prose of a study's findings: the sentences every study of the paper writes about
its tables (the paired differences, the best knob value, agreement with the paper's claim).

Each study's own paragraph (`findings` in `imbtrain.study.paper.<study>`) is built from
these; they take the tables of `imbtrain.analysis` and return text:

    >>> agreement(True, "small batches help under imbalance", p=0.01)
    'This agrees with the paper (small batches help under imbalance).'
    >>> print(agreement(True, "small batches help", p=0.2))
    This agrees in direction with the paper (small batches help), but the difference is not
    significant (p = 0.2).
    >>> import pandas as pd
    >>> diff_text(pd.Series({"test_acc_diff": 0.0123, "test_acc_p": 0.031}), "test_acc")
    '+0.012 (p = 0.031)'
"""

from __future__ import annotations


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
