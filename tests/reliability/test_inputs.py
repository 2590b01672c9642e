"""Bad inputs through the real CLI: exit status 2, one line `error: ...` that names the problem
and what is allowed, no traceback, no output folder (RELIABILITY.md, "Bad inputs").

Each case is run through `imbtrain.cli.main([...])` in-process; three through a subprocess
(the `imbtrain` console script and `python -m imbtrain.cli`) to show that nothing but that one
line reaches the terminal. The cases the other test files already cover (tests/test_train.py,
tests/test_config.py, tests/study/test_space.py, tests/data/test_data.py,
tests/data/test_tabular.py, tests/tune/test_cluster.py) are counted in RELIABILITY.md, not
repeated here. None of these cases starts Ray or trains a model.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imbtrain.cli import main

CSV_NEED = ("expected a CSV or Parquet file with a header row, one column per feature and the "
            "class in label_column")
IMAGEFOLDER = ("expected <data_dir>/train/<class>/* and <data_dir>/test/<class>/*, "
               "or a class-per-folder tree <data_dir>/<class>/*")
CIFAR = ("expected torchvision's layout <data_dir>/cifar-10-batches-py/data_batch_1..5, "
         "test_batch and batches.meta")
TAB = ["dataset=tabular", "label_column=y", "model=mlp", "epochs=1"]


# ================================================================ the bad files


def rows(n: int, x=lambda i: i, y=lambda i: "ab"[i % 2]) -> str:
    return "".join(f"{x(i)},{y(i)}\n" for i in range(n))


def write_pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


class RunsCode:
    """A pickled object that runs a shell command when unpickled (what a crafted file does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def cifar_tree(root: Path, labels, data=None) -> Path:
    folder = root / "cifar-10-batches-py"
    data = np.zeros((len(labels), 3072), np.uint8) if data is None else data
    for b in range(1, 6):
        write_pickle(folder / f"data_batch_{b}", {b"data": data, b"labels": labels})
    write_pickle(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8),
                                         b"labels": [0, 1]})
    write_pickle(folder / "batches.meta", {b"label_names": [b"cat", b"dog"]})
    return root


def png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)


def make(tmp: Path, name: str) -> Path:
    """The bad file or folder `name` under tmp (each case builds only its own)."""
    p = tmp / name
    match name:
        case "empty.csv":
            p.write_text("")
        case "header.csv":
            p.write_text("x,y\n")
        case "binary.csv":
            p.write_bytes(bytes(range(256)) * 4)
        case "good.csv":
            p.write_text("x,y\n" + rows(20))
        case "single.csv":
            p.write_text("x,y\n" + rows(20, y=lambda i: "a"))
        case "nanlabel.csv":
            p.write_text("x,y\n" + rows(20, y=lambda i: "NaN" if i == 3 else "ab"[i % 2]))
        case "inf.csv":
            p.write_text("x,y\n" + rows(20, x=lambda i: "inf" if i == 5 else i))
        case "allnan.csv":
            p.write_text("x,y\n" + rows(20, x=lambda i: "NaN"))
        case "text.csv":
            p.write_text("x,y\n" + rows(20, x=lambda i: "oops" if i == 7 else i))
        case "cifar_labels":
            cifar_tree(p, ["cat", "dog"])
        case "cifar_evil":
            cifar_tree(p, [0, 1], data=RunsCode(tmp / "PWNED"))
        case "one_class":
            png(p / "cat" / "0.png")
        case "flat":
            png(p / "0.png")
        case "no_images":
            (p / "cat").mkdir(parents=True)
            (p / "dog").mkdir()
            (p / "cat" / "notes.txt").write_text("x")
            (p / "dog" / "notes.txt").write_text("x")
        case "nonempty":
            p.mkdir()
            (p / "keep.txt").write_text("x")
        case "afile" | "space_list.yaml" | "cfg_list.yaml" | "cluster_list.yaml":
            p.write_text("- a\n- b\n")
        case "cfg_bad.yaml":
            p.write_text("lr: [0.1\nepochs: 3\n")
        case "cfg_unknown.yaml":
            p.write_text("epochz: 3\n")
        case "cfg_python.yaml":  # full_load / unsafe_load would run this
            p.write_text(f"lr: !!python/object/apply:os.system ['touch {tmp / 'PWNED'}']\n")
        case "space_bad.yaml":
            p.write_text("knobs:\n  lr: {grid: [0.1]\nseeds: [0]\n")
        case "space_ok.yaml":
            p.write_text("base: {dataset: digits, model: mlp, epochs: 1}\n"
                         "knobs: {batch_size: {grid: [32]}}\n")
        case "space_data.yaml":
            p.write_text("base: {dataset: tabular, label_column: y, model: mlp, epochs: 1, "
                         f"data_dir: {tmp / 'single.csv'}}}\nknobs: {{lr: {{grid: [0.1]}}}}\n")
            make(tmp, "single.csv")
        case "cluster_bad.yaml":
            p.write_text("cluster_name: x\nprovider:\n  type: aws\n   region: a: b\n")
        case "study":  # a study Tune ran: its tuner and its experiment state
            (p / "runs" / "space_ok").mkdir(parents=True)
            (p / "runs" / "space_ok" / "tuner.pkl").write_bytes(b"")
            (p / "runs" / "space_ok" / "experiment_state-2026-01-01_00-00-00.json"
             ).write_text("{}")
        case "unstarted":  # a driver killed in its first second: set up, never started
            (p / "runs" / "space_ok").mkdir(parents=True)
            (p / "runs" / "space_ok" / "tuner.pkl").write_bytes(b"")
            (p / "runs" / "space_ok" / "study.yaml").write_text("metric: val_bal_acc\n")
        case _:
            raise KeyError(name)
    return p


