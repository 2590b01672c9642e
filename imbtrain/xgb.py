"""The trainer of `model=xgboost`: boosting rounds in place of the loop's epochs.

`train(cfg)` looks up the trainer the model's registry entry names (`imbtrain.models.trees`,
`trainer="xgboost"`) and hands the run to `train_xgboost`, which keeps the loop's contract:
the same data (`build_data`, so the same splits and imbalance profile), the same metrics
(`split_metrics`, AUROC and AUPRC of the minority class for binary data), the same per-epoch
`report(metrics, state)` and the same `TrainResult`, so studies, results.parquet and the
analyses treat trees like any network.

Epochs: `xgb_rounds` boosting rounds are spread over `epochs` reports; "epoch" e ends after
floor(e * xgb_rounds / epochs) rounds (each chunk is one `xgb.train` call continuing the
booster from its saved bytes, so a run resumed from a report's state ends exactly as an
uninterrupted one).
Model selection over those reports (results.parquet's best/ columns) is the trees' early
stopping on validation.

Imbalance: `xgb_class_weight=balanced` weighs sample i by N / (K n_{y_i}) (scikit-learn's
"balanced"); `method=reweight` uses its per-class weights instead; `method=smote` over-samples
the train split first. The network-only knobs are refused by the config
(`imbtrain.models.trees.check_xgboost_config`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from imbtrain.data import build_data
from imbtrain.methods import build_method
from imbtrain.metrics import confusion_matrix, split_metrics
from imbtrain.models.trees import (  # noqa: F401  (re-exported: what a trained booster is)
    NETWORK_ONLY,
    SUPPORTED_METHODS,
    XGBoostModel,
    check_xgboost_config,
    load_booster,
    predict_proba,
)
from imbtrain.registry import TRAINERS
from imbtrain.train import Report, TrainResult

# ================================================================ training


def xgb_params(cfg, num_classes: int, threads: int) -> dict[str, Any]:
    """XGBoost parameters from the config: softmax (or logistic) objective, hist trees."""
    params = {"max_depth": cfg.xgb_max_depth, "eta": cfg.xgb_eta,
              "min_child_weight": cfg.xgb_min_child_weight, "subsample": cfg.xgb_subsample,
              "colsample_bytree": cfg.xgb_colsample, "lambda": cfg.xgb_lambda,
              "tree_method": "hist", "seed": cfg.seed, "nthread": threads, "verbosity": 0}
    if num_classes == 2:
        params.update(objective="binary:logistic", eval_metric="logloss")
    else:
        params.update(objective="multi:softprob", num_class=num_classes, eval_metric="mlogloss")
    return params


def sample_weights(cfg, y: np.ndarray, num_classes: int, method) -> np.ndarray | None:
    """Per-sample weights: balanced N / (K n_y), the method's class weights, or None."""
    if cfg.xgb_class_weight == "balanced":
        counts = np.bincount(y, minlength=num_classes).astype(np.float64)
        return len(y) / (num_classes * counts[y])
    w = method.class_weights(0)
    return None if w is None else w.double().numpy()[y]


def evaluate_split(booster, x: np.ndarray, y: np.ndarray, counts: list[int], split: str,
                   num_classes: int) -> dict[str, float]:
    """The loop's split metrics from the booster's probabilities (scores for binary data)."""
    p = predict_proba(booster, x, num_classes)
    conf = confusion_matrix(y, p.argmax(1), num_classes)
    loss = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()) if len(y) else 0
    binary = num_classes == 2 and split != "train"
    return split_metrics(conf, counts, split, scores=p if binary else None,
                         labels=y if binary else None, loss=loss)


