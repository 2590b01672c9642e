"""Analyses of finished studies: pure functions from result tables to tables and figures.

Every analysis reads a study's results.parquet (one row a trial: `config/<key>` columns,
final metrics, `best/<metric>`, status, train_counts) and, for some, history.parquet (one
row a trial-epoch), and writes PNG figures and Parquet + Markdown tables. Each is one small
module with pure table functions and a registered entry point (`ANALYSES`, by kind):

| kind         | paper            | what                                             |
|--------------|------------------|--------------------------------------------------|
| sensitivity  | Fig. 1, 4, 5, 10 | % change over a baseline knob value per ratio    |
| variance     | Fig. 2, 6, 7     | augmentation improvement and variance by group   |
| architecture | Fig. 3, 8, 9     | balanced vs imbalanced Pearson r; vs parameters  |
| correlation  | Table 3          | cross-dataset Pearson r and slope over methods   |
| alignment    | Fig. 11-15       | best train ratio per test ratio, misalignment    |
| curation     | Fig. 16          | fixed minority, growing majority count           |
| fitting      | Fig. 17          | train accuracy per epoch, epochs to fit          |
| boundary     | Fig. 18          | minority margin (and decision-region pictures)   |
| collapse     | Table 4          | CDNV / NCC per method                            |
| comparison   | Tables 1, 2, 5   | mean ± se per method, paired t-test vs ERM       |
| importance   | (beyond paper)   | knob importance: Optuna fANOVA or eta squared    |
| sweep        | A.5-A.7          | a knob per group vs a reference, paired tests    |
| sam_modes    | A.6              | SAM-A modes x forms at their best rho; step cost |

Each kind is the module of the same name.

    from imbtrain.analysis import run_analysis, ANALYSES
    run_analysis("runs/batch_size", kinds=["sensitivity"],
                 options={"knob": "batch_size", "baseline": 128})
    # or one analysis on DataFrames:
    ANALYSES["comparison"](results, history, out_dir, metrics=["test_acc"])

Statistics: mean ± standard error std(ddof=1) / sqrt(n) over seeds (`common.mean_se`).
"""

from imbtrain.analysis import (  # noqa: F401  (each module registers its analysis)
    alignment,
    architecture,
    boundary,
    collapse,
    comparison,
    correlation,
    curation,
    fitting,
    importance,
    sam_modes,
    sweep,
    variance,
)
from imbtrain.analysis.alignment import alignment_table, best_train_ratios, misalignment
from imbtrain.analysis.architecture import (
    architecture_correlation,
    architecture_table,
    parameter_count,
)
from imbtrain.analysis.boundary import (
    boundary_distances,
    minority_margin,
    minority_points,
    plot_decision_boundaries,
)
from imbtrain.analysis.collapse import collapse_table
from imbtrain.analysis.common import mean_se, method_labels, pearson, slope
from imbtrain.analysis.comparison import method_comparison, paired_test
from imbtrain.analysis.correlation import cross_dataset_correlation
from imbtrain.analysis.curation import curation_curve
from imbtrain.analysis.fitting import epochs_to_fit, fitting_curves
from imbtrain.analysis.importance import knob_importance, variance_importance
from imbtrain.analysis.registry import (
    ANALYSES,
    record_analyses,
    register_analysis,
    run_analysis,
)
from imbtrain.analysis.sam_modes import sam_modes_table
from imbtrain.analysis.sensitivity import (
    paired_changes,
    plot_sensitivity,
    sensitivity_curve,
    sensitivity_markdown,
)
from imbtrain.analysis.sweep import sweep_table
from imbtrain.analysis.variance import augmentation_variance

__all__ = [
    "ANALYSES", "alignment_table", "architecture_correlation", "architecture_table",
    "augmentation_variance", "best_train_ratios", "boundary_distances", "collapse_table",
    "cross_dataset_correlation", "curation_curve", "epochs_to_fit", "fitting_curves",
    "knob_importance", "mean_se", "method_comparison", "method_labels", "minority_margin",
    "minority_points", "misalignment", "paired_changes", "paired_test", "parameter_count",
    "pearson", "plot_decision_boundaries", "plot_sensitivity", "record_analyses",
    "register_analysis", "run_analysis", "sam_modes_table", "sensitivity_curve",
    "sensitivity_markdown", "slope", "sweep_table", "variance_importance",
]
