"""TrainConfig: every knob of a training run, typed, documented and validated once, here.

A config is flat data. It is built from keyword arguments, a YAML file or `key=value`
overrides, validated in `__post_init__` (unknown keys and out-of-range values raise
`ConfigError` with one line naming the key, the value and what is allowed), and round-trips
through YAML unchanged. Each field's docstring sits under it (cleanRL style);
`describe(key)` returns it.

The allowed datasets, methods, augmentations, mixes and SAM steppers are the names their
registries hold (`imbtrain.registry`), so a new plug-in is allowed as soon as it is
registered. A dataset or a model may register a `check_config` rule of its own (a tabular
file needs its label column, XGBoost refuses the network-only knobs); `__post_init__` runs
it with the others.

    >>> TrainConfig(dataset="digits", sam="sam_a").trial_name()
    'digits_r1_bs64_sam_a_s0'
    >>> TrainConfig(sam="sam_b")
    Traceback (most recent call last):
    ...
    imbtrain.errors.ConfigError: sam='sam_b' is not allowed; choose one of none, sam, sam_a
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imbtrain.errors import ConfigError
from imbtrain.files import load_yaml, read_text
from imbtrain.registry import AUGMENTATIONS, DATASETS, METHODS, MIXES, MODELS, STEPPERS

__all__ = ["FIELDS", "ConfigError", "TrainConfig", "allowed_values", "check_value", "describe",
           "load_config", "parse_overrides"]


def _knob(default: Any, *, choices: Any = None, lo: float | None = None,
          hi: float | None = None, lo_open: bool = False) -> Any:
    """A dataclass field with its allowed values: choices (a tuple, or a registry whose
    names are read at validation time) or a range [lo, hi]."""
    meta = {"choices": choices, "lo": lo, "hi": hi, "lo_open": lo_open}
    return field(default=default, metadata=meta)



@dataclass
class TrainConfig:
    """One training run. Defaults train a small CNN on the embedded mnist5k data."""

    # ---- data ----
    dataset: str = _knob("mnist5k", choices=DATASETS)
    """Registry name of the dataset (see imbtrain.data): embedded or on disk."""
    data_dir: str = ""
    """Folder of an on-disk dataset (a file for tabular data); empty for embedded data."""
    label_column: str = ""
    """Tabular data: the column that holds the class label."""
    train_ratio: float = _knob(1.0, lo=0.0, hi=1.0, lo_open=True)
    """r = n_min / n_max of the training set, in (0, 1]; 1 keeps the train pool as it is."""
    imbalance_profile: str = _knob("exp", choices=("exp", "step"))
    """exp: n_i = n_max * r ** (i / (K - 1)); step: half the classes n_max, half n_max * r."""
    test_ratio: float = _knob(1.0, lo=0.0, hi=1.0, lo_open=True)
    """Imbalance ratio of the test and validation splits (paper A.8.1); 1 keeps the held-out
    pool's own class distribution: balanced for the embedded and benchmark datasets, the
    file's or folder's own for tabular and imagefolder data (docs/methods.md)."""
    val_fraction: float = _knob(0.2, lo=0.0, hi=0.9, lo_open=True)
    """Share of each class of the held-out test pool used as the validation split."""
    data_seed: int = _knob(0, lo=0)
    """Seed of the class subsampling and splits, separate from `seed`."""
    seed: int = _knob(0, lo=0)
    """Seed of training: initialisation, batch order, augmentation."""
    synthetic_classes: int = _knob(10, lo=2, hi=1000)
    """dataset=synthetic: number of classes."""
    synthetic_shape: str = "3x16x16"
    """dataset=synthetic: sample shape, "CxHxW" for images or "D" for vectors."""
    synthetic_samples: int = _knob(200, lo=2)
    """dataset=synthetic: samples a class in the train pool before the profile (n_max)."""
    image_size: int = _knob(0, lo=0, hi=1024)
    """imagefolder / tiny_imagenet: resize images to this side; 0 = the dataset's default."""
    tabular_preset: str = _knob("none", choices=("none", "adult", "covertype", "otto"))
    """dataset=tabular: the file layout of UCI Adult, UCI Covertype or Kaggle Otto (names of
    headerless files' columns, label column, columns to drop; data/tabular_presets.py)."""
    tabular_transform: str = _knob("quantile", choices=("quantile", "standard"))
    """Tabular data: numeric transform fitted on the train pool (quantile to a normal, or
    standardisation)."""
    tabular_drop: str = ""
    """dataset=tabular: comma-separated columns to leave out (ids, leaks)."""

    # ---- model ----
    model: str = "cnn"
    """Registry name of the model (see imbtrain.models), `wrn_<depth>_<width>`, `timm/<name>`,
    or `xgboost` (gradient-boosted trees with their own trainer, imbtrain.xgb)."""
    pretrained: str = "none"
    """none, or a local weights file (torchvision, timm or imbtrain's own state dict)."""
    num_embeddings: str = _knob("none", choices=("none", "periodic", "pwl"))
    """Tabular MLP: numerical feature embeddings (Gorishniy et al. 2022)."""
    num_embeddings_dim: int = _knob(24, lo=1, hi=1024)
    """Numerical embeddings: the size of each numeric feature's embedding."""
    num_embeddings_sigma: float = _knob(0.01, lo=0.0, hi=1000.0, lo_open=True)
    """Periodic embeddings: scale of the initial frequencies (sigma; tune it, 0.01 to 100)."""
    num_embeddings_bins: int = _knob(48, lo=2, hi=1024)
    """Piecewise-linear embeddings: quantile bins a feature, computed on the train split."""
    model_width: int = _knob(0, lo=0, hi=65536)
    """mlp width / tab_resnet and ft_transformer block width; 0 = the model's default."""
    model_depth: int = _knob(0, lo=0, hi=64)
    """mlp hidden layers / tab_resnet and ft_transformer blocks; 0 = the model's default."""
    model_dropout: float = _knob(0.0, lo=0.0, hi=0.9)
    """Dropout of the models that take it (mlp, tab_resnet, ft_transformer, wrn_*)."""

    # ---- optimisation ----
    epochs: int = _knob(10, lo=1, hi=100000)
    """Training epochs."""
    batch_size: int = _knob(64, lo=1, hi=1 << 20)
    """Minibatch size (the paper's first knob: small batches help under imbalance)."""
    optimizer: str = _knob("sgd", choices=("sgd", "adamw"))
    """sgd (momentum) or adamw."""
    lr: float = _knob(0.05, lo=0.0, hi=100.0, lo_open=True)
    """Peak learning rate."""
    momentum: float = _knob(0.9, lo=0.0, hi=1.0)
    """SGD momentum (AdamW: beta1)."""
    nesterov: bool = False
    """SGD: Nesterov momentum."""
    weight_decay: float = _knob(5e-4, lo=0.0, hi=1.0)
    """Weight decay (decoupled for AdamW)."""
    warmup_epochs: float = _knob(0.0, lo=0.0)
    """Linear learning-rate warm-up, in epochs (fractions allowed), before the schedule."""
    schedule: str = _knob("cosine", choices=("cosine", "step", "constant"))
    """cosine to 0; step: x0.1 at 50% and 75% of the epochs; constant."""
    ema_decay: float = _knob(0.0, lo=0.0, hi=1.0)
    """Decay of an exponential moving average of the weights; 0 = off. When on, evaluation
    uses the EMA model. The decay warms up as timm's ModelEmaV3 does (1 - (1 + step)^-2/3,
    capped at this value)."""

    # ---- augmentation ----
    augment: str = _knob("none", choices=AUGMENTATIONS)
    """Per-image augmentation policy (torchvision v2 for the automatic policies)."""
    mix: str = _knob("none", choices=MIXES)
    """Batch mixing: CutMix or Mixup with soft targets."""
    mix_alpha: float = _knob(1.0, lo=0.0, hi=100.0, lo_open=True)
    """Beta(alpha, alpha) parameter of the mixing coefficient."""
    random_erasing: float = _knob(0.0, lo=0.0, hi=1.0)
    """Probability of random erasing per image."""

    # ---- the paper's knobs ----
    sam: str = _knob("none", choices=STEPPERS)
    """Sharpness-aware minimisation: plain SAM or SAM-A (per-class radius, paper A.6; how the
    radii make a step: `sam_a_mode`)."""
    sam_rho: float = _knob(0.05, lo=0.0, hi=10.0, lo_open=True)
    """SAM's ascent radius rho (SAM-A: the base radius of the per-class rho_c)."""
    sam_adaptive: bool = False
    """ASAM: scale the ascent by |w| (Kwon et al. 2021)."""
    sam_a_form: str = _knob("inverse", choices=("inverse", "paper_eq"))
    """inverse: rho_c = rho (K p_c)^-power (the paper's text); paper_eq: rho / (1 - p_c)."""
    sam_a_power: float = _knob(0.5, lo=0.0, hi=4.0)
    """Power of the inverse form of SAM-A's radii."""
    sam_a_mode: str = _knob("weighted", choices=("weighted", "per_class", "grouped"))
    """How SAM-A's per-class radii make one step. weighted: one shared ascent along the gradient
    of the loss with sample i weighted by its radius rho_i, of radius mean_i(rho_i); 2 passes a
    step, like SAM. per_class: each class c in the batch gets its own ascent
    e_c = rho_c g_c / ||g_c|| (g_c the gradient of its share of the loss) and its samples'
    descent gradient is taken at w + e_c; 2 passes per class in the batch (one backward at w
    each, from one shared forward, and one forward/backward at w + e_c). grouped: as per_class
    over `sam_a_groups` radius groups of classes; 2 passes per group in the batch. Classes of
    equal radius share one ascent, so equal radii give SAM in every mode."""
    sam_a_groups: int = _knob(3, lo=1, hi=1000)
    """sam_a_mode=grouped: number of radius groups; the classes, ranked by radius, are cut into
    groups of about K / sam_a_groups classes (quantiles of the radii over the classes), and a
    group's radius is the mean of its classes' radii."""
    smoothing: str = _knob("none", choices=("none", "uniform", "class"))
    """Label smoothing: uniform eps, or class-conditional eps_c (paper A.7)."""
    smoothing_eps: float = _knob(0.1, lo=0.0, hi=1.0)
    """Smoothing epsilon (class form: the base of eps_c)."""
    smoothing_form: str = _knob("inverse", choices=("inverse", "paper_eq"))
    """inverse: eps_c = eps (K p_c)^-power (the paper's text); paper_eq: eps / (1 - p_c)."""
    smoothing_power: float = _knob(0.5, lo=0.0, hi=4.0)
    """Power of the inverse form of class-conditional smoothing."""
    ssl: str = _knob("none", choices=("none", "vicreg"))
    """Joint-SSL: add a VICReg loss on two views of each sample (paper A.5)."""
    ssl_lambda: float = _knob(1.0, lo=0.0)
    """Weight of the supervised loss in L = L_ssl + lambda * L_supervised."""
    vicreg_inv: float = _knob(25.0, lo=0.0)
    """VICReg invariance weight."""
    vicreg_var: float = _knob(25.0, lo=0.0)
    """VICReg variance weight."""
    vicreg_cov: float = _knob(1.0, lo=0.0)
    """VICReg covariance weight."""

    # ---- baselines ----
    method: str = _knob("erm", choices=METHODS)
    """Specialised imbalance method (imbtrain/methods), combined with every knob above."""
    reweight_form: str = _knob("effective", choices=("effective", "inverse"))
    """method=reweight: effective-number (Cui et al. 2019) or inverse-frequency weights."""
    reweight_beta: float = _knob(0.9999, lo=0.0, hi=1.0, lo_open=True)
    """Effective-number beta (reweight, drw, ldam_drw)."""
    drw_epoch: int = _knob(-1, lo=-1)
    """Deferred re-weighting starts at this epoch; -1 = 80% of the epochs."""
    focal_gamma: float = _knob(1.0, lo=0.0, hi=10.0)
    """Focal loss gamma; 0 is cross-entropy."""
    ldam_max_m: float = _knob(0.5, lo=0.0, hi=10.0, lo_open=True)
    """LDAM: the largest class margin (that of the smallest class)."""
    ldam_s: float = _knob(30.0, lo=0.0, lo_open=True)
    """LDAM: logit scale s."""
    ldam_normed: bool = True
    """LDAM: normalised (cosine) classifier head, as LDAM-DRW's CIFAR models use; with s = 30
    a plain linear head diverges."""
    mislas_epochs: int = _knob(10, lo=0)
    """MiSLAS: epochs of stage 2 (classifier re-training)."""
    mislas_eps_head: float = _knob(0.4, lo=0.0, hi=1.0)
    """MiSLAS: label-aware smoothing of the largest class."""
    mislas_eps_tail: float = _knob(0.1, lo=0.0, hi=1.0)
    """MiSLAS: label-aware smoothing of the smallest class."""
    mislas_lr: float = _knob(0.1, lo=0.0, lo_open=True)
    """MiSLAS: stage-2 learning rate (of the logit scale; the head's weights get
    `mislas_head_lr_factor` times it)."""
    mislas_head_lr_factor: float = _knob(0.0, lo=0.0, hi=10.0)
    """MiSLAS: stage-2 learning rate of the classifier's weights, as a factor of `mislas_lr`
    (MiSLAS's `lr_factor`); 0 = MiSLAS's value for the dataset and train ratio. MiSLAS uses
    CIFAR-10: 0.5 at r = 0.01, 0.2 at r = 0.02 and 0.1; CIFAR-100: 0.2 at r = 0.01, 0.1 at
    r = 0.02 and 0.1; ImageNet-LT, iNaturalist 2018 and Places-LT: 0.05. With 0, cifar10 and
    cifar100 take the value of the nearest of MiSLAS's ratios (on a log scale), every other
    dataset 0.2."""
    mislas_bn_shift: bool = True
    """MiSLAS: re-estimate BatchNorm statistics on class-balanced batches in stage 2."""
    m2m_teacher: str = ""
    """M2m: path of an ERM-trained model.pt of the same model and data; empty = train one first."""
    m2m_epoch: int = _knob(-1, lo=-1)
    """M2m: epoch from which samples are translated; -1 = 80% of the epochs."""
    m2m_beta: float = _knob(0.999, lo=0.0, hi=1.0, lo_open=True)
    """M2m: beta of the seed selection and of the keep step: a seed of class k0 for a sample
    of class y is drawn with weight 1 - beta ** (n_k0 - n_y), and an accepted translation is
    kept with that probability."""
    m2m_gamma: float = _knob(0.99, lo=0.0, hi=1.0)
    """M2m: acceptance threshold on the teacher's target probability."""
    m2m_lambda: float = _knob(0.5, lo=0.0)
    """M2m: weight of the seed-class logit penalty."""
    m2m_steps: int = _knob(10, lo=1)
    """M2m: gradient steps of a translation."""
    m2m_step_size: float = _knob(0.1, lo=0.0, lo_open=True)
    """M2m: L2 length of each gradient step of a translation, in pixel units of [0, 1] images
    (M2m's convention; vectors: in their own units); images are clamped to [0, 1] after every
    step."""
    m2m_noise: float = _knob(0.5, lo=0.0)
    """M2m: L2 radius of the noise added to the seed before the steps, in the same units as
    `m2m_step_size`."""

    # ---- xgboost (model=xgboost) ----
    xgb_rounds: int = _knob(200, lo=1, hi=100000)
    """Boosting rounds; they are spread evenly over `epochs` reports."""
    xgb_max_depth: int = _knob(6, lo=1, hi=32)
    """Maximum depth of a tree."""
    xgb_eta: float = _knob(0.1, lo=0.0, hi=1.0, lo_open=True)
    """Learning rate (shrinkage) of each tree."""
    xgb_min_child_weight: float = _knob(1.0, lo=0.0)
    """Minimum sum of instance weights (hessian) in a leaf."""
    xgb_subsample: float = _knob(1.0, lo=0.0, hi=1.0, lo_open=True)
    """Share of the train rows drawn for each tree."""
    xgb_colsample: float = _knob(1.0, lo=0.0, hi=1.0, lo_open=True)
    """Share of the columns drawn for each tree (colsample_bytree)."""
    xgb_lambda: float = _knob(1.0, lo=0.0)
    """L2 regularisation of the leaf weights."""
    xgb_class_weight: str = _knob("none", choices=("none", "balanced"))
    """balanced: sample weights N / (K n_y), so every class weighs the same in the loss."""

    # ---- execution ----
    device: str = _knob("auto", choices=("auto", "cpu", "cuda"))
    """auto: CUDA when available, else CPU."""
    precision: str = _knob("fp32", choices=("fp32", "bf16", "fp16"))
    """Autocast precision on CUDA (CPU runs fp32)."""
    channels_last: bool = True
    """Channels-last memory format for image models, on CUDA and on the CPU (1.5x faster
    convolutions here, benchmarks/RESULTS.md); vectors are unaffected."""
    compile: bool = False
    """torch.compile the model."""
    num_workers: int = _knob(0, lo=0)
    """Loader worker processes for data that does not fit in memory (in-memory data: 0)."""
    eval_batch_size: int = _knob(0, lo=0)
    """Batch size of evaluation passes; 0 = auto: 1024 on CUDA, 128 on the CPU."""
    collapse_per_class: int = _knob(32, lo=0)
    """Train samples a class that the final neural-collapse measures (cdnv, ...) use: a
    per-class sample seeded with `seed` (a class with fewer keeps all), so the pass costs
    under 2% of a short run; 0 = the whole train split."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_value(f.name, getattr(self, f.name)))
        self._check_combinations()

    def _check_combinations(self) -> None:
        """Rules across keys, and the dataset's and the model's own (`check_config`)."""
        dataset = DATASETS.meta(self.dataset)
        embedded = [n for n in DATASETS if not DATASETS.meta(n).get("on_disk")]
        if dataset.get("on_disk") and not self.data_dir:
            raise ConfigError(f"dataset={self.dataset} needs data_dir=<folder>; "
                              f"embedded datasets: {', '.join(embedded)}")
        if self.data_dir and not dataset.get("on_disk"):  # it would train on embedded data
            on_disk = [n for n in DATASETS if DATASETS.meta(n).get("on_disk")]
            raise ConfigError(f"dataset={self.dataset} is embedded and reads no data_dir "
                              f"(got data_dir={self.data_dir!r}); drop data_dir, or name the "
                              f"dataset of those files: {', '.join(on_disk)}")
        _run_check(dataset, self)
        if self.sam != "none" and self.precision == "fp16":
            # SAM's ascent needs the unscaled gradient norm, and a skipped (inf) step would
            # leave the weights perturbed: fp16 loss scaling is refused here, once.
            raise ConfigError(f"sam={self.sam} with precision=fp16 is not supported "
                              "(loss scaling breaks SAM's ascent); use precision=bf16 or fp32")
        if self.drw_epoch >= self.epochs:
            raise ConfigError(f"drw_epoch={self.drw_epoch} must be below epochs={self.epochs}")
        _run_check(MODELS.meta(self.model), self)  # an unknown model: UserError naming them

    # ---- conversions ----
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> TrainConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a mapping of config keys, "
                              f"got {type(d).__name__}")
        for key in d:
            _known(key)
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def trial_name(self) -> str:
        """A short name carrying the key settings, e.g. mnist5k_r0.01_bs16_sam_a_s2."""
        parts = [self.dataset, f"r{self.train_ratio:g}", f"bs{self.batch_size}"]
        defaults = TrainConfig.__dataclass_fields__
        for key in ("model", "method", "sam", "smoothing", "ssl", "augment", "mix"):
            value = getattr(self, key)
            if value != defaults[key].default:
                parts.append(str(value).replace("/", "-"))
        parts.append(f"s{self.seed}")
        return "_".join(parts)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _run_check(meta: dict[str, Any], cfg: TrainConfig) -> None:
    """The `check_config(cfg)` rule a dataset or model registered, if any."""
    check = meta.get("check_config")
    if check is not None:
        check(cfg)


def _known(key: str) -> dataclasses.Field:
    if key not in FIELDS:
        close = difflib.get_close_matches(key, FIELDS, n=3, cutoff=0.75)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown config key '{key}'{hint}; `imbtrain keys` lists them all")
    return FIELDS[key]


def _coerce(key: str, value: Any, typ: str) -> Any:
    """Turn a YAML or command-line value into the field's type, or fail naming it."""
    try:
        if typ == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if typ == "int":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(str(value)) if isinstance(value, str) else int(value)
        if typ == "float":
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
            return out
        if value is None:
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not a valid {typ}") from None


