"""`dataset=tabular_pools`: a table whose train and held-out pools are given, not drawn.

`imbtrain autotune` holds out its own validation and test rows of a user's table and trains
on the rest; this dataset reads such a split. `data_dir` is a folder holding `pools.yaml`:

    table: ../fraud.csv          # the table, a CSV or Parquet file (relative to the folder)
    train: [0, 1, 4, ...]        # row indices (from 0) of the train pool
    test: [2, 7, ...]            # row indices of the held-out pool (validation and test)

Rows in neither list are left out. Everything else is `dataset=tabular`'s pipeline
(`imbtrain.data.tabular`): the same reading, labels, encoders fitted on the train pool only,
and the same fitted transform kept for the saved model; `build_data` then cuts the held-out
pool into validation and test by `val_fraction`, as for every dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from imbtrain.data.base import RawData
from imbtrain.data.tabular import (
    _transform,
    check_tabular_config,
    is_parquet,
    read_table,
    table_to_raw,
)
from imbtrain.errors import UserError
from imbtrain.registry import DATASETS

POOLS_FILE = "pools.yaml"


def write_pools(folder: str | Path, table: str | Path, train, test) -> Path:
    """pools.yaml in `folder`: the table's path (relative when it can be) and the pools."""
    import os

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(Path(table).resolve(), folder.resolve())
    path = folder / POOLS_FILE
    path.write_text(yaml.safe_dump({"table": rel, "train": [int(i) for i in train],
                                    "test": [int(i) for i in test]}, sort_keys=False))
    return path


def read_pools(folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """(table path, train rows, test rows) of a pools folder; a UserError if malformed."""
    path = folder / POOLS_FILE
    need = f"a folder with {POOLS_FILE} (table, train, test), as imbtrain autotune writes"
    if not path.is_file():
        raise UserError(f"dataset=tabular_pools: {folder} has no {POOLS_FILE}; expected {need}")
    try:
        meta = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict) or not {"table", "train", "test"} <= set(meta):
        raise UserError(f"{path} lacks table, train or test; expected {need}")
    table = (folder / str(meta["table"])).resolve()
    if not table.is_file():
        raise UserError(f"{path}: its table {table} does not exist")
    return table, np.asarray(meta["train"], dtype=np.int64), \
        np.asarray(meta["test"], dtype=np.int64)


@DATASETS.register("tabular_pools", on_disk=True, check_config=check_tabular_config)
def tabular_pools(cfg) -> RawData:
    """A table with its train and held-out pools given (`pools.yaml` in `data_dir`)."""
    folder = Path(str(cfg.data_dir or "")).expanduser()
    if not folder.is_dir():
        raise UserError(f"dataset=tabular_pools: data_dir {folder} is not a folder; expected "
                        f"a folder with {POOLS_FILE}")
    table_path, train, test = read_pools(folder)
    table = read_table(table_path, None, cfg.label_column)
    n = table.num_rows
    if len(train) == 0 or len(test) == 0 or max(train.max(), test.max()) >= n or min(
            train.min(), test.min()) < 0:
        raise UserError(f"{folder / POOLS_FILE}: its rows must be within the table's "
                        f"{n} rows and both pools non-empty")
    drop = tuple(c.strip() for c in str(cfg.tabular_drop or "").split(",") if c.strip())
    return table_to_raw(table, cfg.label_column, table_path.name, _transform(cfg), drop,
                        from_csv=not is_parquet(table_path), pools=(np.sort(train),
                                                                    np.sort(test)))
