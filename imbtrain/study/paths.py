"""The files a study's trials read, made absolute before the trials are built.

A trial runs in a folder of its own (Ray's), on any node, so a relative `data_dir=data/x`
that works for `imbtrain train` would name nothing there. The driver resolves every relative
`data_dir`, `pretrained` and `m2m_teacher` of a spec (its base, its knobs' values and its
variants) against its own working directory; empty values, `pretrained=none` and URIs stay.

    >>> import os
    >>> absolute_path("data_dir", "data/x") == os.path.join(os.getcwd(), "data", "x")
    True
    >>> absolute_path("pretrained", "none"), absolute_path("data_dir", "s3://b/x")
    ('none', 's3://b/x')
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from imbtrain.study.space import StudySpec
from imbtrain.study.storage import is_uri

PATH_KEYS = ("data_dir", "pretrained", "m2m_teacher")  # TrainConfig keys that name files
NOT_A_PATH = ("", "none")  # the keys' "no file" values


def absolute_path(key: str, value: Any) -> Any:
    """`value` of a PATH_KEYS key as an absolute path (others, and URIs, as they are)."""
    if key not in PATH_KEYS or not isinstance(value, str) or value in NOT_A_PATH \
            or is_uri(value):
        return value
    return os.path.abspath(os.path.expanduser(value))


def _absolute(over: dict[str, Any]) -> dict[str, Any]:
    return {k: absolute_path(k, v) for k, v in over.items()}


def absolute_paths(spec: StudySpec) -> StudySpec:
    """The spec with every file it names (PATH_KEYS) absolute."""
    knobs = {k: replace(knob, values=tuple(absolute_path(k, v) for v in knob.values))
             if k in PATH_KEYS and knob.dist in ("grid", "choice") else knob
             for k, knob in spec.knobs.items()}
    return replace(spec, base=_absolute(spec.base), knobs=knobs,
                   variants={n: _absolute(over) for n, over in spec.variants.items()})


def study_files(spec: StudySpec) -> dict[str, list[str]]:
    """{key: the distinct files of that key the study's trials read} (PATH_KEYS, values
    that name a file)."""
    out: dict[str, list[str]] = {}
    values: list[tuple[str, Any]] = [(k, spec.base.get(k)) for k in PATH_KEYS]
    values += [(k, v) for k, knob in spec.knobs.items() if k in PATH_KEYS
               for v in knob.values]
    values += [(k, v) for over in spec.variants.values() for k, v in over.items()
               if k in PATH_KEYS]
    for key, value in values:
        if isinstance(value, str) and value not in NOT_A_PATH:
            out.setdefault(key, [])
            if value not in out[key]:
                out[key].append(value)
    return out


__all__ = ["PATH_KEYS", "absolute_path", "absolute_paths", "study_files"]