def check_value(key: str, value: Any) -> Any:
    """The value of `key` coerced to its type and checked against what is allowed."""
    f = _known(key)
    raw = value
    value = _coerce(key, value, f.type if isinstance(f.type, str) else f.type.__name__)
    meta = f.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of "
                          f"{', '.join(map(str, meta['choices']))}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None or hi is not None:
        too_low = lo is not None and (value <= lo if meta.get("lo_open") else value < lo)
        too_high = hi is not None and value > hi
        if too_low or too_high:
            left = "(" if meta.get("lo_open") else "["
            rng = f"{left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            raise ConfigError(f"{key}={raw!r} is out of range; allowed: {rng}")
    return value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` strings into a dict of typed values (types checked by TrainConfig)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"'{item}' is not a key=value override")
        key, raw = item.split("=", 1)
        key = key.strip().lstrip("-").replace("-", "_")
        _known(key)
        out[key] = _literal(raw.strip())
    return out


def _literal(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


CONFIG_FILE = "a TrainConfig YAML file (a mapping of config keys; `imbtrain keys` lists them)"


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A TrainConfig from a YAML file (safe loading only), then overrides on top."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    text = read_text(p, CONFIG_FILE)  # a folder, an empty, binary or non-UTF-8 file: one line
    try:
        data = load_yaml(text, p)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of config keys, got {type(data).__name__}")
    if isinstance(data.get("per_train_ratio"), list):  # a study's index (imbtrain.study.export)
        files = [str(p.parent / e["config"]) for e in data["per_train_ratio"]
                 if isinstance(e, dict) and "config" in e]
        raise ConfigError(f"{p} lists a study's best configuration at each train ratio, not "
                          f"one config; train one of them: {', '.join(files)}")
    for key in data:
        try:
            _known(key)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from None
    data.update(overrides or {})
    return TrainConfig(**data)


def allowed_values(key: str) -> list[str] | None:
    """The values `key` allows, when it is a choice (registry names read now), or None.

        >>> allowed_values("sam"), allowed_values("lr")
        (['none', 'sam', 'sam_a'], None)
    """
    if key == "model":  # registered names and the family patterns (wrn_<depth>_<width>, ...)
        return MODELS.known()
    choices = _known(key).metadata.get("choices")
    return [str(c) for c in choices] if choices else None


def describe(key: str) -> str:
    """The docstring of a config field (the line under it in this file)."""
    _known(key)
    src = inspect.getsource(TrainConfig)
    m = re.search(rf"^\s+{key}: [^\n]*\n\s+\"\"\"(.*?)\"\"\"", src, re.M | re.S)
    return " ".join(m.group(1).split()) if m else ""
