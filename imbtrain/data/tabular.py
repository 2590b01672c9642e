"""Tabular data: a CSV or Parquet file (`dataset=tabular`) and an embedded fraud-like set
(`dataset=tabular_synth`), both turned into float32 vectors by one pipeline.

    imbtrain train dataset=tabular data_dir=transactions.csv label_column=is_fraud

Pipeline (the preprocessing of Gorishniy et al. 2021, "Revisiting deep learning models for
tabular data", with the rules below for what they leave open):

1. Read with pyarrow: Parquet (recognised by its magic bytes) or CSV (any other file,
   compressed or not, with a header row; presets name the columns of headerless files).
2. Labels: the distinct values of `label_column`, sorted (numbers numerically, strings
   lexicographically), become 0..K-1; `class_names` are their texts. The profile's class
   order is this order (the dataset's label order, docs/methods.md, "1. Imbalanced data"), so
   class 0 gets n_max.
3. A fixed stratified split seeded by a constant (never `data_seed`): 36% of each class to the
   test pool, 64% to the train pool. `build_data` then takes `val_fraction` of the test pool as
   the validation split (val_fraction=0.4444 gives Gorishniy's 64/16/20 split) and applies the
   imbalance profile to the train pool, as for every dataset; train_ratio=1 keeps the file's
   own imbalance.
4. Encoders fitted on the train pool only (no validation or test row is ever seen), giving
   the columns [numeric | missing indicators | one-hot blocks] described by `TabularInfo`.
   The fitted encoders are kept as a `TabularTransform` (RawData.tabular_transform), which
   turns new rows of the same layout into the same vectors: a saved model stores its
   parameters (`to_params`: names and categories as plain data, arrays as tensors; never a
   pickle) and applies them to the rows it predicts (`imbtrain.saved`).

Rules:

- Column kinds: numbers (int, float, decimal) are numeric; strings, booleans and dictionary
  columns are categorical. In a CSV, a string column whose values are all numbers once
  surrounding spaces are stripped is numeric. String values are stripped of spaces.
- Missing values: empty, NA, N/A, NaN, null, ? and pyarrow's other null spellings. A numeric
  missing value is imputed with the train pool's median and flagged in an indicator column
  (1 = was missing), one for each numeric column with a missing value in the train pool. A
  categorical missing value is a category of its own (`<missing>`) when the train pool has
  one; otherwise it is unknown (below). Rows with a missing label are refused.
- Categories: the train pool's distinct values, the `MAX_CATEGORIES` most frequent at most,
  sorted. Code m = len(categories) is "unknown": a value the train pool did not have (or
  only among the rarer ones); its one-hot block is all zeros, which is scikit-learn's
  `handle_unknown="ignore"` and, for the FT-Transformer, the column's bias embedding.
- Numeric transform (`tabular_transform`): `quantile` (default): scikit-learn's
  QuantileTransformer to a normal distribution, n_quantiles = clip(n // 30, 10, 1000), fitted
  on the train pool plus Gaussian noise of 1e-3 of each column's std so that tied values
  (counts) spread over quantiles, as Gorishniy et al. do; `standard`: mean 0, std 1 on the
  train pool (StandardScaler, population std).
- Dropped columns: `tabular_drop` and the preset's, and every column with fewer than two
  distinct values in the train pool (missing counted as a value): they carry nothing.
- Refused with a one-line UserError: a missing or unreadable file, a label column that is not
  there, a missing label, a single class, a class with fewer than `MIN_CLASS_ROWS` rows, a
  column of numbers holding a few non-numbers ("garbage"), infinite values, unsupported column
  types, no feature left. Neither a label column nor a preset: refused by `TrainConfig`
  (`check_tabular_config`), before any file is read.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imbtrain.data.base import RawData
from imbtrain.data.profiles import split_per_class
from imbtrain.data.tabular_presets import PRESETS, Preset, get_preset
from imbtrain.errors import ConfigError, UserError
from imbtrain.registry import DATASETS

TABULAR_SEED = 20230  # constant: the pools of a file must never change between runs
TEST_POOL_FRACTION = 0.36  # 64% train pool; val_fraction 0.4444 of the rest -> 64/16/20
MAX_CATEGORIES = 100  # one-hot width cap per column; rarer categories share "unknown"
MIN_CLASS_ROWS = 5  # the fewest rows a class needs to reach train, validation and test
GARBAGE_SHARE = 0.9  # a string column with at least this share of numbers is a broken numeric
MISSING = "<missing>"


class _OnFirstUse:
    """A module imported on its first attribute access: pandas and pyarrow take a second or
    more to import, and only tabular data need them (`import imbtrain.train` stays light)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


