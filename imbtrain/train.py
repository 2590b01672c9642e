"""The one training loop: `train(cfg, report=...) -> TrainResult`.

Called from the CLI (`imbtrain train`), from tests and as the body of the Ray Tune trainable.
It knows nothing of Ray. The data live on the training device as tensors and are batched and
augmented there; metrics are accumulated on the device and read once per epoch. A model the
loop does not train (XGBoost) goes to the trainer its registry entry names (`TRAINERS`).

Per step (docs/methods.md): views from the augmentation policy -> the method's batch transform (M2m)
-> one-hot targets t, mixed by CutMix/Mixup -> smoothed targets q (class-conditional eps) ->
per-sample loss of the method against q, averaged with class weights t @ w as
sum(w l) / sum(w) (methods/weights.py) or plainly -> the stepper (ERM, SAM or SAM-A) does the
forward/backward passes and the update. With Joint-SSL the two views of each
sample also give a VICReg loss: L = L_ssl + ssl_lambda * L_supervised (paper A.5).
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from imbtrain.augment import build_augmentation
from imbtrain.config import TrainConfig
from imbtrain.data import ImbalancedData, build_data, subsample_per_class
from imbtrain.errors import DivergedError, UserError
from imbtrain.methods import build_method
from imbtrain.methods.sam import build_stepper
from imbtrain.methods.sampling import epoch_indices
from imbtrain.methods.smoothing import smooth_targets, smoothing_eps
from imbtrain.methods.ssl import build_ssl
from imbtrain.methods.weights import class_weighted_mean
from imbtrain.metrics import confusion_update, neural_collapse, split_metrics
from imbtrain.models import create_model_for, model_trainer
from imbtrain.pretrained import load_pretrained
from imbtrain.registry import TRAINERS

Report = Callable[[dict[str, float], dict[str, Any]], None]
Progress = Callable[[int, int], None]  # (steps done, steps in the epoch) after each step


@dataclass
class TrainResult:
    metrics: dict[str, float]
    history: list[dict[str, float]]
    model: torch.nn.Module
    train_counts: list[int]
    state: dict[str, Any] = field(default_factory=dict, repr=False)


# ================================================================ setup


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA device is available; use device=auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(cfg: TrainConfig, params: list) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.momentum, 0.999),
                                 weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-step schedule of `lr_factor` (stepped once a batch)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer,
                                             lambda s: lr_factor(cfg, s, steps_per_epoch))


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 / fp16 autocast on CUDA; nothing (fp32) for fp32 or another device. Pre-training
    (`imbtrain.pretrain`) uses it, the optimiser and the schedule above too."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning-rate multiplier at a step: linear warm-up, then cosine / step / constant."""
    warm = cfg.warmup_epochs * steps_per_epoch
    if step < warm:
        return (step + 1) / warm
    total = cfg.epochs * steps_per_epoch
    progress = (step - warm) / max(1.0, total - warm)
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if cfg.schedule == "step":
        return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    return 1.0


