"""imbtrain's own search spaces and routines, found by name (package data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imbtrain.study.catalog import (
    find_space,
    routine_names,
    routines_dir,
    space_names,
    spaces_dir,
)
from imbtrain.study.space import SpaceError, load_space

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_data_is_the_repositorys_search_spaces():
    shipped = {p.name: p.read_text() for p in spaces_dir().glob("*.yaml")}
    source = {p.name: p.read_text() for p in (ROOT / "search_spaces").glob("*.yaml")}
    assert shipped == source and len(shipped) == 19
    assert routine_names() == ["tuned"]
    assert (routines_dir() / "tuned.yaml").read_text() == (
        ROOT / "search_spaces" / "routines" / "tuned.yaml").read_text()


@pytest.mark.parametrize("name", space_names())
def test_every_space_loads_by_name_and_by_file(name):
    by_name = load_space(name)
    by_file = load_space(ROOT / "search_spaces" / f"{name}.yaml")
    assert by_name.name == by_file.name == name
    assert by_name.num_trials() == by_file.num_trials()
    assert by_name.with_smoke().num_trials() == by_file.with_smoke().num_trials()


def test_a_file_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "batch_size").write_text("base: {dataset: digits}\n"
                                         "knobs: {lr: {grid: [0.1]}}\n")
    assert find_space("batch_size") == Path("batch_size")
    assert load_space("batch_size").knobs["lr"].values == (0.1,)


@pytest.mark.parametrize("space, message", [
    ("batch_sise", "unknown search space 'batch_sise' (did you mean 'batch_size'?); give a "
                   "search-space file or one of: architecture, augmentation, batch_size,"),
    ("nowhere/batch_size.yaml", "nowhere/batch_size.yaml: no such search-space file "
                                "(see search_spaces/*.yaml)"),
])
def test_what_is_neither_a_file_nor_a_name(space, message):
    with pytest.raises(SpaceError) as e:
        find_space(space)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