pd, pa = _OnFirstUse("pandas"), _OnFirstUse("pyarrow")
NULL_TOKENS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
               "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null", "?")


@dataclass(frozen=True)
class TabularInfo:
    """The columns of tabular vectors: [numeric | missing indicators | one-hot blocks].

    `n_numeric` transformed numeric columns come first, then `n_indicators` 0/1 missing
    indicators, then one one-hot block per categorical column, of widths `cat_cardinalities`
    (the known categories; an unknown value is an all-zero block). `columns` names each of
    the D columns ("age", "age_missing", "sex=Female", ...).
    """

    n_numeric: int
    n_indicators: int
    cat_cardinalities: tuple[int, ...]
    columns: tuple[str, ...]
    transform: str = "quantile"

    @property
    def n_continuous(self) -> int:
        """Columns before the one-hot blocks: numeric values and their missing indicators."""
        return self.n_numeric + self.n_indicators

    @property
    def num_features(self) -> int:
        return len(self.columns)


# ================================================================ reading


def data_file(cfg) -> Path:
    """`cfg.data_dir` as the path of an existing file, or a UserError saying what is needed."""
    text = str(getattr(cfg, "data_dir", "") or "")
    need = ("a CSV or Parquet file with a header row, one column per feature and the class "
            "in label_column")
    if not text:
        raise UserError(f"dataset=tabular: data_dir is empty; set data_dir to {need}")
    path = Path(text).expanduser()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise UserError(f"dataset=tabular: data_dir {path} {what}; expected {need}")
    return path


def is_parquet(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def read_table(path: Path, preset: Preset | None = None, label: str = "") -> pa.Table:
    """The file as an arrow table (Parquet or CSV); a preset names a headerless file's columns."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        if is_parquet(path):
            return pq.read_table(path)
        convert = pcsv.ConvertOptions(null_values=list(NULL_TOKENS), strings_can_be_null=True)
        table = pcsv.read_csv(path, convert_options=convert)
        if preset is not None and preset.column_names and label not in table.column_names \
                and table.num_columns == len(preset.column_names):
            names = pcsv.ReadOptions(column_names=list(preset.column_names))
            table = pcsv.read_csv(path, read_options=names, convert_options=convert)
        return table
    except pa.ArrowInvalid as e:
        if "conversion error" in str(e):  # pyarrow typed a column by its first block only
            return _read_csv_as_strings(path, preset, label)
        raise UserError(f"{path}: cannot be read as CSV or Parquet: {_first_line(e)}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot be read: {_first_line(e)}") from None


def _read_csv_as_strings(path: Path, preset: Preset | None, label: str) -> pa.Table:
    """Every column read as text, typed afterwards by the rules (`_feature_values`)."""
    import pyarrow.csv as pcsv

    names = _header(path)
    read = pcsv.ReadOptions()
    if preset is not None and preset.column_names and label not in names \
            and len(names) == len(preset.column_names):
        names = list(preset.column_names)
        read = pcsv.ReadOptions(column_names=names)
    convert = pcsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                  null_values=list(NULL_TOKENS), strings_can_be_null=True)
    return pcsv.read_csv(path, read_options=read, convert_options=convert)


def _header(path: Path) -> list[str]:
    """The column names of a CSV's first row (pyarrow reads one block for them)."""
    import pyarrow.csv as pcsv

    return list(pcsv.open_csv(path).schema.names)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# ================================================================ columns


def _strings(col: pa.ChunkedArray) -> pd.Series:
    """Text values stripped of spaces, with the missing spellings as None."""
    s = col.to_pandas().astype(object)
    s = s.where(s.isna(), s.astype(str).str.strip())
    return s.where(~s.isin(NULL_TOKENS) & s.notna(), None)


def _feature_values(name: str, col: pa.ChunkedArray, from_csv: bool) -> tuple[str, np.ndarray]:
    """("numeric", float64, NaN = missing) or ("categorical", object array, None = missing)."""
    t = col.type
    if pa.types.is_null(t):  # every value missing: one distinct value, dropped as constant
        return "categorical", np.full(len(col), None, dtype=object)
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = col.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        return "numeric", _finite(name, values)
    if pa.types.is_boolean(t):
        return "categorical", np.array([None if v is None else str(v) for v in col.to_pylist()],
                                       dtype=object)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        s = _strings(col)
        numbers = pd.to_numeric(s, errors="coerce")
        present = s.notna()
        is_number = numbers.notna() & present
        n_present, n_numbers = int(present.sum()), int(is_number.sum())
        if n_present and n_numbers == n_present and from_csv:
            return "numeric", _finite(name, numbers.to_numpy(dtype=np.float64))
        if n_present and n_numbers < n_present and n_numbers >= GARBAGE_SHARE * n_present:
            bad = np.flatnonzero((present & ~is_number).to_numpy())
            raise UserError(
                f"column {name!r} holds numbers but also {len(bad)} value(s) that are not "
                f"({s.iloc[bad[0]]!r} in data row {bad[0] + 1}); make them numbers or missing "
                f"values (empty, NA, NaN, ?), or leave the column out with tabular_drop={name}")
        return "categorical", s.to_numpy(dtype=object)
    raise UserError(f"column {name!r} has type {t}; imbtrain reads number, string and boolean "
                    f"columns; convert it or leave it out with tabular_drop={name}")


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0]) + 1
        raise UserError(f"column {name!r} holds an infinite value (data row {row}); use a "
                        "finite number or a missing value (empty, NA)")
    return values


