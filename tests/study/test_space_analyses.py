"""A search space declares the analyses its study draws (`analyses:`): kinds from the ANALYSES
registry, options against each analysis's signature, knobs, baselines and references of the
space itself; each problem one line naming the file and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from imbtrain.analysis import ANALYSES
from imbtrain.study.catalog import space_names
from imbtrain.study.space import SpaceError, analysis_signature, load_space

HEAD = """
base: {dataset: digits, model: mlp, epochs: 1}
knobs:
  batch_size: {grid: [32, 128]}
train_ratios: [1.0, 0.1]
"""


def space(tmp_path: Path, analyses: str, extra: str = "") -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(HEAD) + textwrap.dedent(analyses) + textwrap.dedent(extra))
    return path


def test_a_space_declares_its_analyses(tmp_path):
    spec = load_space(space(tmp_path, """
        analyses:
          sensitivity: {knob: batch_size, baseline: 128, metric: test_acc}
          comparison:
    """))
    assert spec.analyses == {"sensitivity": {"knob": "batch_size", "baseline": 128,
                                             "metric": "test_acc"}, "comparison": {}}


def test_every_study_of_the_paper_declares_its_analyses():
    for name in space_names():
        spec = load_space(name)
        if not name.startswith("tabular_"):  # the tabular study writes Table 6 itself
            assert spec.analyses and set(spec.analyses) <= set(ANALYSES), name


@pytest.mark.parametrize("analyses, message", [
    ("analyses: [sensitivity]\n", r"analyses: expected a mapping of analysis kinds to their "
                                  r"options, e.g. \{sensitivity: \{knob: batch_size"),
    ("analyses: {sensitivty: {}}\n", r"analyses\.sensitivty: unknown analysis 'sensitivty' "
                                     r"\(did you mean 'sensitivity'\?\); known: "),
    ("analyses: {sensitivity: [batch_size]}\n", r"analyses\.sensitivity: expected a mapping "
                                                r"of the analysis's options"),
    ("analyses: {sensitivity: {basline: 128}}\n",
     r"analyses\.sensitivity\.basline: analysis sensitivity has no option 'basline' \(did you "
     r"mean 'baseline'\?\); options: knob, baseline, metric, title, stem"),
    ("analyses: {sweep: {reference: erm}}\n",
     r"analyses\.sweep: analysis sweep needs option\(s\) knob"),
    ("analyses: {importance: {results_dir: x}}\n",
     r"analyses\.importance\.results_dir: analysis importance has no option 'results_dir'"),
    ("analyses: {sensitivity: {knob: batchsize, baseline: 128}}\n",
     r"analyses\.sensitivity\.knob: 'batchsize' is not a knob of this space \(did you mean "
     r"'batch_size'\?\); knobs: batch_size"),
    ("analyses: {sensitivity: {knob: batch_size, baseline: 64}}\n",
     r"analyses\.sensitivity\.baseline: 64 is not a value of batch_size in this space; its "
     r"values: 32, 128"),
])
def test_bad_analyses_are_one_line_naming_the_key(tmp_path, analyses, message):
    path = space(tmp_path, analyses)
    with pytest.raises(SpaceError, match=rf"^{path}: {message}"):
        load_space(path)


def test_references_to_variants_and_sections(tmp_path):
    variants = """
        variants:
          erm: {}
          sam_a: {sam: sam_a}
    """
    with pytest.raises(SpaceError, match=r"analyses\.sweep\.reference: 'sam' is not a variant "
                                         r"of this space; variants: erm, sam_a"):
        load_space(space(tmp_path, "analyses: {sweep: {knob: batch_size, reference: sam}}\n",
                         variants))
    spec = load_space(space(tmp_path, "analyses: {sensitivity: {knob: variant, "
                                      "baseline: erm}}\n", variants))
    assert spec.analyses["sensitivity"]["baseline"] == "erm"
    # a smoke section without the baseline fails when the space loads, not at --smoke
    with pytest.raises(SpaceError, match=r"smoke\.analyses\.sensitivity\.baseline: 128 is not "
                                         r"a value of batch_size"):
        load_space(space(tmp_path, "analyses: {sensitivity: {knob: batch_size, "
                                   "baseline: 128}}\n",
                         "smoke:\n  knobs: {batch_size: {grid: [32, 64]}}\n"))
    # a section replaces an analysis's options whole, kind by kind
    spec = load_space(space(tmp_path, "analyses: {sensitivity: {knob: batch_size, baseline: "
                                      "128, metric: test_acc}, comparison: {}}\n",
                            "smoke:\n  analyses: {sensitivity: {knob: batch_size, "
                            "baseline: 32}}\n"))
    assert spec.with_smoke().analyses == {"sensitivity": {"knob": "batch_size", "baseline": 32},
                                          "comparison": {}}


def test_the_options_are_the_analysis_signature():
    assert list(analysis_signature("sensitivity")) == ["knob", "baseline", "metric", "title",
                                                       "stem", "groups"]
    assert "results_dir" not in analysis_signature("importance")  # the study's own


BATCHES = """
    variants:
      bs32: {batch_size: 32}
      bs128: {batch_size: 128}
      bs32_steps: {batch_size: 32, epochs: 1}
