"""The trainer of `model=logreg`: a standardised, class-weighted scikit-learn logistic
regression, kept as the linear head of an `ImbModel` (`imbtrain.models.linear`).

It keeps the loop's contract, as `imbtrain.xgb` does: the same data (`build_data`, so the
same splits and imbalance profile), the same metrics (`split_metrics`, AUROC and AUPRC of the
minority class for binary data), one `report(metrics, state)` and the same `TrainResult`.

The fit: the model's input (images normalised as the loop's evaluation view does, vectors as
they come) flattened, standardised with the train split's mean and standard deviation
(z = (x - mu) / sigma, sigma = 1 where a feature is constant), and
`LogisticRegression(class_weight="balanced", C=1, lbfgs)`, class c weighted by
N / (K n_c). One fit, reported as the run's last epoch (`epochs` are not iterated: the
solver runs to convergence, `max_iter` 2000). The standardisation is folded into the head,
W' = W / sigma and b' = b - W' mu, so the saved model takes the same input as any network;
for two classes the head's first row is zero and its second sklearn's coefficients (the
softmax of (0, w.z + b) is the logistic).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from imbtrain.data import build_data
from imbtrain.metrics import confusion_matrix, split_metrics
from imbtrain.models import create_model
from imbtrain.registry import TRAINERS
from imbtrain.train import Report, TrainResult

MAX_ITER = 2000


def model_inputs(data, x: torch.Tensor) -> np.ndarray:
    """(N, D) float64: what the saved model's network gets, flattened (images normalised
    by the data's mean and std after scaling to [0, 1], as the loop's evaluation view)."""
    x = x.to(torch.float32)
    if data.is_image:
        c = x.shape[1]
        mean = torch.tensor(data.mean if data.mean is not None else [0.0] * c).view(1, c, 1, 1)
        std = torch.tensor(data.std if data.std is not None else [1.0] * c).view(1, c, 1, 1)
        x = (x / 255.0 - mean) / std
    return x.reshape(len(x), -1).double().numpy()


def fit_logreg(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int = 0):
    """(W, b) of the class-weighted logistic regression on standardised x, folded back into
    x's own scale: logits = x @ W.T + b, W (K, D)."""
    from sklearn.linear_model import LogisticRegression

    mu = x.mean(axis=0)
    sigma = x.std(axis=0)
    sigma = np.where(sigma > 1e-12, sigma, 1.0)
    clf = LogisticRegression(class_weight="balanced", max_iter=MAX_ITER, random_state=seed)
    clf.fit((x - mu) / sigma, y)
    coef, intercept = clf.coef_, clf.intercept_
    if num_classes == 2:  # one row for class 1; class 0's logit is 0
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    full_w = np.zeros((num_classes, x.shape[1]))
    full_b = np.full(num_classes, -1e4)  # a class absent from train (cannot be: checked)
    full_w[clf.classes_ if num_classes > 2 else [0, 1]] = coef
    full_b[clf.classes_ if num_classes > 2 else [0, 1]] = intercept
    w = full_w / sigma
    return w, full_b - w @ mu


def _evaluate(model, data, x: torch.Tensor, y: torch.Tensor, counts, split: str,
              k: int) -> dict[str, float]:
    with torch.no_grad():
        logits = model(torch.from_numpy(model_inputs(data, x)).float())
    p = torch.softmax(logits, dim=1).numpy()
    yy = y.numpy()
    conf = confusion_matrix(yy, p.argmax(1), k)
    loss = float(-np.log(np.clip(p[np.arange(len(yy)), yy], 1e-12, None)).mean()) \
        if len(yy) else 0.0
    binary = k == 2 and split != "train"
    return split_metrics(conf, counts, split, scores=p if binary else None,
                         labels=yy if binary else None, loss=loss)


@TRAINERS.register("logreg")
def train_logreg(cfg, data=None, report: Report | None = None,
                 resume: dict[str, Any] | None = None,
                 log: Callable[[str], None] = print) -> TrainResult:
    """`train()` for model=logreg: same data, metrics, report and TrainResult as the loop.
    `resume` needs nothing: the fit is deterministic, so it is fitted again."""
    data = data if data is not None else build_data(cfg)
    counts, k = list(data.train_counts), data.num_classes
    start = time.perf_counter()
    x = model_inputs(data, data.train_x)
    w, b = fit_logreg(x, data.train_y.numpy(), k, cfg.seed)
    model = create_model("logreg", tuple(data.input_shape), k)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(w).float())
        model.head.bias.copy_(torch.from_numpy(b).float())
    model.eval()
    metrics: dict[str, float] = {"epoch": float(cfg.epochs), "lr": 0.0}
    for split, (xs, ys) in {"train": (data.train_x, data.train_y),
                            "val": (data.val_x, data.val_y),
                            "test": (data.test_x, data.test_y)}.items():
        metrics.update(_evaluate(model, data, xs, ys, counts, split, k))
    elapsed = time.perf_counter() - start
    metrics["epoch_time_s"] = elapsed
    metrics["samples_per_s"] = len(x) / max(elapsed, 1e-9)
    log(f"logreg fitted on {len(x):,} rows x {x.shape[1]:,} features  val_bal_acc "
        f"{metrics['val_bal_acc']:.4f}  test_bal_acc {metrics['test_bal_acc']:.4f}")
    state = {"epoch": cfg.epochs, "history": [dict(metrics)], "config": cfg.to_dict()}
    if report is not None:
        report(metrics, state)
    return TrainResult(metrics, [metrics], model, counts, state)
