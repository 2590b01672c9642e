"""The search spaces and routines that ship with imbtrain, found by name.

The files are package data: `imbtrain/study/spaces/` is built from the repository's
`search_spaces/` (in a checkout it is a link to that folder; `pip install .` copies the
files into the installed package), so a study runs by name from any folder:

    >>> "batch_size" in space_names() and "tuned" in routine_names()
    True
    >>> find_space("batch_size").name
    'batch_size.yaml'
    >>> find_space("batch_sise")
    Traceback (most recent call last):
    ...
    imbtrain.study.space.SpaceError: unknown search space 'batch_sise' (did you mean ...

A name is a file's stem (`batch_size` is `search_spaces/batch_size.yaml`); anything that
names an existing file is that file.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

SPACES = "spaces"  # the package-data folder of imbtrain.study
ROUTINES = "routines"  # the folder of routines beside space files (here: in the package's)


def spaces_dir() -> Path:
    """The folder of imbtrain's search-space files (inside the installed package)."""
    return Path(str(resources.files("imbtrain.study").joinpath(SPACES)))


def routines_dir() -> Path:
    """The folder of imbtrain's routines (`routine: <name>` in a space)."""
    return spaces_dir() / ROUTINES


def space_names() -> list[str]:
    """The names of imbtrain's search spaces, sorted."""
    return sorted(p.stem for p in spaces_dir().glob("*.yaml"))


def routine_names() -> list[str]:
    """The names of imbtrain's routines, sorted."""
    return sorted(p.stem for p in routines_dir().glob("*.yaml"))


def is_name(text: str) -> bool:
    """A bare name (`batch_size`), not a path (`search_spaces/batch_size.yaml`)."""
    return "/" not in text and "\\" not in text and not text.endswith((".yaml", ".yml"))


def find_space(space: str | Path) -> Path:
    """The search-space file `space` names: an existing file, else one of imbtrain's by
    name; `SpaceError` (one line) when neither."""
    from imbtrain.study.space import SpaceError

    path = Path(space)
    if path.is_file():
        return path
    text = str(space)
    if path.is_dir() and not is_name(text):
        raise SpaceError(f"{text}: is a folder; expected a search-space YAML file (see "
                         "search_spaces/*.yaml)")
    if is_name(text):
        if text in space_names():
            return spaces_dir() / f"{text}.yaml"
        close = difflib.get_close_matches(text, space_names(), n=2)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise SpaceError(f"unknown search space {text!r}{hint}; give a search-space file or "
                         f"one of: {', '.join(space_names())}")
    raise SpaceError(f"{text}: no such search-space file (see search_spaces/*.yaml)")
