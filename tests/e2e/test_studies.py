"""The paper's studies (`studies/*.py`) end to end with `--smoke`, and the platform pieces they
stand on: variants, trial metrics, the study-script scaffold.

One in-process Ray for the module (conftest's `ray_session`: the studies' `init_ray` finds
it running), one storage folder and one MLflow sqlite file for all of them; each smoke
study is 2 to 8 one-epoch trials on embedded data. Each test runs the real script
(`main(["--smoke", ...])`), checks its headline table's shape, its figure and findings.md,
that `imbtrain analyze` draws its recorded analyses again, and (once) that the files reached
the MLflow parent run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import yaml

from imbtrain.errors import UserError
from imbtrain.study.space import SpaceError, load_space, trial_label
from imbtrain.tune.translate import param_space

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "studies"
# tabular.py is the tabular track's (tests/e2e/test_tabular_study.py).
NAMES = sorted(p.stem for p in STUDIES.glob("*.py") if p.stem != "tabular")

# study -> (headline table stem, rows of the smoke run, a column it must have)
HEADLINE = {
    "augmentation": ("augmentation_variance", 6, "variance"),     # 2 ratios x 3 groups
    "architecture": ("architecture", 6, "param_count"),           # 3 models x 2 ratios
    "batch_size": ("sensitivity", 8, "pct_change"),               # 2 comparisons x 2 x 2
    "benchmark": ("comparison", 3, "test_few_acc_p"),             # 3 methods
    "correlation": ("cross_dataset", 1, "slope"),                 # digits vs synthetic
    "data_curation": ("curation", 2, "test_minority_acc"),        # 2 majority counts
    "decision_boundary": ("minority_margin", 2, "minority_margin_se"),  # ERM, SAM-A
    "importance": ("importance", 8, "importance"),                # 8 knobs
    "joint_ssl": ("sweep", 4, "test_acc_diff"),                   # 2 ratios x 2 variants
    "label_smoothing": ("sweep", 3, "test_acc_p"),                # 3 variants, 1 eps
    "neural_collapse": ("collapse", 2, "ncc_acc_minority_train"),  # 2 methods
    "pretraining": ("sensitivity", 6, "pct_change"),              # 3 inits x 2 ratios
    "sam_a": ("sam_modes", 4, "test_minority_acc_diff"),          # ERM + 3 mode/form arms
    "test_ratio": ("alignment", 2, "best_train_ratio"),           # 2 test ratios
}


def load_study(name: str):
    spec = importlib.util.spec_from_file_location(f"study_{name}", STUDIES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """One storage folder and one MLflow sqlite store for every study of the module."""
    root = tmp_path_factory.mktemp("studies")
    return {"storage": root / "runs", "uri": f"sqlite:///{root / 'mlflow.db'}"}


# ================================================================ every study, --smoke


def test_every_study_has_a_space_and_a_headline():
    assert sorted(HEADLINE) == NAMES
    for name in NAMES:
        spec = load_space(ROOT / "search_spaces" / f"{name}.yaml")
        assert "full" in spec.sections and spec.with_smoke().num_trials() <= 8


@pytest.mark.parametrize("name", NAMES)
def test_smoke_study(name, ray_session, store, capsys):
    from imbtrain.analysis import run_analysis

    module = load_study(name)
    argv = ["--smoke", "--storage", str(store["storage"]), "--mlflow-uri", store["uri"]]
    assert module.main(argv) == 0
    out = store["storage"] / f"{name}_smoke"
    stem, rows, column = HEADLINE[name]
    table = pd.read_parquet(out / f"{stem}.parquet")
    assert len(table) == rows and column in table.columns
    assert (out / f"{stem}.png").stat().st_size > 1000 and (out / f"{stem}.md").is_file()
    printed = capsys.readouterr().out
    if name != "batch_size":  # batch_size keeps its outputs as they were (no findings.md)
        finding = (out / "findings.md").read_text()
        assert finding.split("\n\n")[0] in printed
    assert "best configuration" in printed
    recorded = yaml.safe_load((out / "analyses.yaml").read_text())
    assert set(run_analysis(out, log=lambda line: None)) == set(recorded)


def test_studies_log_their_files_to_the_parent_run(store):
    """The analysis files reach the MLflow parent run (after the smoke studies ran)."""
    from mlflow import MlflowClient

    from imbtrain.tune.mlflow_log import parent_run_id

    run_id = parent_run_id(store["uri"], "sam_a_smoke")
    names = {a.path for a in MlflowClient(store["uri"]).list_artifacts(run_id)}
    assert {"sam_modes.png", "sam_modes.md", "sam_modes.parquet", "sam_modes_sweep.md",
            "sam_modes_sweep.parquet", "findings.md", "results.parquet"} <= names


def test_decision_boundary_records_the_margin(store):
    res = pd.read_parquet(store["storage"] / "decision_boundary_smoke" / "results.parquet")
    assert sorted(res["variant"]) == ["erm", "erm", "sam_a", "sam_a"]
    assert (res["minority_margin"] > 0).all() and res["minority_train_acc"].between(0, 1).all()
    assert (store["storage"] / "decision_boundary_smoke" / "decision_boundary.png").is_file()


def test_pretraining_made_its_weights_first(store):
    weights = store["storage"] / "pretraining_smoke_weights"
    assert sorted(p.name for p in weights.glob("*.pt")) == ["supervised.pt", "vicreg.pt"]
    res = pd.read_parquet(store["storage"] / "pretraining_smoke" / "results.parquet")
    paths = set(res.loc[res["variant"] != "random", "config/pretrained"])
    assert paths == {str(weights / "supervised.pt"), str(weights / "vicreg.pt")}


def test_data_curation_refuses_a_fixed_pool(capsys):
    assert load_study("data_curation").main(["--smoke", "--dataset", "digits",
                                             "--mlflow-uri", "none"]) == 2
    assert "needs dataset=synthetic" in capsys.readouterr().err


# ================================================================ variants (search spaces)

SPACE = """
base: {dataset: digits, model: mlp, epochs: 1}
knobs:
  batch_size: {grid: [32, 64]}