def _class_name(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def label_codes(table: pa.Table, label: str, source: str) -> tuple[np.ndarray, list[str]]:
    """Labels as int64 codes 0..K-1 in sorted order of their values, and the class names."""
    if label not in table.column_names:
        raise UserError(f"label_column {label!r} is not a column of {source}; columns: "
                        f"{', '.join(table.column_names)}")
    col = table.column(label)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        values = _strings(col).to_numpy(dtype=object)
    else:
        values = np.array(col.to_pylist(), dtype=object)
        values[pd.isna(values)] = None
    missing = np.flatnonzero(pd.isna(values))
    if len(missing):
        rows = ", ".join(str(r + 1) for r in missing[:5])
        raise UserError(f"label column {label!r} of {source} has {len(missing)} missing "
                        f"value(s) (data rows {rows}{', ...' if len(missing) > 5 else ''}); "
                        "remove those rows or fill them in")
    classes = sorted(set(values.tolist()))
    if len(classes) < 2:
        raise UserError(f"label column {label!r} of {source} holds a single value "
                        f"({_class_name(classes[0])!r}); a classifier needs at least two classes")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[v] for v in values], dtype=np.int64)
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < MIN_CLASS_ROWS:
        small = int(counts.argmin())
        raise UserError(f"class {_class_name(classes[small])!r} of label column {label!r} has "
                        f"{counts[small]} row(s); each class needs at least {MIN_CLASS_ROWS} so "
                        "that train, validation and test all hold it")
    return y, [_class_name(c) for c in classes]


