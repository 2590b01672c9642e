"""The studies of the paper, one module each, run by name (`imbtrain study <name>`).

A study's module holds what it draws and what it concludes (its `analyse`, `findings` and,
where needed, `prepare`) and ends with `STUDY`, a `imbtrain.study.script.Study`; most also
have a search space of the same name (`search_spaces/<name>.yaml`). Adding a study is one
module here (and its space); `studies/<name>.py` is its script in a checkout.

    >>> "batch_size" in names() and "tabular" in names()
    True
    >>> get("batch_size").space
    'batch_size'
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from imbtrain.errors import UserError


def names() -> list[str]:
    """The studies of the paper (the modules of this package), sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str):
    """The `Study` named `name`; `UserError` with the nearest names when there is none."""
    if name not in names():
        close = difflib.get_close_matches(name, names(), n=2)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise UserError(f"unknown study {name!r}{hint}; studies: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}").STUDY


def resolve(space: str):
    """`(study, space file)` of what `imbtrain study SPACE` names: a study of the paper by
    name (its own space); a search-space file or name, with the analysis of the study of
    the paper it is named after (`search_spaces/batch_size.yaml` is the batch-size study),
    else without one. The space file is None for a study of several spaces (tabular)."""
    from imbtrain.study.catalog import find_space, is_name
    from imbtrain.study.script import StudyScript

    if is_name(space) and space in names():
        study = get(space)
        return study, (find_space(study.space) if isinstance(study, StudyScript) else None)
    path = find_space(space)
    if path.stem in names():
        study = get(path.stem)
        if isinstance(study, StudyScript):
            return study, path
    return StudyScript(str(path)), path


__all__ = ["get", "names", "resolve"]
