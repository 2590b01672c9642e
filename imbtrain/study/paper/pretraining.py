"""The pre-training study (paper Section 3.1, Fig. 4; A.4, Fig. 10).

Claim under test: pre-trained backbones help far more under severe imbalance than on balanced
data, and self-supervised pre-training (SimCLR, VICReg) beats supervised pre-training.

Setup: search_spaces/pretraining.yaml, four initialisations (random; supervised: a model
trained by imbtrain's loop on the balanced train pool; VICReg and SimCLR: `imbtrain
pretrain`, no labels, on the same pool; each a variant) x train ratios x seeds. The study
makes the weights first, as Ray tasks with a trial's resources, into
`<storage>/<name>_weights/` (kept there: a resumed study does not train them again), then
runs the study with their paths as `pretrained=`. Default: the embedded digits with a small
CNN, in minutes; `--full`: CIFAR-100 with a WRN-28-10 on a GPU cluster:

    imbtrain study pretraining                # runs/pretraining/, runs/pretraining_weights/
    imbtrain study pretraining --smoke        # seconds
    imbtrain study pretraining --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (the space's `analyses`: imbtrain.analysis.sensitivity, the paper's eq. 2): the
percent change of test accuracy over random initialisation at the same train ratio and seed,
mean ± standard error over seeds: sensitivity.png / .md / .parquet, logged to the MLflow
parent run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from imbtrain.study.findings import agreement
from imbtrain.study.prerequisites import Job, pretrain_weights, train_weights
from imbtrain.study.script import StudyScript, sensitivity_study
from imbtrain.study.storage import StudyDir

SSL = ("vicreg", "simclr")  # imbtrain.pretrain objectives
# Self-supervised objectives converge more slowly than supervised training: three times the
# trials' epochs, on batches of at least 128 (VICReg's variance and covariance terms are
# estimated on the batch).
SSL_EPOCHS, SSL_BATCH = 3, 128


# ================================================================ the weights


def weight_job(source: str, base: dict, path: Path | str) -> Job:
    """How to make the weights of a source: on the balanced pool (r = 1), seed 0."""
    cfg = {**base, "train_ratio": 1.0, "seed": 0, "pretrained": "none"}
    if source == "supervised":
        return Job(path, train_weights, (cfg, str(path)))
    cfg.update(epochs=cfg.get("epochs", 10) * SSL_EPOCHS,
               batch_size=max(int(cfg.get("batch_size", 64)), SSL_BATCH))
    return Job(path, pretrain_weights, (cfg, str(path), source))


def prepare(spec, args, kwargs, backend):
    """Make the weights the variants name (supervised, vicreg, simclr) and put their paths
    into the variants (as Ray tasks on a cluster: the backend's `run_prerequisites`)."""
    out = StudyDir.under(kwargs["storage"], f"{kwargs['name']}_weights")  # a folder or a URI
    jobs, variants = {}, {}
    for name, over in spec.variants.items():
        source = over.get("pretrained", "none")
        if source == "supervised" or source in SSL:
            path = out.address(f"{source}.pt")
            jobs[source] = weight_job(source, spec.base, path)
            over = {**over, "pretrained": path}
        variants[name] = over
    backend.run_prerequisites(list(jobs.values()), spec, kwargs["address"])
    return spec.variant(None, changes={"variants": variants})


# ================================================================ analysis


def findings(table: pd.DataFrame, knob: str = "variant", baseline: str = "random") -> str:
    """One paragraph: each source's gain at the most and least imbalanced ratio, the sources
    whose gain grows under imbalance, and SSL vs supervised under imbalance."""
    others = table[table[knob] != baseline]
    hi, lo = others["train_ratio"].max(), others["train_ratio"].min()
    gain = others.pivot(index=knob, columns="train_ratio", values="pct_change")
    parts = [f"{src} {gain.loc[src, lo]:+.1f}% at r = {lo:g} vs {gain.loc[src, hi]:+.1f}% "
             f"at r = {hi:g}" for src in gain.index]
    grows = [s for s in gain.index if gain.loc[s, lo] > max(gain.loc[s, hi], 0.0)]
    ssl = [s for s in gain.index if s in SSL]
    ssl_wins = bool(ssl) and "supervised" in gain.index and max(
        gain.loc[s, lo] for s in ssl) > gain.loc["supervised", lo]
    return (f"Test accuracy over random initialisation: {'; '.join(parts)}. The gain grows "
            f"under imbalance for {', '.join(grows) or 'no source'}. "
            + agreement(len(grows) == len(gain.index), "every kind of pre-training helps, "
                                                       "and more under imbalance") + " "
            + agreement(ssl_wins, "self-supervised pre-training beats supervised "
                                  "pre-training under imbalance"))


# Fig. 4, 10: percent improvement over random initialisation per train ratio.
STUDY = StudyScript("pretraining", __doc__, sensitivity_study(findings), prepare=prepare)
