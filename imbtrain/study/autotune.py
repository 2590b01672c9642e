"""What `imbtrain autotune DATA` searches, built from the data (Ray-free).

    source = read_source("fraud.csv", label_column="is_fraud")   # or an image folder
    splits = hold_out(source.labels, seed=0)                      # stratified, every class
    write_splits(source, splits, "runs/fraud_data")               # search/ and final/ layouts
    space = autotune_space(source, splits, "runs/fraud_data", epochs=20, trials=30)

The held-out splits: of each class, `TEST_FRACTION` of the samples (at
least 1) is the test split and `VAL_FRACTION` (at least 2) the validation split, drawn by a
per-class shuffle seeded with `seed`; the rest (at least 1) trains. A class needs at least
`MIN_PER_CLASS` = 4 samples. The test split is never seen by the search: its trials train on
the train split and are scored on the validation split (the `search` layout: the train split
as the train pool, the validation split as the held-out pool, cut by `val_fraction=0.9` into
the trials' validation part and a tenth the trials report as their test), and the final
models train on train + validation (the `final` layout) and are scored on the test split
alone, by applying their saved model folders to its files.

The space is the paper's prescription (Sections 3-4): the batch size (powers of two that
leave at least `MIN_STEPS` steps an epoch), augmentation policies that fit the image size
(images), label smoothing (class-conditional, its epsilon), SAM-A (its radius), joint SSL
(images: VICReg and its lambda), the learning rate, and the specialised methods (`method`:
re-weighting, deferred re-weighting, focal loss) beside ERM, so the search itself compares
them. It is searched with Optuna (TPE) and stopped early with ASHA, one train ratio (the
data's own imbalance, train_ratio=1) and one seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from imbtrain.errors import UserError

TEST_FRACTION = 0.2
VAL_FRACTION = 0.2
MIN_PER_CLASS = 4  # 1 train, 2 validation (the search's val and test parts), 1 test
SEARCH_VAL_FRACTION = 0.9  # of the validation split: the trials' val part (the rest: "test")
MIN_STEPS = 4  # a batch size leaves at least this many steps an epoch
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
SPECIALISED = ("reweight", "drw", "focal")
SPACE_FILE = "space.yaml"
SEARCH, FINAL, TEST = "search", "final", "test"  # the layouts' folders under the data folder


@dataclass
class Source:
    """A user's data: an image folder or a table, its labels and class names."""

    path: Path
    kind: str  # "image" or "table"
    class_names: list[str]
    labels: np.ndarray  # class index of each sample (files sorted a class, or table rows)
    files: list[Path] = field(default_factory=list)  # images only, aligned with labels
    label_column: str = ""  # tables only
    image_side: int = 0  # images: the side the search trains at

    @property
    def counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(self.class_names)).tolist()


def read_source(path: str | Path, label_column: str = "") -> Source:
    """The data at `path`: a class-per-folder tree of images, or a CSV or Parquet file with
    `label_column`. A UserError (one line) when it is neither, or the label is missing."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"DATA {path} does not exist; give an image folder (one subfolder a "
                        "class) or a CSV or Parquet file")
    if path.is_dir():
        if label_column:
            raise UserError(f"--label-column is for tables; {path} is an image folder (its "
                            "subfolders are the classes)")
        return _image_source(path)
    if not label_column:
        raise UserError(f"{path} is a table; give --label-column, the column that holds the "
                        "class")
    return _table_source(path, label_column)


def _image_source(root: Path) -> Source:
    from PIL import Image

    from imbtrain.data.vision import class_folders, read_tree

    layout = "a class-per-folder tree DATA/<class>/*.png (jpg, ...)"
    if (root / "train").is_dir() or (root / "test").is_dir():
        raise UserError(f"{root} has train/ or test/ subfolders; autotune holds out its own "
                        f"splits: give {layout}")
    classes = [p.name for p in class_folders(root, "autotune", layout)]
    files, y = read_tree(root, classes, "autotune", layout)
    with Image.open(files[0]) as img:
        side = max(img.size)
    return Source(root, "image", classes, y.numpy(), list(files),
                  image_side=min(side, 64))


def _table_source(path: Path, label: str) -> Source:
    from imbtrain.data.tabular import label_codes, read_table

    table = read_table(path, None, label)
    if label not in table.column_names:
        raise UserError(f"--label-column {label!r} is not a column of {path}; columns: "
                        f"{', '.join(table.column_names)}")
    y, names = label_codes(table, label, path.name)
    return Source(path, "table", names, y, label_column=label)


# ================================================================ splits


@dataclass
class Splits:
    """Row (or file) indices of each split, sorted."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def counts(self, labels: np.ndarray, k: int) -> dict[str, list[int]]:
        return {name: np.bincount(labels[idx], minlength=k).tolist()
                for name, idx in (("train", self.train), ("val", self.val),
                                  ("test", self.test))}