def grow(booster, params: dict[str, Any], dtrain, epoch: int, cfg):
    """The booster after chunk epoch + 1: its rounds added to a copy loaded from bytes.

    A booster continued in memory carries a random state that its saved bytes do not, so
    every chunk starts from the bytes (as a resumed run does), with its own seed
    `seed + 7919 * epoch` so that the chunks draw fresh row and column samples.
    """
    import xgboost as xgb  # lazy, as in imbtrain.models.trees

    rounds = rounds_done(epoch + 1, cfg) - rounds_done(epoch, cfg)
    if not rounds:
        return booster
    start = load_booster(bytes(booster.save_raw(raw_format="ubj")))
    return xgb.train({**params, "seed": cfg.seed + 7919 * epoch}, dtrain,
                     num_boost_round=rounds, xgb_model=start)


def rounds_done(epoch: int, cfg) -> int:
    """Boosting rounds after `epoch` reports: floor(epoch * xgb_rounds / epochs)."""
    return epoch * cfg.xgb_rounds // cfg.epochs


def _arrays(t: torch.Tensor) -> np.ndarray:
    """Features as float32 (N, D): images flattened, so trees work on any data."""
    return t.reshape(len(t), -1).float().numpy()


@TRAINERS.register("xgboost")
def train_xgboost(cfg, data=None, report: Report | None = None,
                  resume: dict[str, Any] | None = None,
                  log: Callable[[str], None] = print) -> TrainResult:
    """`train()` for model=xgboost: same data, metrics, reports and TrainResult as the loop."""
    import xgboost as xgb  # lazy, as in imbtrain.models.trees

    if cfg.device == "cuda":
        log("model=xgboost runs on the CPU here (the xgboost-cpu build)")
    data = data if data is not None else build_data(cfg)
    counts, k = list(data.train_counts), data.num_classes  # groups follow the real counts
    method = build_method(cfg, data)
    prepared = method.prepare_data(data)  # SMOTE: the train split over-sampled
    x_tr, y_tr = _arrays(prepared.train_x), prepared.train_y.numpy()
    splits = {"train": (x_tr, y_tr), "val": (_arrays(data.val_x), data.val_y.numpy()),
              "test": (_arrays(data.test_x), data.test_y.numpy())}
    dtrain = xgb.DMatrix(x_tr, label=y_tr, weight=sample_weights(cfg, y_tr, k, method))
    params = xgb_params(cfg, k, torch.get_num_threads())
    epoch, history = 0, []
    booster = xgb.train(params, dtrain, num_boost_round=0)
    if resume is not None:
        booster, epoch, history = load_booster(resume["booster"]), resume["epoch"], \
            list(resume["history"])
    metrics: dict[str, float] = dict(history[-1]) if history else {}
    while epoch < cfg.epochs:
        start = time.perf_counter()
        booster = grow(booster, params, dtrain, epoch, cfg)
        epoch += 1
        metrics = {"epoch": epoch, "lr": cfg.xgb_eta, "trees": float(booster.num_boosted_rounds())}
        for split, (x, y) in splits.items():
            metrics.update(evaluate_split(booster, x, y, counts, split, k))
        elapsed = time.perf_counter() - start
        metrics["epoch_time_s"] = elapsed
        metrics["samples_per_s"] = len(y_tr) / elapsed
        history.append(metrics)
        log(f"epoch {epoch:>3}  trees {int(metrics['trees'])}  val_bal_acc "
            f"{metrics['val_bal_acc']:.4f}  test_acc {metrics['test_acc']:.4f}  test_bal_acc "
            f"{metrics['test_bal_acc']:.4f}")
        if report is not None:
            report(metrics, _state(booster, epoch, history, cfg))
    state = _state(booster, epoch, history, cfg)
    return TrainResult(metrics, history, XGBoostModel(booster, k), counts, state)


def _state(booster, epoch: int, history: list, cfg) -> dict[str, Any]:
    """What `resume=` needs: the booster's bytes, the epoch, the history (torch.save-able)."""
    return {"epoch": epoch, "history": [dict(h) for h in history],
            "booster": bytes(booster.save_raw(raw_format="ubj")), "config": cfg.to_dict()}
