"""The studies of the paper run by name: `imbtrain study NAME`, `imbtrain study
search_spaces/NAME.yaml` and `python studies/NAME.py` are one study with one analysis."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from imbtrain.errors import UserError
from imbtrain.study import paper
from imbtrain.study.catalog import space_names
from imbtrain.study.script import Study, StudyScript

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (ROOT / "studies").glob("*.py"))


def test_every_script_is_a_study_of_the_package():
    assert paper.names() == SCRIPTS and len(SCRIPTS) == 15
    for name in SCRIPTS:
        study = paper.get(name)
        assert isinstance(study, Study) and study.name == name and study.doc
        if isinstance(study, StudyScript):
            assert study.space == name and name in space_names()
            assert study.analyse is not None


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_scripts_are_thin(name):
    """A script calls its study by name and holds nothing else."""
    tree = ast.parse((ROOT / "studies" / f"{name}.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "study_main"]
    assert len(calls) == 1 and calls[0].args[0].value == name
    assert sum(isinstance(n, ast.FunctionDef) for n in tree.body) == 1  # main
    assert len((ROOT / "studies" / f"{name}.py").read_text().splitlines()) < 25


def test_a_name_a_space_file_and_a_plain_space_resolve(tmp_path):
    by_name, space = paper.resolve("batch_size")
    assert by_name is paper.get("batch_size") and space.name == "batch_size.yaml"
    by_file, space = paper.resolve(str(ROOT / "search_spaces" / "batch_size.yaml"))
    assert by_file is by_name and space == ROOT / "search_spaces" / "batch_size.yaml"
    tabular, space = paper.resolve("tabular")
    assert tabular is paper.get("tabular") and space is None
    # a space without a study of the paper: the same scaffold, no analysis
    plain, space = paper.resolve("tabular_mlp")
    assert isinstance(plain, StudyScript) and plain.analyse is None
    assert plain.name == "tabular_mlp" and space.name == "tabular_mlp.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("knobs: {lr: {grid: [0.1]}}\n")
    plain, space = paper.resolve(str(own))
    assert plain.analyse is None and space == own and plain.name == "mine"


def test_an_unknown_study_names_the_nearest():
    with pytest.raises(UserError, match=r"unknown study 'sam-a' \(did you mean 'sam_a'\?\); "
                                        "studies: architecture, augmentation, "):
        paper.get("sam-a")


def test_the_cli_lists_the_studies(capsys):
    from imbtrain.cli import main

    assert main(["study", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("studies of the paper: architecture, augmentation, batch_size")
    assert "search spaces: architecture," in out and "tabular_xgboost" in out


def test_a_studys_own_options_pass_through_the_cli(capsys):
    """The tabular study's options after its name; an option no study takes is refused."""
    from imbtrain.cli import main

    assert main(["study", "tabular", "--smoke", "--models", "catboost",
                 "--mlflow-uri", "none"]) == 2
    assert "--models: unknown row(s) catboost" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["study", "batch_size", "--models", "mlp"])
    assert e.value.code == 2
    assert "unrecognized arguments: --models mlp" in capsys.readouterr().err