def split_pools(y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed stratified split: (train_pool_rows, test_pool_rows), sorted, 64% / 36%."""
    test_idx, train_idx = split_per_class(torch.from_numpy(y), TEST_POOL_FRACTION,
                                          TABULAR_SEED, num_classes)
    return train_idx.numpy(), test_idx.numpy()


# ================================================================ encoders (train pool only)


class NumericEncoder:
    """Median imputation + missing indicators + quantile or standard transform (see module)."""

    def __init__(self, transform: str) -> None:
        self.transform = transform  # "quantile" or "standard" (the config's choices)

    def fit(self, x: np.ndarray) -> NumericEncoder:
        """x: (n_train, d) float64 with NaN for missing."""
        missing = np.isnan(x)
        self.medians = np.array([np.median(c[~m]) if (~m).any() else 0.0
                                 for c, m in zip(x.T, missing.T, strict=True)])
        self.indicators = np.flatnonzero(missing.any(axis=0))
        filled = np.where(missing, self.medians, x)
        self.scaler = self._scaler(len(x)).fit(self._noisy(filled))
        return self

    def _scaler(self, n: int):
        from sklearn.preprocessing import QuantileTransformer, StandardScaler

        if self.transform == "standard":
            return StandardScaler()
        return QuantileTransformer(output_distribution="normal",
                                   n_quantiles=min(max(min(n // 30, 1000), 10), n),
                                   subsample=10**9, random_state=TABULAR_SEED)

    def _noisy(self, x: np.ndarray) -> np.ndarray:
        if self.transform != "quantile":
            return x
        # Tied values (counts, integers) would all map to one quantile; a little noise
        # spreads them (Gorishniy et al.'s preprocessing). Used for fitting only.
        rng = np.random.default_rng(TABULAR_SEED)
        return x + 1e-3 * x.std(axis=0, keepdims=True) * rng.standard_normal(x.shape)

    def transform_rows(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(transformed values, indicator columns) of rows x (n, d)."""
        missing = np.isnan(x)
        filled = np.where(missing, self.medians, x)
        return self.scaler.transform(filled), missing[:, self.indicators].astype(np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted parameters as arrays: medians, indicator columns, and the scaler's
        quantiles and references (quantile) or mean and scale (standard)."""
        out = {"medians": self.medians, "indicators": self.indicators.astype(np.int64)}
        if self.transform == "standard":
            out.update(mean=self.scaler.mean_, scale=self.scaler.scale_, var=self.scaler.var_)
        else:
            out.update(quantiles=self.scaler.quantiles_, references=self.scaler.references_)
        return out

    @classmethod
    def from_arrays(cls, transform: str, arrays: dict[str, np.ndarray]) -> NumericEncoder:
        """The fitted encoder back from `arrays()`: scikit-learn's own scaler with its fitted
        attributes set, so its transform is the very one the training rows went through."""
        enc = cls(transform)
        enc.medians = np.asarray(arrays["medians"], dtype=np.float64)
        enc.indicators = np.asarray(arrays["indicators"], dtype=np.int64)
        d = len(enc.medians)
        if transform == "standard":
            enc.scaler = enc._scaler(1)
            enc.scaler.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
            enc.scaler.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
            enc.scaler.var_ = np.asarray(arrays["var"], dtype=np.float64)
            enc.scaler.n_samples_seen_ = 0
        else:
            quantiles = np.asarray(arrays["quantiles"], dtype=np.float64)
            enc.scaler = enc._scaler(len(quantiles))
            enc.scaler.quantiles_ = quantiles
            enc.scaler.references_ = np.asarray(arrays["references"], dtype=np.float64)
            enc.scaler.n_quantiles_ = len(quantiles)
        enc.scaler.n_features_in_ = d
        return enc


class CategoricalEncoder:
    """One column's categories (train pool), codes and one-hot block; see the module rules."""

    def fit(self, values: np.ndarray) -> CategoricalEncoder:
        keyed = np.where(pd.isna(values), MISSING, values).astype(str)
        names, counts = np.unique(keyed, return_counts=True)
        order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))[:MAX_CATEGORIES]
        return self.with_categories(sorted(names[i] for i in order))

    def with_categories(self, categories: list[str]) -> CategoricalEncoder:
        """The encoder of a known category list (a saved model's)."""
        self.categories = [str(c) for c in categories]
        self.index = {c: i for i, c in enumerate(self.categories)}
        return self

    def codes(self, values: np.ndarray) -> np.ndarray:
        """0..m-1 for known categories, m = len(categories) for unknown ones."""
        unknown = len(self.categories)
        keyed = np.where(pd.isna(values), MISSING, values).astype(str)
        return np.array([self.index.get(v, unknown) for v in keyed], dtype=np.int64)

    def one_hot(self, values: np.ndarray) -> np.ndarray:
        codes = self.codes(values)
        out = np.zeros((len(codes), len(self.categories) + 1))
        out[np.arange(len(codes)), codes] = 1.0
        return out[:, :-1]  # the unknown code's column dropped: its block is all zeros