def hold_out(labels: np.ndarray, class_names: list[str], seed: int = 0) -> Splits:
    """The stratified split of the module docstring: every class in every split.

    >>> s = hold_out(np.array([0] * 10 + [1] * 4), ["a", "b"])
    >>> [len(s.train), len(s.val), len(s.test)]  # 6 + 1, 2 + 2, 2 + 1
    [7, 4, 3]
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c, name in enumerate(class_names):
        idx = np.flatnonzero(labels == c)
        if len(idx) < MIN_PER_CLASS:
            raise UserError(f"class {name!r} has {len(idx)} sample(s); autotune needs at "
                            f"least {MIN_PER_CLASS} a class (1 to train, 2 to validate, 1 "
                            "to test)")
        idx = rng.permutation(idx)
        n_test = max(1, int(round(TEST_FRACTION * len(idx))))
        n_val = max(2, int(round(VAL_FRACTION * len(idx))))
        n_val = min(n_val, len(idx) - n_test - 1)
        parts["test"] += idx[:n_test].tolist()
        parts["val"] += idx[n_test:n_test + n_val].tolist()
        parts["train"] += idx[n_test + n_val:].tolist()
    return Splits(*(np.sort(np.array(parts[k], dtype=np.int64)) for k in ("train", "val",
                                                                          "test")))


def write_splits(source: Source, splits: Splits, data_dir: str | Path) -> dict[str, Path]:
    """The layouts the trials and the final models read, under `data_dir`, and the test
    split as a file (tables) or a folder (images) for `imbtrain predict`:

    - images: `search/{train,test}/<class>/` (train; validation), `final/{train,test}/
      <class>/` (train + validation; validation), `test/<class>/`: links to the user's files;
    - tables: `search/pools.yaml`, `final/pools.yaml` (`dataset=tabular_pools`) and
      `test.csv` (or `test.parquet`): the test rows as they are in the user's file.
    Returns {"search", "final", "test"} -> path.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    both = np.sort(np.concatenate([splits.train, splits.val]))
    if source.kind == "table":
        from imbtrain.data.pools import write_pools

        write_pools(data_dir / SEARCH, source.path, splits.train, splits.val)
        write_pools(data_dir / FINAL, source.path, both, splits.val)
        return {SEARCH: data_dir / SEARCH, FINAL: data_dir / FINAL,
                TEST: _write_test_rows(source, splits.test, data_dir)}
    for layout, parts in ((SEARCH, {"train": splits.train, "test": splits.val}),
                          (FINAL, {"train": both, "test": splits.val})):
        for sub, idx in parts.items():
            _link_files(source, idx, data_dir / layout / sub)
    _link_files(source, splits.test, data_dir / TEST)
    return {SEARCH: data_dir / SEARCH, FINAL: data_dir / FINAL, TEST: data_dir / TEST}


def _link_files(source: Source, idx: np.ndarray, root: Path) -> None:
    import os

    for name in source.class_names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in idx.tolist():
        src = Path(source.files[i]).resolve()
        dst = root / source.class_names[source.labels[i]] / f"{i:07d}_{src.name}"
        if not dst.is_symlink():
            os.symlink(src, dst)


def _write_test_rows(source: Source, rows: np.ndarray, data_dir: Path) -> Path:
    """The test rows of the user's file in its own format: a CSV read and written as text
    (so its values are read again as they were), a Parquet file sliced."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from imbtrain.data.tabular import NULL_TOKENS, _header, is_parquet

    if is_parquet(source.path):
        out = data_dir / f"{TEST}.parquet"
        pq.write_table(pq.read_table(source.path).take(pa.array(rows)), out)
        return out
    names = _header(source.path)
    convert = pcsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                  null_values=list(NULL_TOKENS), strings_can_be_null=True)
    table = pcsv.read_csv(source.path, convert_options=convert)
    out = data_dir / f"{TEST}.csv"
    pcsv.write_csv(table.take(pa.array(rows)), out)
    return out


# ================================================================ the space


def batch_sizes(n_train: int) -> list[int]:
    """Powers of two with at least MIN_STEPS steps an epoch; the two smallest at least."""
    fit = [b for b in BATCH_SIZES if n_train // b >= MIN_STEPS]
    return fit if len(fit) >= 2 else list(BATCH_SIZES[:2])


def augmentations(side: int) -> list[str]:
    """Policies that fit the image side: the automatic policies' ops need 32 px or more."""
    return ["none", "flip_crop", "trivialaugment"] + (["randaugment", "autoaugment"]
                                                      if side >= 32 else [])


def baseline_base(source: Source, data_dir: Path, epochs: int, seed: int) -> dict[str, Any]:
    """The default routine of the data (ERM), on the search layout: what every trial and
    every baseline starts from."""
    common = {"data_dir": str(Path(data_dir) / SEARCH), "epochs": epochs, "seed": seed,
              "data_seed": seed, "val_fraction": SEARCH_VAL_FRACTION, "schedule": "cosine",
              "train_ratio": 1.0}
    if source.kind == "table":
        return {"dataset": "tabular_pools", "label_column": source.label_column,
                "model": "mlp", "optimizer": "adamw", "lr": 0.001, "weight_decay": 0.0001,
                **common}
    return {"dataset": "imagefolder", "image_size": source.image_side, "model": "cnn",
            "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0005,
            **common}


