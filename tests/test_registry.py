"""The one `Registry` class, and every registry of imbtrain filled by its home package."""

from __future__ import annotations

import importlib.util

import pytest

from imbtrain.errors import UserError
from imbtrain.registry import MODELS, REGISTRIES, Registry


def colours() -> Registry:
    reg = Registry("colour")
    reg.register("teal", hex="#008080")(lambda: "teal")
    reg.register("tan")(lambda: "tan")
    return reg


def test_register_get_names_meta():
    reg = colours()
    assert reg.names() == ["teal", "tan"] and list(reg) == ["teal", "tan"] and len(reg) == 2
    assert reg.get("teal")() == "teal" and reg["tan"]() == "tan"
    assert reg.meta("teal") == {"hex": "#008080"} and reg.meta("tan") == {}
    assert "teal" in reg and "navy" not in reg
    assert reg.items()[0][0] == "teal"


def test_a_name_registered_twice_is_refused():
    reg = colours()
    with pytest.raises(ValueError, match="colour 'teal' is registered twice"):
        reg.register("teal")(lambda: "again")


def test_an_unknown_name_is_one_line_with_the_nearest_and_all_names():
    reg = colours()
    with pytest.raises(UserError) as err:
        reg.get("tael")
    assert str(err.value) == "unknown colour 'tael' (did you mean 'teal'?); known: tan, teal"
    assert reg.unknown("purple") == "unknown colour 'purple'; known: tan, teal"


def test_temporary_registers_inside_the_block_only():
    reg = colours()
    with reg.temporary("navy", lambda: "navy", hex="#000080") as navy:
        assert reg.get("navy") is navy and reg.meta("navy") == {"hex": "#000080"}
    assert "navy" not in reg and reg.names() == ["teal", "tan"]


def test_the_first_lookup_imports_the_home_module(tmp_path, monkeypatch):
    (tmp_path / "shapes_home.py").write_text(
        "from test_registry_shapes import SHAPES\n"
        "SHAPES.register('circle', sides=0)(lambda: 'circle')\n")
    (tmp_path / "test_registry_shapes.py").write_text(
        "from imbtrain.registry import Registry\n"
        "SHAPES = Registry('shape', home='shapes_home')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from test_registry_shapes import SHAPES

    assert SHAPES._items == {}  # nothing imported yet
    assert SHAPES.names() == ["circle"] and SHAPES.meta("circle") == {"sides": 0}


def test_a_home_that_fails_to_import_is_tried_again():
    reg = Registry("thing", home="imbtrain_no_such_module")
    for _ in range(2):
        with pytest.raises(ModuleNotFoundError):
            reg.names()


def test_families_resolve_names_by_pattern():
    families = Registry("size family")

    @families.register("px<n>", unit="pixel")
    def pixels(name):
        if not name.startswith("px"):
            return None
        if not name[2:].isdigit():
            raise UserError(f"size {name!r}: px needs a number")
        return int(name[2:])

    sizes = Registry("size", families=families)
    sizes.register("small")(8)
    assert sizes.get("small") == 8 and sizes.get("px32") == 32
    assert sizes.meta("px32") == {"unit": "pixel"} and sizes.meta("small") == {}
    assert sizes.known() == ["small", "px<n>"] and "px32" not in sizes  # `in`: plain names
    with pytest.raises(UserError, match="px needs a number"):
        sizes.get("pxL")
    with pytest.raises(UserError, match=r"^unknown size 'large'; known: small, px<n>$"):
        sizes.get("large")


def test_the_model_registry_speaks_as_the_models_always_did():
    assert MODELS.unknown("resnet33").startswith("model 'resnet33' is unknown; known: cnn, ")
    assert MODELS.unknown("resnet33").endswith("timm/<name>; did you mean 'resnet32'?")


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registry_is_filled_by_its_home(kind):
    reg = REGISTRIES[kind]
    if any(importlib.util.find_spec(m.rsplit(".", 1)[0]) is None for m in reg.home):
        pytest.skip(f"{reg.home} is not part of this package")
    assert reg.home and len(reg) > 0
    for name in reg:
        assert callable(reg.get(name)), (kind, name)