def _distinct(values: np.ndarray) -> int:
    return len(set(np.where(pd.isna(values), MISSING, values).astype(str).tolist()))


# ================================================================ the pipeline


def table_to_raw(table: pa.Table, label: str, source: str, transform: str = "quantile",
                 drop: tuple[str, ...] = (), from_csv: bool = False,
                 pools: tuple[np.ndarray, np.ndarray] | None = None) -> RawData:
    """An arrow table -> RawData of float32 vectors with `TabularInfo` (module docstring)
    and the fitted `TabularTransform` that made them. `pools`: (train, test) row indices
    to use instead of the fixed split (`imbtrain.data.pools`); other rows are left out."""
    unknown = [c for c in drop if c not in table.column_names]
    if unknown:
        raise UserError(f"tabular_drop: {', '.join(map(repr, unknown))} not a column of "
                        f"{source}; columns: {', '.join(table.column_names)}")
    if table.num_rows == 0:
        raise UserError(f"{source} holds no rows")
    y, class_names = label_codes(table, label, source)
    k = len(class_names)
    train, test = split_pools(y, k) if pools is None else pools
    numeric, categorical, booleans = [], [], []
    for name in table.column_names:
        if name == label or name in drop:
            continue
        kind, values = _feature_values(name, table.column(name), from_csv)
        if _distinct(values[train]) >= 2:  # a constant column carries nothing
            (numeric if kind == "numeric" else categorical).append((name, values))
            if pa.types.is_boolean(table.column(name).type):
                booleans.append(name)
    if not numeric and not categorical:
        raise UserError(f"{source}: no feature column left besides the label {label!r} (columns "
                        "constant on the train rows are left out); add feature columns")
    x_train, x_test, fitted = _encode(numeric, categorical, train, test, transform)
    fitted = TabularTransform(
        label_column=label, columns=tuple(table.column_names),
        numeric=tuple(n for n, _ in numeric), categorical=tuple(n for n, _ in categorical),
        booleans=tuple(booleans), numeric_encoder=fitted[0], categorical_encoders=fitted[1],
        info=fitted[2])
    return RawData(torch.from_numpy(x_train), torch.from_numpy(y[train]),
                   torch.from_numpy(x_test), torch.from_numpy(y[test]), k, class_names,
                   feature_info=fitted.info, tabular_transform=fitted)


def _encode(numeric, categorical, train, test, transform):
    """Fit the encoders on the train pool rows, transform both pools: float32 matrices, and
    the fitted (numeric encoder, categorical encoders, TabularInfo)."""
    parts_train, parts_test, names = [], [], []
    n_ind = 0
    num_enc = None
    if numeric:
        x = np.stack([v for _, v in numeric], axis=1)
        num_enc = NumericEncoder(transform).fit(x[train])
        (v_tr, i_tr) = num_enc.transform_rows(x[train])
        (v_te, i_te) = num_enc.transform_rows(x[test])
        parts_train += [v_tr, i_tr]
        parts_test += [v_te, i_te]
        names += [n for n, _ in numeric]
        names += [f"{numeric[j][0]}_missing" for j in num_enc.indicators]
        n_ind = len(num_enc.indicators)
    cards, cat_encs = [], []
    for name, values in categorical:
        enc = CategoricalEncoder().fit(values[train])
        parts_train.append(enc.one_hot(values[train]))
        parts_test.append(enc.one_hot(values[test]))
        names += [f"{name}={c}" for c in enc.categories]
        cards.append(len(enc.categories))
        cat_encs.append(enc)
    info = TabularInfo(len(numeric), n_ind, tuple(cards), tuple(names), transform)
    return (_stack(parts_train, len(train)), _stack(parts_test, len(test)),
            (num_enc, tuple(cat_encs), info))


