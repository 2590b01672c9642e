"""The study scaffold's named sections (`sections:` in a space, `--section NAME`): applied as
`full` is, named in the study's folder, refused with one line when unknown or malformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from imbtrain.errors import UserError
from imbtrain.study.script import parse_args, study_name, study_spec
from imbtrain.study.space import SpaceError, load_space

SPACE = ("base: {dataset: digits, epochs: 4}\nknobs: {batch_size: {grid: [32]}}\n"
         "seeds: [0, 1]\n"
         "smoke: {base: {epochs: 1}, seeds: [0]}\n"
         "sections:\n  mnist5k: {base: {dataset: mnist5k, epochs: 15}, seeds: [0, 1, 2]}\n"
         "  long: {base: {epochs: 12}}\n"
         "full: {base: {dataset: cifar10, epochs: 200}}\n")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_a_named_section_applies_as_full_does(tmp_path):
    space = write(tmp_path, SPACE)
    args = parse_args("doc", space, ["--section", "mnist5k"])
    spec = study_spec(args)
    assert (spec.base["dataset"], spec.epochs, spec.seeds) == ("mnist5k", 15, [0, 1, 2])
    assert spec.knobs["batch_size"].values == (32,) and spec.num_trials() == 3
    assert study_name(spec, args) == "space_mnist5k"
    smoke = parse_args("doc", space, ["--section", "long", "--smoke"])
    spec = study_spec(smoke)
    assert (spec.base["dataset"], spec.epochs, spec.seeds, spec.is_smoke) == (
        "digits", 1, [0], True)                       # the smoke section on top of long
    assert study_name(spec, smoke) == "space_long_smoke"
    plain = parse_args("doc", space, [])
    assert study_spec(plain).epochs == 4 and study_name(study_spec(plain), plain) == "space"


def test_the_space_keeps_its_named_sections(tmp_path):
    spec = load_space(write(tmp_path, SPACE))
    assert sorted(spec.sections) == ["full", "long", "mnist5k", "smoke"]
    assert spec.variant("long").epochs == 12 and spec.variant("mnist5k").num_trials() == 3


@pytest.mark.parametrize(("argv", "message"), [
    (["--section", "cifar"], r"--section cifar: .*space.yaml has no section 'cifar'; its named "
                             r"sections: long, mnist5k$"),
    (["--section", "long", "--full"], r"^give --full or --section, not both$"),
])
def test_a_section_the_space_lacks_is_one_line(tmp_path, argv, message):
    args = parse_args("doc", write(tmp_path, SPACE), argv)
    with pytest.raises(UserError, match=message):
        study_spec(args)


BASE = "base: {dataset: digits}\nknobs: {batch_size: {grid: [32]}}\n"


@pytest.mark.parametrize(("text", "message"), [
    ("sections: [a]\n", "sections: expected a mapping of section names to sections, e.g. "
                        "{mnist5k: {base: {dataset: mnist5k}}}"),
    ("sections:\n  full: {base: {epochs: 2}}\n",
     "sections.full: a section name is letters, digits and _ . + - (it names the study's "
     "folder), not smoke or full"),
    ("sections:\n  a: {smoke: {base: {epochs: 2}}}\n", "sections.a.smoke: a section cannot "
                                                        "hold another"),
    ("sections:\n  a: {base: {epoch: 2}}\n", "sections.a.base.epoch: unknown config key; did "
                                              "you mean epochs or m2m_epoch?"),
])
def test_malformed_named_sections_fail_when_loaded(tmp_path, text, message):
    path = write(tmp_path, BASE + text)
    with pytest.raises(SpaceError) as err:
        load_space(path)
    assert str(err.value).startswith(f"{path}: {message}")