def autotune_space(source: Source, splits: Splits, data_dir: str | Path, epochs: int,
                   trials: int | None, seed: int = 0, cpus: float = 1.0,
                   gpus: float = 0.0, hours: float | None = None,
                   max_concurrent: int | None = None) -> dict[str, Any]:
    """The search space (a search-space file's mapping) of the module docstring: `trials`
    trials, or with `hours` as many as fit in that time (both: whichever ends first)."""
    searcher: dict[str, Any] = {"type": "optuna",
                                "num_samples": -1 if trials is None else int(trials),
                                "seed": seed}
    if hours is not None:
        searcher["time_budget_s"] = float(hours) * 3600
    n_train = len(splits.train)
    knobs: dict[str, Any] = {
        "batch_size": {"choice": batch_sizes(n_train)},
        "lr": {"loguniform": [0.0003, 0.003] if source.kind == "table" else [0.01, 0.2]},
        "smoothing": {"choice": ["none", "class"]},
        "smoothing_eps": {"uniform": [0.0, 0.3]},
        "sam": {"choice": ["none", "sam_a"]},
        "sam_rho": {"loguniform": [0.01, 0.5]},
        "method": {"choice": ["erm", *SPECIALISED]},
    }
    if source.kind == "image":
        knobs["augment"] = {"choice": augmentations(source.image_side)}
        knobs["ssl"] = {"choice": ["none", "vicreg"]}
        knobs["ssl_lambda"] = {"loguniform": [0.1, 10.0]}
    what = (f"{len(source.class_names)} classes of {source.path.name}, "
            f"{n_train} train samples")
    return {"description": f"autotune: {what}",
            "base": baseline_base(source, Path(data_dir), epochs, seed), "knobs": knobs,
            "train_ratios": [1.0], "seeds": [seed],
            "searcher": searcher,
            "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
            "metric": "val_bal_acc", "mode": "max",
            "resources": {"cpus": cpus, "gpus": gpus},
            **({"max_concurrent": int(max_concurrent)} if max_concurrent else {})}


def write_space(space: dict[str, Any], data_dir: str | Path) -> Path:
    path = Path(data_dir) / SPACE_FILE
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


# ================================================================ findings


PRESCRIPTIONS = (  # (knob, value(s) of "on", what the paper prescribes)
    ("sam", ("sam_a",), "SAM-A (per-class radius) improves on plain training"),
    ("smoothing", ("class",), "class-conditional label smoothing helps"),
    ("ssl", ("vicreg",), "a joint self-supervised loss helps"),
    ("augment", None, "augmentation helps"),
    ("method", None, "the specialised methods add little over a tuned ERM"),
)


def prescriptions(results: pd.DataFrame, metric: str = "val_bal_acc") -> list[dict[str, Any]]:
    """Which of the paper's prescriptions held in the search: for each knob, the mean
    validation metric (at each trial's best epoch) of the trials with it on and off, and the
    batch size's rank correlation with the metric (the paper: smaller is better under
    imbalance). A prescription with no trial on one side is "untested"."""
    ok = results[results["status"] == "TERMINATED"] if len(results) else results
    score = ok.get(f"best/{metric}", ok.get(metric))
    rows: list[dict[str, Any]] = []
    if score is None or not len(ok):
        return rows
    for key, on_values, text in PRESCRIPTIONS:
        col = f"config/{key}"
        if col not in ok:
            continue
        values = ok[col].astype(str)
        on = values != ("none" if key != "method" else "erm") if on_values is None else \
            values.isin(on_values)
        a, b = score[on], score[~on]
        if key == "method":  # held: the specialised methods do not beat ERM
            held = None if not len(a) or not len(b) else bool(a.mean() <= b.mean())
        else:
            held = None if not len(a) or not len(b) else bool(a.mean() > b.mean())
        rows.append({"prescription": text, "knob": key, "trials on": int(on.sum()),
                     "trials off": int((~on).sum()),
                     f"mean {metric} on": float(a.mean()) if len(a) else float("nan"),
                     f"mean {metric} off": float(b.mean()) if len(b) else float("nan"),
                     "held": "untested" if held is None else "yes" if held else "no"})
    if "config/batch_size" in ok and ok["config/batch_size"].nunique() > 1 and len(ok) > 2:
        rho = float(ok["config/batch_size"].rank().corr(score.rank()))
        rows.append({"prescription": "smaller batches help under imbalance",
                     "knob": "batch_size", "trials on": len(ok), "trials off": 0,
                     f"mean {metric} on": rho, f"mean {metric} off": float("nan"),
                     "held": "yes" if rho < 0 else "no"})
    return rows