def closed_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ================================================================ the catalogue

# (id, files to make, argv (with {t} = tmp), the message after "error: " (with {t})).
# `out` is where nothing may appear: tmp/out for train, tmp/runs for study.
OUT = ["--out", "{t}/out"]
RUNS = ["--storage", "{t}/runs", "--mlflow-uri", "none"]
CASES = [
    # ---- imbtrain train: keys and values
    ("override_without_equals", [], ["train", "batch_size", *OUT],
     "'batch_size' is not a key=value override"),
    ("wrong_type", [], ["train", "epochs=three", *OUT], "epochs='three' is not a valid int"),
    ("nan_value", [], ["train", "lr=nan", *OUT], "lr='nan' is not a valid float"),
    ("lr_out_of_range", [], ["train", "lr=1e6", *OUT],
     "lr=1000000.0 is out of range; allowed: (0.0, 100.0]"),
    ("tabular_without_label_column", ["good.csv"],
     ["train", "dataset=tabular", "data_dir={t}/good.csv", *OUT],
     "dataset=tabular needs label_column=<name of the label column> (or a tabular_preset: "
     "adult, covertype, otto)"),
    ("pretrained_missing", [], ["train", "pretrained={t}/w.pt", *OUT],
     "pretrained weights not found: {t}/w.pt (pretrained= takes a local .pt, .pth or "
     ".safetensors file; imbtrain downloads nothing)"),
    ("out_is_a_file", ["afile"], ["train", "epochs=1", "--out", "{t}/afile"],
     "--out {t}/afile is a file; give a new or empty folder"),
    ("out_not_empty", ["nonempty"], ["train", "epochs=1", "--out", "{t}/nonempty"],
     "output folder {t}/nonempty is not empty; choose another --out"),
    # ---- config files (--config)
    ("config_missing", [], ["train", "--config", "{t}/none.yaml", *OUT],
     "config file {t}/none.yaml does not exist"),
    ("config_invalid_yaml", ["cfg_bad.yaml"], ["train", "--config", "{t}/cfg_bad.yaml", *OUT],
     "{t}/cfg_bad.yaml: not valid YAML at line 2"),
    ("config_not_a_mapping", ["cfg_list.yaml"],
     ["train", "--config", "{t}/cfg_list.yaml", *OUT],
     "{t}/cfg_list.yaml: expected a mapping of config keys, got list"),
    ("config_unknown_key", ["cfg_unknown.yaml"],
     ["train", "--config", "{t}/cfg_unknown.yaml", *OUT],
     "{t}/cfg_unknown.yaml: unknown config key 'epochz' (did you mean epochs?); "
     "`imbtrain keys` lists them all"),
    ("config_python_tag", ["cfg_python.yaml"],
     ["train", "--config", "{t}/cfg_python.yaml", *OUT],
     "{t}/cfg_python.yaml: not valid YAML at line 1"),
    # ---- data files
    ("data_missing", [], ["train", *TAB, "data_dir={t}/none.csv", *OUT],
     f"dataset=tabular: data_dir {{t}}/none.csv does not exist; {CSV_NEED}"),
    ("data_is_a_folder", [], ["train", *TAB, "data_dir={t}", *OUT],
     f"dataset=tabular: data_dir {{t}} is a directory; {CSV_NEED}"),
    ("data_empty", ["empty.csv"], ["train", *TAB, "data_dir={t}/empty.csv", *OUT],
     "{t}/empty.csv: cannot be read as CSV or Parquet: Empty CSV file"),
    ("data_header_only", ["header.csv"], ["train", *TAB, "data_dir={t}/header.csv", *OUT],
     "header.csv holds no rows"),
    ("data_not_csv", ["binary.csv"], ["train", *TAB, "data_dir={t}/binary.csv", *OUT],
     None),  # pyarrow's parse error: checked by prefix below
    ("data_no_label_column", ["good.csv"],
     ["train", *TAB, "label_column=label", "data_dir={t}/good.csv", *OUT],
     "label_column 'label' is not a column of good.csv; columns: x, y"),
    ("data_single_class", ["single.csv"], ["train", *TAB, "data_dir={t}/single.csv", *OUT],
     "label column 'y' of single.csv holds a single value ('a'); a classifier needs at least "
     "two classes"),
    ("data_nan_label", ["nanlabel.csv"], ["train", *TAB, "data_dir={t}/nanlabel.csv", *OUT],
     "label column 'y' of nanlabel.csv has 1 missing value(s) (data rows 4); remove those "
     "rows or fill them in"),
    ("data_inf_feature", ["inf.csv"], ["train", *TAB, "data_dir={t}/inf.csv", *OUT],
     "column 'x' holds an infinite value (data row 6); use a finite number or a missing value "
     "(empty, NA)"),
    ("data_nan_features", ["allnan.csv"], ["train", *TAB, "data_dir={t}/allnan.csv", *OUT],
     "allnan.csv: no feature column left besides the label 'y' (columns constant on the train "
     "rows are left out); add feature columns"),
    ("data_non_numeric_feature", ["text.csv"], ["train", *TAB, "data_dir={t}/text.csv", *OUT],
     "column 'x' holds numbers but also 1 value(s) that are not ('oops' in data row 8); make "
     "them numbers or missing values (empty, NA, NaN, ?), or leave the column out with "
     "tabular_drop=x"),
    ("cifar_wrong_layout", [], ["train", "dataset=cifar10", "data_dir={t}", *OUT],
     f"cifar10: no 'cifar-10-batches-py' under {{t}}; {CIFAR} (download it with torchvision "
     "once, elsewhere)"),
    ("cifar_non_numeric_labels", ["cifar_labels"],
     ["train", "dataset=cifar10", "data_dir={t}/cifar_labels", *OUT],
     "cifar10: {t}/cifar_labels/cifar-10-batches-py/data_batch_1 'labels' holds values that "
     "are not integer class indices; expected a list of ints 0..K-1"),
    ("cifar_crafted_pickle", ["cifar_evil"],
     ["train", "dataset=cifar10", "data_dir={t}/cifar_evil", *OUT],
     "cifar10: cannot unpickle {t}/cifar_evil/cifar-10-batches-py/data_batch_1 (global "
     f"posix.system is not allowed in a data file); {CIFAR}"),
    ("imagefolder_single_class", ["one_class"],
     ["train", "dataset=imagefolder", "data_dir={t}/one_class", *OUT],
     f"imagefolder: {{t}}/one_class needs at least 2 class folders, found only 'cat'; "
     f"{IMAGEFOLDER}"),
    ("imagefolder_no_class_folders", ["flat"],
     ["train", "dataset=imagefolder", "data_dir={t}/flat", *OUT],
     f"imagefolder: {{t}}/flat needs at least 2 class folders, found none; {IMAGEFOLDER}"),
    ("imagefolder_no_images", ["no_images"],
     ["train", "dataset=imagefolder", "data_dir={t}/no_images", *OUT],
     "imagefolder: no image files (.bmp, .gif, .jpeg, .jpg, .pgm, .png, .ppm, .tif, .tiff, "
     ".webp) in {t}/no_images/cat (found 1 other entries, e.g. 'notes.txt'); "
     f"{IMAGEFOLDER}"),
    # ---- imbtrain study: the space file and the options
    ("space_missing", [], ["study", "{t}/none.yaml", *RUNS],
     "{t}/none.yaml: no such search-space file (see search_spaces/*.yaml)"),
    ("space_invalid_yaml", ["space_bad.yaml"], ["study", "{t}/space_bad.yaml", *RUNS],
     "{t}/space_bad.yaml: line 3: invalid YAML: expected ',' or '}}', but got '<scalar>'"),
    ("space_not_a_mapping", ["space_list.yaml"], ["study", "{t}/space_list.yaml", *RUNS],
     None),  # lists the allowed top-level keys: checked by prefix below
    ("study_data_single_class", ["space_data.yaml"], ["study", "{t}/space_data.yaml", *RUNS],
     "label column 'y' of single.csv holds a single value ('a'); a classifier needs at least "
     "two classes"),
    ("max_concurrent_zero", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--max-concurrent", "0", *RUNS],
     "--max-concurrent must be at least 1, got 0"),
    ("gpus_negative", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--gpus-per-trial", "-1", *RUNS],
     "--gpus-per-trial must be >= 0, got -1.0"),
    ("max_failures_negative", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--max-failures", "-1", *RUNS],
     "--max-failures must be 0 or more, got -1"),
    ("mlflow_file_store", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--storage", "{t}/runs", "--mlflow-uri", "./mlruns"],
     "MLflow tracking URI './mlruns' is not supported; use sqlite:///mlflow.db locally or an "
     "http://host:port MLflow server (file stores such as ./mlruns are refused by MLflow 3)"),
    ("mlflow_unreachable", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--storage", "{t}/runs", "--mlflow-uri",
      "http://127.0.0.1:{port}"],
     "MLflow tracking server http://127.0.0.1:{port} is unreachable ([Errno 111] Connection "
     "refused); start it (mlflow server --host 127.0.0.1 --port 5000) or forward its port, or "
     "pass another --mlflow-uri"),
    ("storage_url", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--storage", "ftp://host/runs", "--mlflow-uri", "none"],
     "--storage ftp://host/runs: not a storage pyarrow can open (Unrecognized filesystem type "
     "in URI: ftp://host/runs); use a local folder, s3://bucket/prefix or gs://bucket/prefix "
     "(S3-compatible endpoints through AWS_ENDPOINT_URL or ?endpoint_override=host:port)"),
    ("name_not_a_folder_name", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--name", "../escape", *RUNS],
     "--name '../escape': a study name is one folder name under --storage (no '/', not '.' "
     "or '..')"),
    ("resume_nothing", ["space_ok.yaml"], ["study", "{t}/space_ok.yaml", "--resume", *RUNS],
     "--resume: no study to resume in {t}/runs/space_ok (no tuner.pkl); run it without "
     "--resume first"),
    ("study_exists", ["space_ok.yaml", "study"],
     ["study", "{t}/space_ok.yaml", "--storage", "{t}/study/runs", "--mlflow-uri", "none"],
     "{t}/study/runs/space_ok already holds a study; add --resume to continue it, or choose "
     "another --name or --storage"),
    ("resume_never_started", ["space_ok.yaml", "unstarted"],
     ["study", "{t}/space_ok.yaml", "--resume", "--storage", "{t}/unstarted/runs",
      "--mlflow-uri", "none"],
     "--resume: the study in {t}/unstarted/runs/space_ok never started (Tune wrote no "
     "experiment state there); remove that folder and run the study again without --resume"),
    ("study_never_started", ["space_ok.yaml", "unstarted"],
     ["study", "{t}/space_ok.yaml", "--storage", "{t}/unstarted/runs", "--mlflow-uri",
      "none"],
     "{t}/unstarted/runs/space_ok holds a study that never started (no experiment state); "
     "remove that folder and run again, or choose another --name or --storage"),
    ("address_not_a_cluster", ["space_ok.yaml"],
     ["study", "{t}/space_ok.yaml", "--address", "127.0.0.1:{port}", *RUNS],
     "--address 127.0.0.1:{port}: no Ray cluster answers there (Connection refused); start "
     "one (ray start --head) or check the address"),
    # ---- cluster files, finished studies
    ("cluster_missing", [], ["check-cluster", "{t}/none.yaml"], "{t}/none.yaml: no such file"),
    ("cluster_not_a_mapping", ["cluster_list.yaml"], ["check-cluster", "{t}/cluster_list.yaml"],
     "{t}/cluster_list.yaml: the file must be a YAML mapping of cluster settings"),
    ("cluster_invalid_yaml", ["cluster_bad.yaml"], ["check-cluster", "{t}/cluster_bad.yaml"],
     "{t}/cluster_bad.yaml: line 4, column 10: mapping values are not allowed here"),
    ("export_not_a_study", [], ["export", "{t}"],
     "{t}: no results.parquet; expected the folder of a finished study, <storage>/<name> "
     "(e.g. runs/batch_size)"),
]
PREFIX = {  # messages that quote a third-party parser: their fixed start
    "data_not_csv": "{t}/binary.csv: cannot be read as CSV or Parquet: CSV parse error: ",
    "space_not_a_mapping": "{t}/space_list.yaml: expected a mapping of keys (description, "
                           "base, knobs, ",
}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    name, files, argv, message = case
    port = closed_port() if name in ("mlflow_unreachable", "address_not_a_cluster") else ""
    for f in files:
        make(tmp_path, f)
    fill = {"t": tmp_path, "port": port}
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main([a.format(**fill) for a in argv]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in captured.out + err
    line = err[len("error: "):].rstrip("\n")
    if message is None:
        assert line.startswith(PREFIX[name].format(**fill)), line
    else:
        assert line == message.format(**fill)
    # Nothing written: no output folder, no study folder, no other new file.
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "PWNED").exists()  # crafted files ran no code


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu(tmp_path, capsys):
    assert main(["train", "device=cuda", "epochs=1", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == ("error: device=cuda but no CUDA device is available; "
                                       "use device=auto or cpu\n")
    assert not (tmp_path / "out").exists()


def test_nan_features_are_imputed_not_refused(tmp_path, capsys):
    # A feature that is only partly missing is no error: the train pool's median fills it
    # and a missing-indicator column records it (imbtrain.data.tabular).
    path = tmp_path / "partly.csv"
    path.write_text("x,z,y\n" + "".join(f"{'NaN' if i % 4 == 0 else i},{i % 3},{'ab'[i % 2]}\n"
                                        for i in range(40)))
    out = tmp_path / "out"
    assert main(["train", *TAB, f"data_dir={path}", "--out", str(out)]) == 0
    capsys.readouterr()
    assert {p.name for p in out.iterdir()} == {"config.yaml", "run.yaml", "metrics.json",
                                               "history.parquet", "model.pt", "model.yaml",
                                               "tensors.pt"}


def test_diverged_train_exits_1_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["train", "dataset=digits", "model=mlp", "lr=100", "epochs=2", "--out", str(out)]
    assert main(argv) == 1
    assert capsys.readouterr().err == ("error: training diverged at epoch 1: train loss nan; "
                                       "nothing was written (lower lr, or add warmup_epochs)\n")
    assert not out.exists() and list(tmp_path.iterdir()) == []


# ================================================================ through a real terminal


IMBTRAIN = str(Path(sys.executable).with_name("imbtrain"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("cmd,files,message", [
    ([IMBTRAIN, "train", "epochs=three"], [], "epochs='three' is not a valid int"),
    ([sys.executable, "-m", "imbtrain.cli", "train", *TAB, "data_dir={t}/single.csv"],
     ["single.csv"], "label column 'y' of single.csv holds a single value ('a'); a classifier "
                     "needs at least two classes"),
    ([IMBTRAIN, "study", "{t}/space_bad.yaml", "--storage", "{t}/runs"], ["space_bad.yaml"],
     "{t}/space_bad.yaml: line 3: invalid YAML: expected ',' or '}}', but got '<scalar>'"),
], ids=["console_script_train", "python_m_data", "console_script_study"])
def test_no_traceback_reaches_the_terminal(cmd, files, message, tmp_path):
    for f in files:
        make(tmp_path, f)
    before = sorted(p.name for p in tmp_path.iterdir())
    run = subprocess.run([a.format(t=tmp_path) for a in cmd], capture_output=True, text=True,
                         env=ENV, cwd=tmp_path, timeout=120)
    assert run.returncode == 2
    assert run.stderr == f"error: {message.format(t=tmp_path)}\n"
    assert run.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_reliability_md_lists_every_case():
    text = (Path(__file__).resolve().parents[2] / "RELIABILITY.md").read_text()
    text = text.split("## Bad inputs", 1)[1]
    rows = [line.split("|")[2].strip() for line in text.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert rows[:len(CASES)] == [c[0] for c in CASES]
