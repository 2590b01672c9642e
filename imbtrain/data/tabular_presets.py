"""File layouts of the tabular datasets of the paper's Table 6 (`tabular_preset=...`).

A preset names the label column, the columns to leave out and, for the headerless UCI files,
the column names, so that the original file can be passed as it was downloaded:

    imbtrain train dataset=tabular tabular_preset=adult data_dir=/data/adult/adult.data
    imbtrain train dataset=tabular tabular_preset=covertype data_dir=/data/covtype.data.gz
    imbtrain train dataset=tabular tabular_preset=otto data_dir=/data/otto/train.csv

A file that has a header row works too: the preset's names are used only when the first row
is not a header (it lacks the label column and has as many fields as the preset has names).
`label_column=` on the command line wins over the preset's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """One file layout: label column, columns to drop, names of a headerless file."""

    name: str
    label_column: str
    layout: str  # one line: where the file comes from and what it holds
    column_names: tuple[str, ...] = ()  # for a headerless file; () = the file has a header
    drop: tuple[str, ...] = ()


ADULT_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
)

_COVTYPE_NUMERIC = (
    "Elevation", "Aspect", "Slope", "Horizontal_Distance_To_Hydrology",
    "Vertical_Distance_To_Hydrology", "Horizontal_Distance_To_Roadways", "Hillshade_9am",
    "Hillshade_Noon", "Hillshade_3pm", "Horizontal_Distance_To_Fire_Points",
)
COVERTYPE_COLUMNS = (
    _COVTYPE_NUMERIC
    + tuple(f"Wilderness_Area{i}" for i in range(1, 5))
    + tuple(f"Soil_Type{i}" for i in range(1, 41))
    + ("Cover_Type",)
)

PRESETS: dict[str, Preset] = {
    "adult": Preset(
        name="adult",
        label_column="income",
        layout="UCI Adult `adult.data`: 15 comma-separated fields, no header, '?' for missing; "
               "6 numeric and 8 string features, label income (<=50K, >50K); "
               "drop `fnlwgt` yourself with tabular_drop=fnlwgt if you like",
        column_names=ADULT_COLUMNS,
    ),
    "covertype": Preset(
        name="covertype",
        label_column="Cover_Type",
        layout="UCI Covertype `covtype.data(.gz)`: 55 integer fields, no header; 10 numeric "
               "features, 4 wilderness and 40 soil-type 0/1 columns, label Cover_Type (1..7)",
        column_names=COVERTYPE_COLUMNS,
    ),
    "otto": Preset(
        name="otto",
        label_column="target",
        layout="Kaggle Otto Group `train.csv`: header id,feat_1..feat_93,target; 93 count "
               "features, label target (Class_1..Class_9); the id column is dropped",
        drop=("id",),
    ),
}


def get_preset(name: str) -> Preset | None:
    """The preset called `name`, None for "none" or ""."""
    if name in ("", "none"):
        return None
    return PRESETS[name]