"""
KNOBLESS = "base: {dataset: digits, model: mlp, epochs: 4}\ntrain_ratios: [1.0, 0.1]\n"


@pytest.mark.parametrize("groups, message", [
    ("[bs32, bs128]", r"groups: expected a mapping of comparison names to lists of variants, "
                      r"e\.g\. \{fixed_epochs: \[bs16, bs128\]\}"),
    ("{fixed_epochs: bs32}", r"groups\.fixed_epochs: expected a mapping of comparison names to "
                             r"lists of variants \(a non-empty list of names\)"),
    ("{fixed_steps: [bs128, bs64_steps]}", r"groups\.fixed_steps: 'bs64_steps' is not a variant "
                                           r"of this space; variants: bs32, bs128, bs32_steps"),
])
def test_sensitivity_groups_name_the_spaces_variants(tmp_path, groups, message):
    path = tmp_path / "space.yaml"
    path.write_text(KNOBLESS + textwrap.dedent(BATCHES) + "analyses:\n  sensitivity: {knob: "
                    f"batch_size, baseline: 128, groups: {groups}}}\n")
    with pytest.raises(SpaceError, match=rf"^{path}: analyses\.sensitivity\.{message}"):
        load_space(path)


def test_a_named_section_with_other_variants_names_its_own_groups(tmp_path):
    path = tmp_path / "space.yaml"
    head = (KNOBLESS + textwrap.dedent(BATCHES) + "analyses:\n  sensitivity: {knob: batch_size, "
            "baseline: 128, groups: {fixed_epochs: [bs32, bs128], fixed_steps: [bs128, "
            "bs32_steps]}}\n")
    path.write_text(head + "sections:\n  short:\n    variants: [bs32, bs128]\n")
    with pytest.raises(SpaceError, match=r"sections\.short\.analyses\.sensitivity\.groups\."
                                         r"fixed_steps: 'bs32_steps' is not a variant"):
        load_space(path)  # the section is checked when the space loads, not at --section
    path.write_text(head + "sections:\n  short:\n    variants: [bs32, bs128]\n    analyses: "
                           "{sensitivity: {knob: batch_size, baseline: 128, groups: "
                           "{fixed_epochs: [bs32, bs128]}}}\n")
    spec = load_space(path)
    assert spec.variant("short").analyses["sensitivity"]["groups"] == {
        "fixed_epochs": ["bs32", "bs128"]}
    assert len(spec.analyses["sensitivity"]["groups"]) == 2  # the file's own stay as written


def test_the_batch_size_sections_group_their_own_variants():
    """Every section of batch_size.yaml (and its smoke run on top) declares the comparisons
    `comparison_groups` finds among the variants it runs."""
    import pandas as pd

    from imbtrain.study.paper.batch_size import comparison_groups

    spec = load_space("batch_size")
    on_disk = {"full": {"data_dir": "/data/cifar10"}}  # checked whole once data_dir is given
    specs = {"": spec, **{name: spec.variant(name, base=on_disk.get(name))
                          for name in spec.sections if name != "smoke"}}
    for name, one in [*specs.items(), *((f"{n} smoke", s.with_smoke()) for n, s in
                                        specs.items())]:
        ran = pd.DataFrame({"variant": list(one.variants),
                            "config/batch_size": [v["batch_size"] for v in
                                                  one.variants.values()]})
        declared = one.analyses["sensitivity"]["groups"]
        assert {k: sorted(v) for k, v in declared.items()} == comparison_groups(ran), name