class Run:
    """Everything one training run holds: data on the device, model, optimiser, hooks."""

    def __init__(self, cfg: TrainConfig, data: ImbalancedData | None, log: Callable) -> None:
        self.cfg, self.log = cfg, log
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed)
        data = data if data is not None else build_data(cfg)
        # Metric groups, SAM-A radii and smoothing follow the real class counts, also when
        # the method changes the train set (SMOTE balances it).
        self.counts = list(data.train_counts)
        self.method = build_method(cfg, data)
        self.method.log = log
        self.method.train_fn = train  # M2m trains its ERM teacher with it
        data = self.method.prepare_data(data)
        self.data, self.K = data, data.num_classes
        dev = self.device
        self.train_x, self.train_y = data.train_x.to(dev), data.train_y.to(dev)
        self.splits = {"val": (data.val_x.to(dev), data.val_y.to(dev)),
                       "test": (data.test_x.to(dev), data.test_y.to(dev))}
        # NHWC on CUDA and CPU too (oneDNN trains the cnn 2x faster here; benchmarks/RESULTS.md).
        self.channels_last = cfg.channels_last and data.is_image
        self.model = self._build_model(cfg, data).to(dev)
        m = self.method
        mixing = cfg.replace(mix=m.stage1_mix or cfg.mix,
                             mix_alpha=m.stage1_mix_alpha or cfg.mix_alpha)
        self.aug = build_augmentation(mixing, data, dev)
        self.ssl = build_ssl(cfg, self.model.feature_dim)
        params = list(self.model.parameters())
        if self.ssl is not None:
            self.ssl.to(dev)
            params += list(self.ssl.parameters())
        self.optimizer = build_optimizer(cfg, params)
        n = len(self.train_y)
        # A trailing batch of one sample would break BatchNorm; drop only that one.
        self.steps_per_epoch = n // cfg.batch_size + int(n % cfg.batch_size > 1)
        self.scheduler = build_scheduler(cfg, self.optimizer, self.steps_per_epoch)
        cuda = dev.type == "cuda"
        # 0 = auto: on a CPU 128 evaluates 2-4x faster than 1024 (benchmarks/RESULTS.md).
        self.eval_batch = cfg.eval_batch_size or (1024 if cuda else 128)
        if not cuda and cfg.precision != "fp32":
            log(f"precision={cfg.precision} applies on CUDA only; this CPU run uses fp32")
        self.scaler = torch.amp.GradScaler("cuda") if cuda and cfg.precision == "fp16" else None
        self.stepper = build_stepper(cfg, self.counts, self.optimizer, self.scaler)
        self._weights: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        eps = smoothing_eps(cfg, self.counts)
        self.eps = eps.to(dev, torch.float32) if eps is not None else None
        self.ema = None
        if cfg.ema_decay > 0:
            from timm.utils import ModelEmaV3  # lazy: timm takes a second to import

            # timm's warm-up (decay 1 - (1 + step) ** -2/3, capped at ema_decay) keeps the
            # average from clinging to the initial weights in short runs.
            self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay, use_warmup=True)
        self.forward_model = torch.compile(self.model) if cfg.compile else self.model
        self.epoch, self.history = 0, []
        self.kept: dict[str, torch.Tensor | None] = {}  # the final evaluation's features
        self.progress: Progress | None = None  # a console's bar (imbtrain train), or none

    def _build_model(self, cfg: TrainConfig, data: ImbalancedData) -> torch.nn.Module:
        model = create_model_for(cfg, data)
        if cfg.pretrained != "none":
            report = load_pretrained(model, cfg.pretrained)
            self.log(f"pretrained {cfg.pretrained}: loaded {len(report['loaded'])} tensors, "
                     f"re-initialised {', '.join(report['reinitialised']) or 'none'}")
        model = self.method.configure_model(model)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.cfg.precision)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def eval_model(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def class_weights(self) -> torch.Tensor | None:
        """The method's class weights of this epoch, on the device: moved there only when the
        method hands out other weights (DRW's switch epoch), not every epoch or step."""
        weights = self.method.class_weights(self.epoch)
        if weights is None:
            return None
        if weights is not self._weights[0]:
            self._weights = (weights, weights.to(self.device, torch.float32))
        return self._weights[1]

    # ---------------------------------------------------------- checkpoint state

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimiser, schedule, EMA, RNGs.

        A deep copy: the live tensors go on changing after the report.
        """
        return copy.deepcopy({
            "epoch": self.epoch, "history": list(self.history),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "ssl": self.ssl.state_dict() if self.ssl is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "method_passes": self.method.passes,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "config": self.cfg.to_dict(),
        })

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        for part, key in ((self.ema, "ema"), (self.ssl, "ssl"), (self.scaler, "scaler")):
            if part is not None and state[key] is not None:
                part.load_state_dict(state[key])
        self.method.passes = state.get("method_passes", 0)
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.epoch, self.history = state["epoch"], list(state["history"])


# ================================================================ training


def train_epoch(run: Run) -> dict[str, float]:
    """One pass over the epoch's batches; returns the train metrics of the seen batches."""
    idx = epoch_indices(run.train_y, run.method.sampling(run.epoch))
    conf, loss_sum, seen = epoch_steps(run, idx, run.class_weights())
    train = split_metrics(conf.cpu().numpy(), run.counts, "train",
                          loss=float(loss_sum) / max(seen, 1))
    return {**train, "samples": seen}


def epoch_steps(run: Run, idx: torch.Tensor, weights: torch.Tensor | None):
    """The epoch's steps -> (confusion, loss sum, samples); the sums stay on the device, read
    once by the caller: no host sync between steps on CUDA (tests/test_train_fast_paths.py)."""
    cfg, K = run.cfg, run.K
    run.model.train()
    conf = torch.zeros(K, K, dtype=torch.long, device=run.device)
    loss_sum = torch.zeros((), device=run.device)
    seen = 0
    for step in range(run.steps_per_epoch):
        b = idx[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        x, y = run.train_x[b], run.train_y[b]
        loss, logits, t = train_step(run, x, y, weights)
        loss_sum += loss * len(y)
        seen += len(y)
        confusion_update(conf, t.argmax(1), logits.argmax(1))
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update(run.model, step=run.scheduler.last_epoch)
        if run.progress is not None:  # counts steps only: no host sync
            run.progress(step + 1, run.steps_per_epoch)
    return conf, loss_sum, seen


def train_step(run: Run, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None):
    """Targets, loss closure and the stepper's update for one batch."""
    K = run.K
    v1 = run.aug.train_views(x)
    v1t, y = run.method.transform_batch(run.model, v1, y, run.epoch)
    t = F.one_hot(y, K).float()
    if run.ssl is None:
        xb, t = run.aug.mix(run.prepare(v1t), t)
        views = None
    else:
        # Both views of a sample get the same mixing (stacked on channels), so they remain
        # two views of one (mixed) sample and VICReg's invariance term stays meaningful.
        v2 = run.aug.train_views(x)
        replaced = (v1t != v1).flatten(1).any(1)  # samples the method replaced (M2m)
        # torch.where, not v2[replaced] = ...: boolean indexing syncs with the host on CUDA.
        v2 = torch.where(replaced.view(-1, *[1] * (v2.dim() - 1)), v1t, v2)
        c = v1t.shape[1]
        both, t = run.aug.mix(torch.cat([v1t, v2], dim=1), t)
        views = (run.prepare(both[:, :c]), run.prepare(both[:, c:]))
        xb = None
    q = smooth_targets(t, run.eps) if run.eps is not None else t
    sample_w = t @ weights if weights is not None else None
    out: dict[str, torch.Tensor] = {}

    def closure(extra_w: torch.Tensor | None,
                ssl_share: torch.Tensor | None = None) -> torch.Tensor:
        # extra_w: the stepper's sample weights, (B,) or (B, G) for G losses at once (SAM-A's
        # per-class shares); ssl_share: the weight of the Joint-SSL term, (G,) with the shares.
        with run.autocast():
            if views is None:
                logits = run.forward_model(xb)
                qq, ww, sw = q, sample_w, extra_w
            else:
                feats = run.model.backbone(torch.cat(views))
                logits = run.model.head(feats)
                qq = q.repeat(2, 1)
                ww = sample_w.repeat(2) if sample_w is not None else None
                sw = torch.cat([extra_w, extra_w]) if extra_w is not None else None
            # sum(w l) / sum(w) with class weights, the plain mean without (methods/weights.py)
            loss = class_weighted_mean(run.method.loss(logits, qq), ww, sw)
            if views is not None:
                half = len(feats) // 2
                ssl_loss, _ = run.ssl(feats[:half].float(), feats[half:].float())
                ssl_loss = ssl_loss * ssl_share if ssl_share is not None else ssl_loss
                loss = ssl_loss + run.cfg.ssl_lambda * loss
        out.setdefault("logits", logits[: len(t)].detach())
        return loss

    # The projector is stepped with the model so SAM's BN freezing covers it too.
    modules = [run.model, run.ssl] if run.ssl is not None else run.model
    loss = run.stepper.step(modules, closure, t)
    return loss.detach(), out["logits"], t


# ================================================================ evaluation


def eval_passes(run: Run, x_all: torch.Tensor, head: bool = True):
    """(features, float logits or None) of each eval batch of x_all, eval model in eval mode;
    logits = head(features) is the model's own forward (ImbModel). Under `inference_mode`,
    which skips autograd's bookkeeping that `no_grad` still does (5-13% of an eval pass of
    the cnn on a CPU thread): what it yields is read, never trained on."""
    model = run.eval_model()
    model.eval()
    bs = run.eval_batch
    for i in range(0, len(x_all), bs):
        with torch.inference_mode(), run.autocast():
            f = model.forward_features(run.prepare(run.aug.eval_view(x_all[i:i + bs])))
            logits = model.head(f).float() if head else None
        yield f, logits


@torch.inference_mode()
def evaluate(run: Run, split: str, keep_features: bool = False) -> dict[str, float]:
    """Metrics of a split; with `keep_features` its features stay in `run.kept` (the final
    test features, reused by the collapse pass)."""
    x_all, y_all = run.splits[split]
    K = run.K
    conf = torch.zeros(K, K, dtype=torch.long, device=run.device)
    loss_sum = torch.zeros((), device=run.device)
    probs, feats = [], []
    for (f, logits), y in zip(eval_passes(run, x_all), y_all.split(run.eval_batch),
                              strict=True):
        feats += [f] if keep_features else []
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        confusion_update(conf, y, logits.argmax(1))
        if K == 2:
            probs.append(logits.softmax(1))
    run.kept[split] = torch.cat(feats).float().cpu() if keep_features else None
    scores = torch.cat(probs).cpu().numpy() if probs else None
    return split_metrics(conf.cpu().numpy(), run.counts, split, scores=scores,
                         labels=y_all.cpu().numpy() if probs else None,
                         loss=float(loss_sum) / max(len(y_all), 1))


def collapse_sample(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """The train samples of the collapse pass: `collapse_per_class` a class (a per-class
    sample seeded with `seed`, in the split's order), the whole split where no class has
    more (then exactly the split: the same numbers as a full pass) or with 0."""
    cap, y = run.cfg.collapse_per_class, run.train_y
    counts = torch.bincount(y, minlength=run.K).tolist()
    if not cap or max(counts) <= cap:
        return run.train_x, y
    idx = subsample_per_class(y.cpu(), [cap] * run.K, run.cfg.seed).to(y.device)
    return run.train_x[idx], y[idx]


def collapse_metrics(run: Run) -> dict[str, float]:
    """Neural-collapse measures of the final model (paper Table 4): one forward pass over a
    per-class sample of the train split (`collapse_sample`); the test features are the final
    evaluation's (the same numbers)."""
    def features(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([f for f, _ in eval_passes(run, x, head=False)]).float().cpu()

    test_x, test_y = run.splits["test"]
    test_feats = run.kept.get("test")  # None when resumed after the last epoch
    test_feats = features(test_x) if test_feats is None else test_feats
    train_x, train_y = collapse_sample(run)
    return neural_collapse(features(train_x), train_y.cpu(), test_feats, test_y.cpu(),
                           run.counts)


# ================================================================ the loop


def train(cfg: TrainConfig, data: ImbalancedData | None = None, report: Report | None = None,
          resume: dict[str, Any] | None = None, log: Callable[[str], None] = print,
          progress: Progress | None = None) -> TrainResult:
    """Train one model as `cfg` says; `report(metrics, state)` after every epoch.

    `resume` is a `state` from an earlier report: the run continues from it and ends with
    exactly the metrics of an uninterrupted run (CPU, same config). The model's trainer (the
    loop below, or the one its registry entry names) does the work. `progress(step, steps)`
    is called after each step of the loop (a console's progress bar; trees have none).
    """
    name = model_trainer(cfg.model)
    if progress is not None and name == "loop":
        return train_loop(cfg, data, report, resume, log, progress=progress)
    return TRAINERS.get(name)(cfg, data, report, resume, log)


@TRAINERS.register("loop")
def train_loop(cfg: TrainConfig, data: ImbalancedData | None = None,
               report: Report | None = None, resume: dict[str, Any] | None = None,
               log: Callable[[str], None] = print,
               progress: Progress | None = None) -> TrainResult:
    """The loop: epochs of steps, evaluation, reports, a method's final stage, collapse."""
    run = Run(cfg, data, log)
    run.progress = progress
    if resume is not None:
        run.load_state(resume)
    metrics: dict[str, float] = dict(run.history[-1]) if run.history else {}
    while run.epoch < cfg.epochs:
        start = time.perf_counter()
        passes_before = run.method.passes + run.stepper.passes
        train = train_epoch(run)
        metrics = {"epoch": run.epoch + 1, "lr": run.optimizer.param_groups[0]["lr"], **train}
        last = run.epoch + 1 == cfg.epochs and not run.method.has_final_stage()
        metrics.update({**evaluate(run, "val"), **evaluate(run, "test", keep_features=last)})
        elapsed = time.perf_counter() - start
        metrics["epoch_time_s"] = elapsed
        metrics["samples_per_s"] = metrics.pop("samples") / elapsed
        metrics["fwd_bwd_passes"] = float(run.stepper.passes + run.method.passes - passes_before)
        run.epoch += 1
        run.history.append(metrics)
        log(_summary(metrics))
        if not math.isfinite(metrics["train_loss"]):
            raise DivergedError(run.epoch, metrics["train_loss"])
        if report is not None:
            report(metrics, run.state())
    ctx = {"device": run.device, "train_view": run.aug.train_views, "log": log,
           "batch_size": cfg.batch_size, "autocast": run.autocast}
    if run.method.has_final_stage():
        before = run.method.passes
        run.method.finish(run.eval_model(), run.data, ctx)
        metrics = {**metrics, **evaluate(run, "val"), **evaluate(run, "test", keep_features=True)}
        metrics["fwd_bwd_passes_final_stage"] = float(run.method.passes - before)
    metrics = {**metrics, **collapse_metrics(run)}
    return TrainResult(metrics, run.history, run.eval_model(), run.counts)


def _summary(m: dict[str, float]) -> str:
    return (f"epoch {m['epoch']:>3}  loss {m['train_loss']:.4f}  val_bal_acc "
            f"{m['val_bal_acc']:.4f}  test_acc {m['test_acc']:.4f}  test_bal_acc "
            f"{m['test_bal_acc']:.4f}  {m['samples_per_s']:.0f} samples/s")