def _stack(parts: list[np.ndarray], n: int) -> np.ndarray:
    return np.concatenate(parts, axis=1).astype(np.float32) if parts else np.zeros((n, 0))


# ================================================================ the fitted transform


@dataclass(frozen=True)
class TabularTransform:
    """The fitted transform of a table's rows into vectors [numeric | indicators | one-hot]:
    the feature columns it reads, the encoders fitted on the train pool, the layout it gives.

    `encode(table)` applies it to new rows with the training rules: a missing numeric value
    is imputed with the train median (and flagged where the train pool had missing values),
    a category the train pool did not have is "unknown" (an all-zero block). `columns` are
    the training table's columns in order (the label, dropped and constant ones included:
    new rows may carry them; they are ignored). `booleans` are the categorical columns that
    were boolean in training (their categories are "True" / "False").
    """

    label_column: str
    columns: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    booleans: tuple[str, ...]
    numeric_encoder: NumericEncoder | None
    categorical_encoders: tuple[CategoricalEncoder, ...]
    info: TabularInfo

    @property
    def features(self) -> tuple[str, ...]:
        """The columns the model reads, numeric first."""
        return self.numeric + self.categorical

    def check_columns(self, names: list[str], source: str) -> None:
        """UserError naming the feature columns `names` lacks, or the columns it has that the
        model does not know (the label and the columns left out in training may be there)."""
        missing = [c for c in self.features if c not in names]
        if missing:
            raise UserError(f"{source} lacks the feature column(s) {_names(missing)} the model "
                            f"was trained on; it needs {_names(self.features)}")
        known = set(self.columns) | {self.label_column}
        extra = [c for c in names if c not in known]
        if extra:
            raise UserError(f"{source} has column(s) {_names(extra)} the model was not trained "
                            f"on; the model reads {_names(self.features)} (the label "
                            f"{self.label_column!r} and the training file's other columns "
                            "may be there too; they are ignored)")

    def encode(self, table: pa.Table, source: str) -> np.ndarray:
        """float32 (n, D) vectors of the rows of `table`, as the train rows were encoded."""
        self.check_columns(table.column_names, source)
        if table.num_rows == 0:
            raise UserError(f"{source} holds no rows")
        parts = []
        if self.numeric:
            x = np.stack([_numeric_values(n, table.column(n), source) for n in self.numeric],
                         axis=1)
            parts += list(self.numeric_encoder.transform_rows(x))
        for name, enc in zip(self.categorical, self.categorical_encoders, strict=True):
            parts.append(enc.one_hot(_category_values(table.column(name))))
        return _stack(parts, table.num_rows)

    def to_params(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(plain data for YAML/JSON, arrays for torch.save): everything `from_params` needs."""
        meta = {"label_column": self.label_column, "columns": list(self.columns),
                "numeric": list(self.numeric), "transform": self.info.transform,
                "categorical": {n: list(e.categories) for n, e in
                                zip(self.categorical, self.categorical_encoders, strict=True)},
                "booleans": list(self.booleans), "layout": list(self.info.columns)}
        arrays = ({f"numeric.{k}": v for k, v in self.numeric_encoder.arrays().items()}
                  if self.numeric_encoder is not None else {})
        return meta, arrays

    @classmethod
    def from_params(cls, meta: dict, arrays: dict[str, np.ndarray]) -> TabularTransform:
        """The transform back from `to_params()`."""
        numeric = tuple(meta["numeric"])
        enc = None
        if numeric:
            enc = NumericEncoder.from_arrays(meta["transform"], {
                k.removeprefix("numeric."): v for k, v in arrays.items()
                if k.startswith("numeric.")})
        cats = meta["categorical"]
        encoders = tuple(CategoricalEncoder().with_categories(c) for c in cats.values())
        n_ind = len(enc.indicators) if enc is not None else 0
        info = TabularInfo(len(numeric), n_ind, tuple(len(e.categories) for e in encoders),
                           tuple(meta["layout"]), meta["transform"])
        return cls(meta["label_column"], tuple(meta["columns"]), numeric, tuple(cats),
                   tuple(meta["booleans"]), enc, encoders, info)

    def example_row(self) -> dict:
        """One plausible row (train medians, each column's first category), e.g. an MLflow
        model's input example; no training row is copied."""
        row: dict = {}
        if self.numeric_encoder is not None:
            row.update(zip(self.numeric, map(float, self.numeric_encoder.medians), strict=True))
        for name, enc in zip(self.categorical, self.categorical_encoders, strict=True):
            first = enc.categories[0] if enc.categories else ""
            row[name] = first == "True" if name in self.booleans else first
        return row


def _names(cols) -> str:
    return ", ".join(repr(c) for c in cols)


def _numeric_values(name: str, col: pa.ChunkedArray, source: str) -> np.ndarray:
    """float64 values (NaN = missing) of a column the model reads as numbers."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_null(t):
        return np.full(len(col), np.nan)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = col.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        return _finite(name, values)
    where = f"values of type {t}"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        s = _strings(col)
        numbers = pd.to_numeric(s, errors="coerce")
        bad = np.flatnonzero((s.notna() & numbers.isna()).to_numpy())
        if len(bad) == 0:
            return _finite(name, numbers.to_numpy(dtype=np.float64))
        where = f"{s.iloc[bad[0]]!r} in data row {bad[0] + 1}"
    raise UserError(f"column {name!r} of {source} holds {where}; the model was trained on "
                    "numbers in this column (or missing values: empty, NA, NaN, ?)")


def _category_values(col: pa.ChunkedArray) -> np.ndarray:
    """The values of a categorical column as training saw them (text, None = missing)."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _strings(col).to_numpy(dtype=object)
    values = col.to_pylist()
    return np.array([None if v is None else _class_name(v) if isinstance(v, float) else str(v)
                     for v in values], dtype=object)


def read_rows(path: Path, transform: TabularTransform) -> pa.Table:
    """New rows for a fitted transform from a CSV or Parquet file: a CSV's categorical
    columns are read as text (as in training, where they held text), and a headerless CSV
    gets the training file's column names (with or without its label column)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        if is_parquet(path):
            return pq.read_table(path)
        names = _header(path)
        read = pcsv.ReadOptions()
        if not set(names) & set(transform.features):  # no header: the training names
            for cols in (transform.columns,
                         tuple(c for c in transform.columns if c != transform.label_column)):
                if len(cols) == len(names):
                    names, read = list(cols), pcsv.ReadOptions(column_names=list(cols))
                    break
        text = {c: pa.string() for c in transform.categorical
                if c in names and c not in transform.booleans}
        convert = pcsv.ConvertOptions(null_values=list(NULL_TOKENS), strings_can_be_null=True,
                                      column_types=text)
        return pcsv.read_csv(path, read_options=read, convert_options=convert)
    except pa.ArrowInvalid as e:
        if "conversion error" in str(e):
            return _read_csv_as_strings(path, None, "")
        raise UserError(f"{path}: cannot be read as CSV or Parquet: {_first_line(e)}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot be read: {_first_line(e)}") from None


def _drop_list(cfg, preset: Preset | None) -> tuple[str, ...]:
    text = str(getattr(cfg, "tabular_drop", "") or "")
    own = tuple(c.strip() for c in text.split(",") if c.strip())
    return (preset.drop if preset else ()) + own


def check_tabular_config(cfg) -> None:
    """dataset=tabular: a label column, given or named by a preset (run by `TrainConfig`)."""
    if not cfg.label_column and cfg.tabular_preset == "none":
        raise ConfigError("dataset=tabular needs label_column=<name of the label column> "
                          f"(or a tabular_preset: {', '.join(PRESETS)})")


@DATASETS.register("tabular", on_disk=True, check_config=check_tabular_config)
def tabular(cfg) -> RawData:
    """A CSV or Parquet file (`data_dir`) with a `label_column`; see the module docstring.

    `tabular_preset` (adult | covertype | otto) names the layout of the paper's files,
    `tabular_transform` (quantile | standard) the numeric transform, `tabular_drop` columns
    to leave out.
    """
    path = data_file(cfg)
    preset = get_preset(str(getattr(cfg, "tabular_preset", "none") or "none"))
    label = str(getattr(cfg, "label_column", "") or "") or (preset.label_column if preset else "")
    table = read_table(path, preset, label)
    return table_to_raw(table, label, path.name, _transform(cfg), _drop_list(cfg, preset),
                        from_csv=not is_parquet(path))


def _transform(cfg) -> str:
    return str(getattr(cfg, "tabular_transform", "quantile") or "quantile")


# ================================================================ embedded: tabular_synth

SYNTH_PER_CLASS = 3000  # rows a class before the split: 1,920 train pool, 1,080 test pool
MERCHANTS = ("grocery", "fuel", "travel", "online", "electronics", "jewellery")
CHANNELS = ("pos", "app", "web")


def synth_table(per_class: int = SYNTH_PER_CLASS) -> pa.Table:
    """A fraud-like binary table with numeric, skewed, categorical and missing values.

    Balanced pools (the imbalance comes from `train_ratio`, as for every dataset; class 1 is
    the "fraud" class the exp profile makes the minority). scikit-learn's make_classification
    (constant seed) gives 10 numeric features, 6 informative, 2 redundant, 3 clusters a class
    (so a linear model is not enough) and class_sep 1.5; 1% of each class's labels are
    swapped, so the classes keep exactly `per_class` rows. XGBoost with default settings
    reaches about 92% balanced accuracy on balanced data and 68% at r = 0.05. Three columns
    are derived: `amount` = exp(f0) rounded to cents, skewed, missing in 3% of the rows;
    `merchant` = f1 cut into 6 categories (replaced by a random one in 20% of the rows);
    `channel`, random, with fraud rows twice as likely on the web. Label column `is_fraud`
    (0, 1).
    """
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=2 * per_class, n_features=10, n_informative=6,
                               n_redundant=2, n_clusters_per_class=3, flip_y=0.0,
                               class_sep=1.5, random_state=TABULAR_SEED)
    rng = np.random.default_rng(TABULAR_SEED)
    n = len(y)
    # Label noise that keeps the classes the same size: 1% of each class swaps its label.
    swap = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class // 100, replace=False)
                           for c in (0, 1)])
    y[swap] = 1 - y[swap]
    amount = np.round(np.exp(1.5 + 0.8 * x[:, 0]), 2)
    amount[rng.random(n) < 0.03] = np.nan
    bins = np.quantile(x[:, 1], np.linspace(0, 1, len(MERCHANTS) + 1)[1:-1])
    merchant = np.digitize(x[:, 1], bins)
    noisy = rng.random(n) < 0.2
    merchant[noisy] = rng.integers(0, len(MERCHANTS), noisy.sum())
    web_p = np.where(y == 1, 0.5, 0.25)
    u = rng.random(n)
    channel = np.where(u < web_p, 2, np.where(u < web_p + (1 - web_p) / 2, 1, 0))
    columns = {f"f{i}": x[:, i] for i in range(2, 10)}
    columns["amount"] = pa.array(amount, from_pandas=True)
    columns["merchant"] = [MERCHANTS[i] for i in merchant]
    columns["channel"] = [CHANNELS[i] for i in channel]
    columns["is_fraud"] = y.astype(np.int64)
    return pa.table(columns)


@DATASETS.register("tabular_synth", num_classes=2)
def tabular_synth(cfg) -> RawData:
    """The embedded fraud-like table (`synth_table`) through the tabular pipeline.

    3,000 rows a class: 1,920 a class in the train pool, 1,080 in the test pool (so with
    val_fraction=0.4444, 480 validation and 600 test rows a class before the test-ratio
    profile). 8 numeric + amount (with its missing indicator) + 6 merchant + 3 channel
    one-hot columns: D = 19. Deterministic.
    """
    return table_to_raw(synth_table(), "is_fraud", "tabular_synth", _transform(cfg))


def feature_summary(info: TabularInfo) -> str:
    """One line: how many columns of each kind."""
    cats = len(info.cat_cardinalities)
    return (f"{info.num_features} columns: {info.n_numeric} numeric, {info.n_indicators} "
            f"missing indicator(s), {cats} categorical ({sum(info.cat_cardinalities)} one-hot)")