train_ratios: [1.0, 0.1]
variants:
  erm: {}
  sam_a: {sam: sam_a, sam_rho: 0.1}
  ssl: {ssl: vicreg}
trial_metrics: [param_count]
smoke:
  variants: [erm, ssl]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_variants_cross_the_grid_with_their_own_keys(tmp_path):
    from ray.tune.search.variant_generator import generate_variants

    spec = load_space(write(tmp_path, SPACE))
    assert spec.num_trials() == 2 * 2 * 3 and spec.with_smoke().num_trials() == 2 * 2 * 2
    assert spec.trial_metrics == ("param_count",)
    configs = [cfg for _, cfg in generate_variants(param_space(spec))]
    assert len(configs) == 12
    by_name = {(c["__variant__"], c["batch_size"], c["train_ratio"]): c for c in configs}
    sam_a = by_name[("sam_a", 64, 0.1)]
    assert (sam_a["sam"], sam_a["sam_rho"], sam_a["ssl"]) == ("sam_a", 0.1, "none")
    erm = by_name[("erm", 32, 1.0)]  # keys a variant leaves alone keep the base's values
    assert (erm["sam"], erm["sam_rho"], erm["ssl"]) == ("none", 0.05, "none")
    assert spec.variant_table()["ssl"] == {"sam": "none", "sam_rho": 0.05, "ssl": "vicreg"}


def test_trial_label_names_the_variant():
    config = {"dataset": "digits", "train_ratio": 0.1, "batch_size": 32, "seed": 1,
              "__variant__": "supervised"}
    assert trial_label(config) == "digits_r0.1_bs32_supervised_s1"
    # A variant whose setting is already in the name is not repeated; an unresolved config
    # (a new trial's) takes the variant's values from the table.
    unresolved = {**config, "__variant__": "sam_a", "sam": ("__fn_ph", "x")}
    assert trial_label(unresolved, {"sam_a": {"sam": "sam_a"}}) == "digits_r0.1_bs32_sam_a_s1"


@pytest.mark.parametrize("change, message", [
    ("variants:\n  a: {seed: 1}\n", "variants.a.seed: seeds are the top-level key"),
    ("variants:\n  a: {batch_size: 16}\n", "batch_size is also a knob"),
    ("variants:\n  a: {train_ratio: 0.5}\n", "only when the file lists a single train ratio"),
    ("variants:\n  a b: {}\n", "variants.a b: a variant name is letters"),
    ("variants:\n  a: {sam: nope}\n", "variants.a.sam: sam='nope' is not allowed"),
    ("variants:\n  a: {}\nsmoke:\n  variants: [b]\n", "unknown variant(s) b"),
    ("trial_metrics: [margin]\n", "unknown trial metric 'margin'"),
])
def test_variant_errors_name_the_key(tmp_path, change, message):
    text = ("base: {dataset: digits, model: mlp}\nknobs:\n  batch_size: {grid: [32]}\n"
            "train_ratios: [1.0, 0.1]\n" + change)
    with pytest.raises(SpaceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_space(write(tmp_path, text))


def test_a_variant_may_set_the_train_ratio_of_a_single_ratio_space(tmp_path):
    spec = load_space(write(tmp_path, """
base: {dataset: synthetic, synthetic_shape: "4", model: mlp, imbalance_profile: step}
variants:
  small: {synthetic_samples: 20, train_ratio: 1.0}
  large: {synthetic_samples: 80, train_ratio: 0.25}
"""))
    assert spec.num_trials() == 2 and spec.knobs == {}
    assert spec.variant_table()["large"] == {"synthetic_samples": 80, "train_ratio": 0.25}


def test_variants_need_the_grid_searcher(tmp_path):
    with pytest.raises(SpaceError, match="variants are grid points"):
        load_space(write(tmp_path, "knobs:\n  lr: {choice: [0.1]}\nsearcher: optuna\n"
                                   "variants:\n  a: {}\n"))


# ================================================================ the scaffold


def test_scaffold_spec_name_and_data_dirs(tmp_path):
    from imbtrain.study.script import parse_args, study_name, study_spec

    space = write(tmp_path, "base: {dataset: digits}\nknobs:\n  batch_size: {grid: [32]}\n"
                            "full:\n  base: {dataset: imagefolder, epochs: 3}\n")
    args = parse_args("doc", space, ["--full", "--smoke", "--data-dir", "/a", "/b"])
    spec = study_spec(args)
    assert spec.base["data_dir"] == "/a" and spec.knobs["data_dir"].values == ("/a", "/b")
    assert spec.is_smoke and study_name(spec, args) == "space_full_smoke"
    plain = parse_args("doc", space, ["--name", "x"])
    assert study_name(study_spec(plain), plain) == "x"


def test_trial_metric_margin_needs_2d_inputs():
    from types import SimpleNamespace

    from imbtrain.metrics.trial import compute_trial_metrics

    data = SimpleNamespace(input_shape=(1, 8, 8), name="digits")
    with pytest.raises(UserError, match="needs 2-D inputs"):
        compute_trial_metrics(["minority_margin"], SimpleNamespace(train_counts=[1]), data)
