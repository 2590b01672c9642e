"""More bad inputs through the real CLI (RELIABILITY.md, "Bad inputs", rows 53 on): every
value and combination of a search space, distributions on keys of their type, the metric
against the names a trial reports, ASHA against the budget, duplicate and boolean YAML keys,
data_dir for embedded data, empty options, --smoke without a smoke section, an --out that
cannot be written, and every damaged file (binary, empty, not UTF-8, cut short, a folder, a
file of another kind): exit status 2, one line `error: ...`, no traceback, nothing written.

Then the errors inside trials: a `UserError` a trial meets (data missing on a node, a trial
metric its data cannot give) fails that trial once, without retries, as one line; a study
whose every trial fails so ends at once, exit status 1.

The cases run in-process through `imbtrain.cli.main` (the helpers and the assertions of
tests/reliability/test_inputs.py); none starts Ray or trains but the trial tests at the end.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from imbtrain.cli import main

# The first catalogue's helpers: its bad files (`make`) and its terminal environment.
from tests.reliability.test_inputs import ENV, make

ROOT = Path(__file__).resolve().parents[2]
OUT = ["--out", "{t}/out"]
RUNS = ["--storage", "{t}/runs", "--mlflow-uri", "none"]
CONFIG = "a TrainConfig YAML file (a mapping of config keys; `imbtrain keys` lists them)"
SPACE = "a search-space YAML file (search_spaces/*.yaml)"
CLUSTER = "a Ray cluster YAML file (`ray up`'s format)"
WEIGHTS = ("a weights file (pretrained= takes a local .pt, .pth or .safetensors state dict; "
           "imbtrain downloads nothing)")
RESULTS = ("a study's results table, one row a trial (`imbtrain study ... --resume` writes "
           "it again from the study's Tune files)")
HISTORY = ("a study's history table, one row a trial-epoch (`imbtrain study ... --resume` "
           "writes it again from the study's Tune files)")
STUDY_KIND = "the record of a study that imbtrain study writes (a mapping with its metric)"
TUNER = ("the Tune state of a started study (Ray's tuner.pkl); this folder cannot be resumed: "
         "run the study again under another --name")
DUP = "a YAML mapping holds each key once"
DIGITS = "base: {dataset: digits, model: mlp, epochs: 2}\n"
METRICS = ("val_acc, val_bal_acc, val_macro_f1, val_minority_acc, val_majority_acc, "
           "val_few_acc, val_med_acc, val_many_acc, val_loss, val_class_acc_0..9, and the same "
           "of train_")
FP16 = ("sam=sam with precision=fp16 is not supported (loss scaling breaks SAM's ascent); use "
        "precision=bf16 or fp32")


# ================================================================ the bad files


def finished_study(folder: Path) -> Path:
    """A study folder as a finished study leaves it: results, history, study.yaml."""
    from imbtrain.config import TrainConfig

    folder.mkdir(parents=True)
    config = {f"config/{k}": v for k, v in TrainConfig(dataset="digits").to_dict().items()}
    pd.DataFrame([{"trial_id": "a", "trial_name": "digits_r1_bs64_s0", "status": "TERMINATED",
                   "error": None, **config, "val_bal_acc": 0.5, "test_acc": 0.5}]).to_parquet(
        folder / "results.parquet", index=False)
    pd.DataFrame({"trial_id": ["a"], "trial_name": ["digits_r1_bs64_s0"], "epoch": [1],
                  "val_bal_acc": [0.5]}).to_parquet(folder / "history.parquet", index=False)
    (folder / "study.yaml").write_text("name: s\nmetric: val_bal_acc\nmode: max\n")
    return folder


def cut(path: Path) -> None:
    """The file cut to half its length (a copy interrupted, a full disk)."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def make2(tmp: Path, name: str) -> Path:
    """The bad file or folder `name` under tmp (the first catalogue's `make` for its own)."""
    p = tmp / name
    match name:
        case "cfg_dup.yaml":
            p.write_text("lr: 0.1\nepochs: 2\nlr: 0.2\n")
        case "cfg_yes.yaml":
            p.write_text("lr: 0.1\nyes: 1\n")
        case "binary.yaml":
            p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
        case "latin1.yaml":
            p.write_text("description: r\u00e9sum\u00e9\n", encoding="latin-1")
        case "empty.yaml":
            p.write_text("")
        case "folder.yaml":
            p.mkdir()
        case "weights.txt.pt":
            p.write_text("these are not weights\n")
        case "cut.pt":
            torch.save({"backbone.w": torch.zeros(64, 64)}, p)
            cut(p)
        case "space_dup.yaml":
            p.write_text(DIGITS + "knobs:\n  lr: {grid: [0.1]}\n  batch_size: {grid: [32]}\n"
                                  "  lr: {grid: [0.2]}\n")
        case "space_off.yaml":
            p.write_text(DIGITS + "variants:\n  erm: {}\n  off: {sam: sam}\n")
        case "space_grid.yaml":
            p.write_text(DIGITS + "knobs: {model: {grid: [mlp, resnet1000]}}\n")
        case "space_choice.yaml":
            p.write_text(DIGITS + "knobs: {batch_size: {choice: [32, 0]}}\n")
        case "space_combo.yaml":
            p.write_text(DIGITS + "knobs:\n  sam: {grid: [none, sam]}\n"
                                  "  precision: {grid: [fp32, fp16]}\n")
        case "space_combo_variant.yaml":
            p.write_text(DIGITS + "knobs: {precision: {grid: [fp32, fp16]}}\n"
                                  "variants: {erm: {}, sam: {sam: sam}}\n")
        case "space_corner.yaml":
            p.write_text("base: {dataset: digits, model: mlp, epochs: 5}\n"
                         "knobs: {drw_epoch: {randint: [1, 6]}}\n")
        case "space_uniform_int.yaml":
            p.write_text(DIGITS + "knobs: {batch_size: {uniform: [16, 64]}}\n")
        case "space_randint_str.yaml":
            p.write_text(DIGITS + "knobs: {augment: {randint: [0, 2]}}\n")
        case "space_loguniform_choice.yaml":
            p.write_text(DIGITS + "knobs: {optimizer: {loguniform: [0.1, 1.0]}}\n")
        case "space_uniform_bool.yaml":
            p.write_text(DIGITS + "knobs: {nesterov: {uniform: [0, 1]}}\n")
        case "space_metric.yaml":
            p.write_text(DIGITS + "knobs: {lr: {grid: [0.1]}}\nmetric: val_balanced_acc\n")
        case "space_metric_class.yaml":
            p.write_text(DIGITS + "knobs: {lr: {grid: [0.1]}}\nmetric: val_class_acc_10\n")
        case "space_asha.yaml":
            p.write_text(DIGITS + "knobs: {lr: {grid: [0.1, 0.2]}}\n"
                                  "scheduler: {type: asha, grace_period: 4}\n")
        case "space_asha_epochs.yaml":
            p.write_text(DIGITS + "knobs: {epochs: {grid: [2, 4]}}\nscheduler: asha\n")
        case "space_embedded_dir.yaml":
            p.write_text("base: {dataset: digits, model: mlp, epochs: 2, data_dir: /data}\n"
                         "knobs: {lr: {grid: [0.1]}}\n")
        case "space_routine.yaml":
            p.write_text(DIGITS + "routine: mine\nknobs: {lr: {grid: [0.1]}}\n")
            (tmp / "routines").mkdir()
            (tmp / "routines" / "mine.yaml").write_text("epochs: 2\nbatch_size: 32\n"
                                                        "epochs: 3\n")
        case "space_pretrained.yaml":
            weights = tmp / "weights.txt.pt"
            p.write_text(DIGITS + f"knobs: {{pretrained: {{grid: [none, {weights}]}}}}\n")
            make2(tmp, "weights.txt.pt")
        case "space_data_grid.yaml":
            p.write_text("base: {dataset: tabular, label_column: y, model: mlp, epochs: 1}\n"
                         f"knobs: {{data_dir: {{grid: [{tmp}/good.csv, {tmp}/single.csv]}}}}\n")
            make(tmp, "good.csv")
            make(tmp, "single.csv")
        case "resume_cut_tuner":
            make(tmp, "space_ok.yaml")
            folder = tmp / "runs" / "space_ok"
            folder.mkdir(parents=True)
            (folder / "tuner.pkl").write_bytes(pickle.dumps({"a": list(range(100))})[:40])
            (folder / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")  # started
            (folder / "study.yaml").write_text("metric: val_bal_acc\nmode: max\n")
        case "resume_bad_study_yaml":
            make(tmp, "space_ok.yaml")
            folder = tmp / "runs" / "space_ok"
            folder.mkdir(parents=True)
            (folder / "tuner.pkl").write_bytes(pickle.dumps({"a": 1}))
            (folder / "study.yaml").write_text("metric: val_bal_acc\nmode: [max\n")
            (folder / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")  # started
        case "resume_study_yaml_list":
            make(tmp, "space_ok.yaml")
            folder = tmp / "runs" / "space_ok"
            folder.mkdir(parents=True)
            (folder / "tuner.pkl").write_bytes(pickle.dumps({"a": 1}))
            (folder / "study.yaml").write_text("- metric\n- mode\n")
            (folder / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")  # started
        case "cut_results":
            cut(finished_study(p) / "results.parquet")
        case "text_results":
            (finished_study(p) / "results.parquet").write_text("trial_id,status\na,TERMINATED\n")
        case "history_as_results":
            study = finished_study(p)
            (study / "history.parquet").replace(study / "results.parquet")
        case "results_folder":
            study = finished_study(p)
            (study / "results.parquet").unlink()
            (study / "results.parquet").mkdir()
        case "cut_history":
            cut(finished_study(p) / "history.parquet")
        case "broken_study_yaml":
            (finished_study(p) / "study.yaml").write_text("metric: val_bal_acc\n  mode: max\n")
        case "binary_study_yaml":
            (finished_study(p) / "study.yaml").write_bytes(b"\x00\x01metric\xff")
        case "broken_analyses":
            (finished_study(p) / "analyses.yaml").write_text("sensitivity: {knob: [\n")
        case "dup_analyses":
            (finished_study(p) / "analyses.yaml").write_text(
                "sensitivity: {knob: batch_size}\nsensitivity: {knob: lr}\n")
        case "study_ok":
            finished_study(p)
        case "cluster_dup.yaml":
            text = (ROOT / "cluster-local.yaml").read_text()
            p.write_text(text + "\nidle_timeout_minutes: 3\n")
        case _:
            return make(tmp, name)
    return p


# ================================================================ the catalogue

# (id, files to make, argv (with {t} = tmp), the message after "error: " (with {t})).
CASES = [
    # ---- imbtrain train: config files
    ("config_duplicate_key", ["cfg_dup.yaml"], ["train", "--config", "{t}/cfg_dup.yaml", *OUT],
     f"{{t}}/cfg_dup.yaml: line 3: key 'lr' is written twice (first at line 1); {DUP}"),
    ("config_boolean_key", ["cfg_yes.yaml"], ["train", "--config", "{t}/cfg_yes.yaml", *OUT],
     "{t}/cfg_yes.yaml: line 2: key 'yes' is read as the boolean True by YAML; quote it "
     "('yes': ...) to mean the word"),
    ("config_binary", ["binary.yaml"], ["train", "--config", "{t}/binary.yaml", *OUT],
     f"{{t}}/binary.yaml: a binary file, not text; expected {CONFIG}"),
    ("config_not_utf8", ["latin1.yaml"], ["train", "--config", "{t}/latin1.yaml", *OUT],
     f"{{t}}/latin1.yaml: not UTF-8 text (byte 0xe9 at line 1); expected {CONFIG}, saved as "
     "UTF-8"),
    ("config_empty", ["empty.yaml"], ["train", "--config", "{t}/empty.yaml", *OUT],
     f"{{t}}/empty.yaml: the file is empty; expected {CONFIG}"),
    ("config_is_a_folder", ["folder.yaml"], ["train", "--config", "{t}/folder.yaml", *OUT],
     f"{{t}}/folder.yaml: is a folder; expected {CONFIG}"),
    # ---- imbtrain train: keys, weights, --out
    ("data_dir_for_embedded_data", [], ["train", "dataset=digits", "data_dir={t}", *OUT],
     "dataset=digits is embedded and reads no data_dir (got data_dir='{t}'); drop data_dir, "
     "or name the dataset of those files: cifar10, cifar100, cinic10, tiny_imagenet, "
     "imagefolder, tabular, tabular_pools"),
    ("pretrained_text_file", ["weights.txt.pt"],
     ["train", "dataset=digits", "model=mlp", "epochs=1", "pretrained={t}/weights.txt.pt", *OUT],
     f"{{t}}/weights.txt.pt: a text file, not saved tensors; expected {WEIGHTS}"),
    ("pretrained_cut_short", ["cut.pt"],
     ["train", "dataset=digits", "model=mlp", "epochs=1", "pretrained={t}/cut.pt", *OUT],
     f"{{t}}/cut.pt: damaged (File is not a zip file); expected {WEIGHTS}"),
    ("pretrained_folder", ["folder.yaml"],
     ["train", "dataset=digits", "model=mlp", "epochs=1", "pretrained={t}/folder.yaml", *OUT],
     f"{{t}}/folder.yaml: is a folder; expected {WEIGHTS}"),
    ("m2m_teacher_text_file", ["weights.txt.pt"],
     ["train", "dataset=digits", "model=mlp", "epochs=1", "method=m2m",
      "m2m_teacher={t}/weights.txt.pt", *OUT],
     "{t}/weights.txt.pt: a text file, not saved tensors; expected the state dict (torch.save) "
     "of a mlp trained with method=erm on the same data (m2m_teacher=)"),
    ("out_empty", [], ["train", "epochs=1", "--out", ""],
     "--out is empty; give a folder (default runs/train/<trial name>), or leave the option "
     "out"),
    ("out_under_a_file", ["afile"], ["train", "epochs=1", "--out", "{t}/afile/run"],
     "--out {t}/afile/run: {t}/afile is a file, not a folder; give a path under a folder"),
    # ---- imbtrain study: damaged space files and YAML keys
    ("space_binary", ["binary.yaml"], ["study", "{t}/binary.yaml", *RUNS],
     f"{{t}}/binary.yaml: a binary file, not text; expected {SPACE}"),
    ("space_not_utf8", ["latin1.yaml"], ["study", "{t}/latin1.yaml", *RUNS],
     f"{{t}}/latin1.yaml: not UTF-8 text (byte 0xe9 at line 1); expected {SPACE}, saved as "
     "UTF-8"),
    ("space_empty", ["empty.yaml"], ["study", "{t}/empty.yaml", *RUNS],
     f"{{t}}/empty.yaml: the file is empty; expected {SPACE}"),
    ("space_is_a_folder", ["folder.yaml"], ["study", "{t}/folder.yaml", *RUNS],
     "{t}/folder.yaml: is a folder; expected a search-space YAML file (see "
     "search_spaces/*.yaml)"),
    ("space_knob_twice", ["space_dup.yaml"], ["study", "{t}/space_dup.yaml", *RUNS],
     f"{{t}}/space_dup.yaml: line 5: key 'lr' is written twice (first at line 3); {DUP}"),
    ("space_boolean_key", ["space_off.yaml"], ["study", "{t}/space_off.yaml", *RUNS],
     "{t}/space_off.yaml: line 4: key 'off' is read as the boolean False by YAML; quote it "
     "('off': ...) to mean the word"),
    ("routine_key_twice", ["space_routine.yaml"], ["study", "{t}/space_routine.yaml", *RUNS],
     f"{{t}}/routines/mine.yaml: line 3: key 'epochs' is written twice (first at line 1); "
     f"{DUP}"),
    # ---- imbtrain study: every value, every combination
    ("grid_later_value", ["space_grid.yaml"], ["study", "{t}/space_grid.yaml", *RUNS],
     "{t}/space_grid.yaml: knobs.model.grid: model 'resnet1000' is unknown; known: cnn, "
     "ft_transformer, logreg, mlp, resnet8, resnet20, resnet32, resnet56, tab_resnet, wrn_28_10, "
     "xgboost, wrn_<depth>_<width>, timm/<name>; did you mean 'resnet20'?"),
    ("choice_later_value", ["space_choice.yaml"], ["study", "{t}/space_choice.yaml", *RUNS],
     "{t}/space_choice.yaml: knobs.batch_size.choice: batch_size=0 is out of range; allowed: "
     "[1, 1048576]"),
    ("combination_of_later_values", ["space_combo.yaml"],
     ["study", "{t}/space_combo.yaml", *RUNS],
     f"{{t}}/space_combo.yaml: knobs: the trials with sam=sam, precision=fp16: {FP16}"),
    ("combination_with_a_variant", ["space_combo_variant.yaml"],
     ["study", "{t}/space_combo_variant.yaml", *RUNS],
     f"{{t}}/space_combo_variant.yaml: knobs: the trials with precision=fp16, variant sam: "
     f"{FP16}"),
    ("range_corner", ["space_corner.yaml"], ["study", "{t}/space_corner.yaml", *RUNS],
     "{t}/space_corner.yaml: knobs.drw_epoch.randint: drw_epoch=6 must be below epochs=5"),
    ("data_dir_in_a_space_for_embedded_data", ["space_embedded_dir.yaml"],
     ["study", "{t}/space_embedded_dir.yaml", *RUNS],
     "{t}/space_embedded_dir.yaml: base: dataset=digits is embedded and reads no data_dir "
     "(got data_dir='/data'); drop data_dir, or name the dataset of those files: cifar10, "
     "cifar100, cinic10, tiny_imagenet, imagefolder, tabular, tabular_pools"),
    # ---- imbtrain study: distributions on keys of their type
    ("uniform_on_an_integer_key", ["space_uniform_int.yaml"],
     ["study", "{t}/space_uniform_int.yaml", *RUNS],
     "{t}/space_uniform_int.yaml: knobs.batch_size.uniform: uniform draws numbers but "
     "batch_size is an integer key; use randint (integers, both bounds included), grid or "
     "choice"),
    ("randint_on_a_string_key", ["space_randint_str.yaml"],
     ["study", "{t}/space_randint_str.yaml", *RUNS],
     "{t}/space_randint_str.yaml: knobs.augment.randint: randint draws integers but augment "
     "is a string key; use grid or choice with its values"),
    ("loguniform_on_a_choice_key", ["space_loguniform_choice.yaml"],
     ["study", "{t}/space_loguniform_choice.yaml", *RUNS],
     "{t}/space_loguniform_choice.yaml: knobs.optimizer.loguniform: loguniform draws numbers "
     "but optimizer is a string key; use grid or choice with its values"),
    ("uniform_on_a_boolean_key", ["space_uniform_bool.yaml"],
     ["study", "{t}/space_uniform_bool.yaml", *RUNS],
     "{t}/space_uniform_bool.yaml: knobs.nesterov.uniform: uniform draws numbers but nesterov "
     "is a boolean key; use grid or choice with its values"),
    # ---- imbtrain study: metric and scheduler
    ("metric_no_trial_reports", ["space_metric.yaml"], ["study", "{t}/space_metric.yaml", *RUNS],
     "{t}/space_metric.yaml: metric: 'val_balanced_acc' is not a metric the trials report "
     f"(did you mean val_bal_acc?); allowed: {METRICS}"),
    ("metric_of_a_class_the_data_lacks", ["space_metric_class.yaml"],
     ["study", "{t}/space_metric_class.yaml", *RUNS],
     "{t}/space_metric_class.yaml: metric: 'val_class_acc_10' is not a metric the trials "
     f"report (did you mean val_class_acc_1?); allowed: {METRICS}"),
    ("asha_grace_period_over_the_epochs", ["space_asha.yaml"],
     ["study", "{t}/space_asha.yaml", *RUNS],
     "{t}/space_asha.yaml: scheduler.grace_period: 4 is more than the trials' epochs (2); "
     "allowed: 1 to 2"),
    ("asha_with_an_epochs_knob", ["space_asha_epochs.yaml"],
     ["study", "{t}/space_asha_epochs.yaml", *RUNS],
     "{t}/space_asha_epochs.yaml: knobs.epochs: ASHA stops trials by epoch up to the base's "
     "epochs; set epochs in base, not per trial, or use scheduler none"),
    # ---- imbtrain study: options
    ("smoke_without_a_smoke_section", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--smoke", *RUNS],
     "{t}/space_ok.yaml: --smoke: the space has no smoke section, so it would run whole; add "
     "one (e.g. smoke: {{base: {{epochs: 1}}, seeds: [0]}}) or leave out --smoke"),
    ("name_empty", ["space_ok.yaml"], ["study", "{t}/space_ok.yaml", "--name", "", *RUNS],
     "--name is empty; give a folder name under --storage, or leave the option out"),
    ("storage_empty", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--storage", "", "--mlflow-uri", "none"],
     "--storage is empty; give the folder studies are written to, or leave the option out"),
    ("address_empty", ["space_ok.yaml"], ["study", "{t}/space_ok.yaml", "--address", "", *RUNS],
     "--address is empty; give a Ray cluster's address (auto on its head), or leave the "
     "option out"),
    # ---- imbtrain study: files a local study's trials would read, checked by the driver
    ("study_pretrained_text_file", ["space_pretrained.yaml"],
     ["study", "{t}/space_pretrained.yaml", *RUNS],
     f"{{t}}/weights.txt.pt: a text file, not saved tensors; expected {WEIGHTS}"),
    ("study_second_data_file", ["space_data_grid.yaml"],
     ["study", "{t}/space_data_grid.yaml", *RUNS],
     "label column 'y' of single.csv holds a single value ('a'); a classifier needs at least "
     "two classes"),
    # ---- imbtrain study --resume: damaged study folders
    ("resume_cut_tuner_pkl", ["resume_cut_tuner"],
     ["study", "{t}/space_ok.yaml", "--resume", *RUNS],
     "{t}/runs/space_ok/tuner.pkl: damaged (pickle exhausted before seeing STOP); expected "
     f"{TUNER}"),
    ("resume_broken_study_yaml", ["resume_bad_study_yaml"],
     ["study", "{t}/space_ok.yaml", "--resume", *RUNS],
     "{t}/runs/space_ok/study.yaml: line 3: invalid YAML: expected ',' or ']', but got "
     f"'<stream end>'; expected {STUDY_KIND}"),
    ("resume_study_yaml_of_another_kind", ["resume_study_yaml_list"],
     ["study", "{t}/space_ok.yaml", "--resume", *RUNS],
     f"{{t}}/runs/space_ok/study.yaml: not a study record (no metric and mode); expected "
     f"{STUDY_KIND}"),
    # ---- imbtrain export / analyze: damaged study folders and options
    ("export_cut_results", ["cut_results"], ["export", "{t}/cut_results"],
     "{t}/cut_results/results.parquet: damaged or not a Parquet file (Parquet magic bytes not "
     "found in footer. Either the file is corrupted or this is not a parquet file.); expected "
     f"{RESULTS}"),
    ("export_text_as_results", ["text_results"], ["export", "{t}/text_results"],
     "{t}/text_results/results.parquet: damaged or not a Parquet file (Parquet magic bytes not "
     "found in footer. Either the file is corrupted or this is not a parquet file.); expected "
     f"{RESULTS}"),
    ("export_results_of_another_kind", ["history_as_results"],
     ["export", "{t}/history_as_results"],
     "{t}/history_as_results/results.parquet: a Parquet table without the column(s) status; "
     f"expected {RESULTS}"),
    ("export_results_is_a_folder", ["results_folder"], ["export", "{t}/results_folder"],
     f"{{t}}/results_folder/results.parquet: is a folder; expected {RESULTS}"),
    ("export_broken_study_yaml", ["broken_study_yaml"], ["export", "{t}/broken_study_yaml"],
     "{t}/broken_study_yaml/study.yaml: line 2: invalid YAML: mapping values are not allowed "
     f"here; expected {STUDY_KIND}"),
    ("export_binary_study_yaml", ["binary_study_yaml"], ["export", "{t}/binary_study_yaml"],
     f"{{t}}/binary_study_yaml/study.yaml: a binary file, not text; expected {STUDY_KIND}"),
    ("export_out_empty", ["study_ok"], ["export", "{t}/study_ok", "--out", ""],
     "--out is empty; give a YAML file to write (default <RESULTS_DIR>/best.yaml), or leave "
     "the option out"),
    ("export_out_under_a_file", ["study_ok", "afile"],
     ["export", "{t}/study_ok", "--out", "{t}/afile/best.yaml"],
     "--out {t}/afile/best.yaml: {t}/afile is a file, not a folder; give a path under a "
     "folder"),
    ("export_out_is_a_folder", ["study_ok"], ["export", "{t}/study_ok", "--out", "{t}"],
     "--out {t} is a folder; give the YAML file to write (e.g. best.yaml)"),
    ("analyze_cut_history", ["cut_history"], ["analyze", "{t}/cut_history"],
     "{t}/cut_history/history.parquet: damaged or not a Parquet file (Parquet magic bytes not "
     "found in footer. Either the file is corrupted or this is not a parquet file.); expected "
     f"{HISTORY}"),
    ("analyze_broken_analyses_yaml", ["broken_analyses"], ["analyze", "{t}/broken_analyses"],
     "{t}/broken_analyses/analyses.yaml: line 2: invalid YAML: expected the node content, "
     "but found '<stream end>'; expected a mapping of analysis kind -> options (the analyses "
     "a study drew)"),
    ("analyze_analyses_key_twice", ["dup_analyses"], ["analyze", "{t}/dup_analyses"],
     f"{{t}}/dup_analyses/analyses.yaml: line 2: key 'sensitivity' is written twice (first at "
     f"line 1); {DUP}"),
    ("analyze_option_not_yaml", ["study_ok"],
     ["analyze", "{t}/study_ok", "--kind", "sensitivity", "--option", "metrics=[test_acc"],
     "--option 'metrics=[test_acc': the value is not valid YAML (expected ',' or ']', but "
     "got '<stream end>'); e.g. baseline=128, metrics=[test_acc], title='a b'"),
    ("analyze_out_is_a_file", ["study_ok", "afile"],
     ["analyze", "{t}/study_ok", "--out", "{t}/afile"],
     "--out {t}/afile is a file; give a folder to draw into"),
    # ---- cluster files
    ("cluster_key_twice", ["cluster_dup.yaml"], ["check-cluster", "{t}/cluster_dup.yaml"],
     None),  # the line number depends on cluster-local.yaml: checked by prefix below
    ("cluster_binary", ["binary.yaml"], ["check-cluster", "{t}/binary.yaml"],
     f"{{t}}/binary.yaml: a binary file, not text; expected {CLUSTER}"),
    ("cluster_is_a_folder", ["folder.yaml"], ["check-cluster", "{t}/folder.yaml"],
     f"{{t}}/folder.yaml: is a folder; expected {CLUSTER}"),
    ("cluster_local_binary", ["binary.yaml"],
     ["cluster-local", "start", "--config", "{t}/binary.yaml", "--dir", "{t}/cl"],
     f"{{t}}/binary.yaml: a binary file, not text; expected {CLUSTER}"),
    ("cluster_local_dir_under_a_file", ["afile"],
     ["cluster-local", "start", "--config", str(ROOT / "cluster-local.yaml"), "--dir",
      "{t}/afile/cl"],
     "--dir {t}/afile/cl/cluster.json: {t}/afile is a file, not a folder; give a path under a "
     "folder"),
    # ---- imbtrain export: a metric the results lack
    ("export_metric_misspelt", ["study_ok"], ["export", "{t}/study_ok", "--metric", "val_balacc"],
     "metric 'val_balacc' is not in the results (did you mean val_bal_acc?); known: test_acc, "
     "val_bal_acc"),
    # ---- an empty --mlflow-uri (an unset shell variable) would silently turn MLflow off
    ("study_mlflow_uri_empty", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--storage", "{t}/runs", "--mlflow-uri", ""],
     "--mlflow-uri is empty; give an MLflow tracking URI (sqlite:///mlflow.db, "
     "http://host:port) or none to turn MLflow off, or leave the option out"),
    ("autotune_mlflow_uri_empty", [],
     ["autotune", "{t}/data.csv", "--label-column", "y", "--storage", "{t}/runs",
      "--mlflow-uri", ""],
     "--mlflow-uri is empty; give an MLflow tracking URI (sqlite:///mlflow.db, "
     "http://host:port) or none to turn MLflow off, or leave the option out"),
    ("train_mlflow_uri_empty", [], ["train", "epochs=1", "--out", "{t}/o", "--mlflow-uri", ""],
     "--mlflow-uri is empty; give an MLflow tracking URI (sqlite:///mlflow.db, "
     "http://host:port), or leave the option out"),
]
PREFIX = {
    "cluster_key_twice": "{t}/cluster_dup.yaml: line ",
}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def tree(root: Path) -> list[str]:
    """Every path under root, so that "nothing written" covers the study folders too."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys, monkeypatch):
    name, files, argv, message = case
    monkeypatch.chdir(tmp_path)  # a relative default (runs/, mlflow.db) would land here
    for f in files:
        make2(tmp_path, f)
    before = tree(tmp_path)
    assert main([a.format(t=tmp_path) for a in argv]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in captured.out + err
    line = err[len("error: "):].rstrip("\n")
    if message is None:
        assert line.startswith(PREFIX[name].format(t=tmp_path)), line
        assert line.endswith(f"key 'idle_timeout_minutes' is written twice (first at line "
                             f"{line.split('first at line ')[1].split(')')[0]}); {DUP}"), line
    else:
        assert line == message.format(t=tmp_path)
    assert tree(tmp_path) == before  # nothing written, nothing removed


def test_out_in_a_place_that_cannot_be_written(tmp_path, capsys):
    """Checked before training (the run would be lost): a folder that refuses a new entry,
    tried by making one (root passes any permission check, so /sys stands in here)."""
    place = Path("/sys")
    try:
        (place / "imbtrain-probe").mkdir()
    except OSError as e:
        reason = e.strerror
    else:
        (place / "imbtrain-probe").rmdir()
        pytest.skip(f"{place} is writable here")
    out = place / "imbtrain-out"
    assert main(["train", "epochs=1", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: --out {out}: cannot write in {place} "
                                       f"({reason}); give a folder you can write to\n")
    assert not out.exists()


def test_reliability_md_lists_every_case():
    text = (ROOT / "RELIABILITY.md").read_text().split("## Bad inputs", 1)[1]
    rows = [line.split("|")[2].strip() for line in text.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert [c[0] for c in CASES] == [r for r in rows if r in {c[0] for c in CASES}]
    assert len(CASES) >= 40


# ================================================================ errors inside trials


def data_space(tmp: Path, data: str, seeds: str = "[0, 1]") -> Path:
    path = tmp / "space_trials.yaml"
    path.write_text(textwrap.dedent(f"""
        base: {{dataset: tabular, label_column: y, model: mlp, epochs: 2, data_dir: {data}}}
        knobs: {{lr: {{grid: [0.1]}}}}
        seeds: {seeds}
        resources: {{cpus: 1}}
    """))
    return path


def test_a_user_error_in_every_trial_fails_each_once(ray_session, tmp_path, capsys):
    """The data on the nodes lacks the label column (a cluster's node: `--address`, so the
    driver leaves reading the data to the trials; the nodes' preflight only sees that the
    file can be read): each trial fails at once with the data's one line, without the
    retries --max-failures allows, and the study ends with status 1."""
    import ray

    address = ray.get_runtime_context().gcs_address  # the running session: nothing joined
    wrong = tmp_path / "no_label.csv"
    wrong.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    argv = ["study", str(data_space(tmp_path, str(wrong))), "--address", address,
            "--storage", str(tmp_path / "runs"), "--mlflow-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}", "--max-failures", "3"]
    assert main(argv) == 1
    out = capsys.readouterr()
    line = f"label_column 'y' is not a column of {wrong.name}; columns: a, b"
    failed = [ln for ln in out.out.splitlines() if "FAILED" in ln]
    assert len(failed) == 4 and all(ln.endswith(f": {line}") for ln in failed), out.out
    assert "RETRY" not in out.out and "Traceback" not in out.out + out.err
    folder = tmp_path / "runs" / "space_trials"
    res = pd.read_parquet(folder / "results.parquet")
    assert list(res["status"]) == ["ERROR", "ERROR"] and set(res["error"]) == {line}
    assert not list(folder.glob("*/error.txt"))  # Tune never saw a crash to retry
    assert not (folder / "best.yaml").exists()
    hist = pd.read_parquet(folder / "history.parquet")
    assert hist.empty  # the error's result is no epoch

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    kinds = {r.data.tags.get("imbtrain.run_kind"): r.info.status for r in runs}
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED", "FAILED"], kinds


def test_a_user_error_fails_its_trial_and_the_others_finish(ray_session, tmp_path, capsys):
    """Two data files, one of them without the label column: its trial fails once, the
    other trains and is the study's best."""
    import ray

    good = make(tmp_path, "good.csv")
    missing = tmp_path / "no_label.csv"
    missing.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    space = tmp_path / "mixed.yaml"
    space.write_text(textwrap.dedent(f"""
        base: {{dataset: tabular, label_column: y, model: mlp, epochs: 2}}
        knobs: {{data_dir: {{grid: [{good}, {missing}]}}}}
        resources: {{cpus: 1}}
    """))
    argv = ["study", str(space), "--address", ray.get_runtime_context().gcs_address,
            "--storage", str(tmp_path / "runs"), "--mlflow-uri", "none"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    res = pd.read_parquet(tmp_path / "runs" / "mixed" / "results.parquet")
    by_dir = dict(zip(res["config/data_dir"], res["status"], strict=True))
    assert by_dir == {str(good): "TERMINATED", str(missing): "ERROR"}
    assert res.loc[res["status"] == "TERMINATED", "epochs_run"].tolist() == [2]
    assert "RETRY" not in out and out.count("FAILED") == 2  # its progress line, its summary
    assert (tmp_path / "runs" / "mixed" / "best.yaml").is_file()


def test_a_user_error_reaches_the_terminal_as_one_line(tmp_path):
    """Through a real terminal's pipes: a trial metric the data cannot give (found by the
    trial, after training) is one line a trial on the console, no Ray traceback, no colour
    codes, no retry; exit status 1."""
    space = tmp_path / "margin.yaml"
    space.write_text("base: {dataset: digits, model: mlp, epochs: 1}\n"
                     "knobs: {lr: {grid: [0.1]}}\nseeds: [0, 1]\n"
                     "trial_metrics: [minority_margin]\nresources: {cpus: 1}\n")
    env = {**ENV, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_COLOR_PREFIX", None)
    run = subprocess.run([sys.executable, "-m", "imbtrain.cli", "study", str(space),
                          "--storage", str(tmp_path / "runs"), "--mlflow-uri", "none"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    line = "trial metric minority_margin needs 2-D inputs (toy2d); digits has shape (1, 8, 8)"
    text = run.stdout + run.stderr
    assert run.returncode == 1, text
    failed = [ln for ln in run.stdout.splitlines() if "FAILED" in ln]
    assert len(failed) == 4 and all(ln.endswith(f": {line}") for ln in failed), text
    assert "Traceback" not in text and "\x1b[" not in text and "RETRY" not in text, text
