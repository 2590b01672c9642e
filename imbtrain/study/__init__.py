"""Studies without Ray: search spaces, result tables, export, findings, the study scaffold.

Everything about a study that does not talk to Ray lives here, so that a finished study's
tables can be read, analysed and exported on any machine, with or without Ray installed;
`imbtrain.tune` runs the trials.

- `space`: the search-space schema and its loader (`load_space`), the distributions;
- `catalog`: imbtrain's own spaces and routines (package data), found by name;
- `results`: results.parquet / history.parquet / best.yaml / study.yaml: names, schema, I/O;
- `export`: the best configurations of a finished study as TrainConfig YAML;
- `findings`: the sentences the studies write about their tables;
- `options`, `script`: the options of `imbtrain study` and the scaffold of a study;
- `checkpoints`, `prerequisites`: a trial's model rebuilt from its checkpoint; weights
  trained before a study;
- `paper`: the studies of the paper, one module each.

    >>> from imbtrain.study import load_space
    >>> load_space("sam_a").with_smoke().num_trials()
    8
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "BEST_FILE", "HISTORY_FILE", "RESULTS_FILE", "STUDY_FILE", "Knob", "SpaceError",
    "StudyResult", "StudySpec", "StudyTables", "load_space", "read_results", "read_tables",
]

# Loaded on first use: a trial imports `study.space` and `study.checkpoints` alone, without
# the tables' pandas and pyarrow.
_LAZY = {**dict.fromkeys(("BEST_FILE", "HISTORY_FILE", "RESULTS_FILE", "STUDY_FILE",
                          "StudyResult", "StudyTables", "read_results", "read_tables"),
                         "imbtrain.study.results"),
         **dict.fromkeys(("Knob", "SpaceError", "StudySpec", "load_space"),
                         "imbtrain.study.space")}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imbtrain.study' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from imbtrain.study.results import (
        BEST_FILE,
        HISTORY_FILE,
        RESULTS_FILE,
        STUDY_FILE,
        StudyResult,
        StudyTables,
        read_results,
        read_tables,
    )
    from imbtrain.study.space import Knob, SpaceError, StudySpec, load_space
