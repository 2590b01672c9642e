"""XGBoost as a first-class model: `model=xgboost`, the strong tree baseline of Table 6.

`train(cfg)` hands a config with model=xgboost to `train_xgboost`, which keeps the loop's
contract: the same data (`build_data`, so the same splits and imbalance profile), the same
metrics (`split_metrics`, AUROC and AUPRC of the minority class for binary data), the same
per-epoch `report(metrics, state)` and the same `TrainResult`, so studies, results.parquet
and the analyses treat trees like any network.

Epochs: `xgb_rounds` boosting rounds are spread over `epochs` reports; "epoch" e ends after
floor(e * xgb_rounds / epochs) rounds (each chunk is one `xgb.train` call continuing the
booster from its saved bytes, so a run resumed from a report's state ends exactly as an
uninterrupted one).
Model selection over those reports (results.parquet's best/ columns) is the trees' early
stopping on validation.

Imbalance: `xgb_class_weight=balanced` weighs sample i by N / (K n_{y_i}) (scikit-learn's
"balanced"); `method=reweight` uses its per-class weights instead; `method=smote` over-samples
the train split first. The network-only knobs (SAM, smoothing, SSL, mixing, augmentation, EMA,
embeddings, pre-training) are refused by `check_xgboost_config`.

The trained booster travels inside `XGBoostModel`, an nn.Module whose `state_dict` holds its
bytes and whose forward gives log-probabilities, so `torch.save(model.state_dict())` and code
that reads logits work unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from imbtrain.metrics import confusion_matrix, split_metrics

SUPPORTED_METHODS = ("erm", "reweight", "smote")
# Network-only knobs and their "off" values: set, they would be silently ignored by trees.
NETWORK_ONLY = {"sam": "none", "smoothing": "none", "ssl": "none", "mix": "none",
                "augment": "none", "random_erasing": 0.0, "ema_decay": 0.0,
                "num_embeddings": "none", "pretrained": "none"}


def check_xgboost_config(cfg) -> None:
    """ConfigError if cfg asks model=xgboost for something trees do not do."""
    from imbtrain.config import ConfigError

    if cfg.method not in SUPPORTED_METHODS:
        raise ConfigError(f"model=xgboost supports method={', '.join(SUPPORTED_METHODS)}; got "
                          f"method={cfg.method}")
    if cfg.method == "reweight" and cfg.xgb_class_weight != "none":
        raise ConfigError("model=xgboost: choose method=reweight or xgb_class_weight=balanced, "
                          "not both")
    set_knobs = [f"{k}={getattr(cfg, k)}" for k, off in NETWORK_ONLY.items()
                 if getattr(cfg, k) != off]
    if set_knobs:
        raise ConfigError(f"model=xgboost trains boosted trees; {', '.join(set_knobs)} applies "
                          "to neural networks only; leave it at its default")


# ================================================================ the model


class XGBoostModel(nn.Module):
    """A trained booster as an nn.Module: forward(x) = log class probabilities (B, K).

    `state_dict()` holds the booster as a uint8 buffer (its UBJSON bytes); `booster` is the
    live xgboost.Booster.
    """

    def __init__(self, booster, num_classes: int) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.booster = booster
        raw = bytes(booster.save_raw(raw_format="ubj"))
        self.register_buffer("booster_ubj", torch.frombuffer(bytearray(raw), dtype=torch.uint8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = predict_proba(self.booster, x.detach().reshape(len(x), -1).cpu().numpy(),
                              self.num_classes)
        return torch.from_numpy(probs).clamp_min(1e-12).log().to(x.device, torch.float32)


def load_booster(raw: bytes):
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster


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


def predict_proba(booster, x: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, K) class probabilities of every tree built so far."""
    import xgboost as xgb

    p = booster.predict(xgb.DMatrix(x))
    return np.stack([1.0 - p, p], axis=1) if num_classes == 2 else p.reshape(len(x), -1)


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
    import xgboost as xgb

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


def train_xgboost(cfg, data=None, report: Callable | None = None,
                  resume: dict[str, Any] | None = None, log: Callable[[str], None] = print):
    """`train()` for model=xgboost: same data, metrics, reports and TrainResult as the loop."""
    import xgboost as xgb

    from imbtrain.data import build_data
    from imbtrain.methods import build_method
    from imbtrain.train import TrainResult

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
