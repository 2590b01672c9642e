"""imbtrain's version, and what ran a run or a study: the version and, from a git checkout,
the commit.

`imbtrain train` writes `provenance()` into run.yaml beside config.yaml; a study writes it
into study.yaml and puts it on its MLflow runs as the tags `imbtrain.version` and
`imbtrain.git_commit`. The commit is the checkout's that holds the running package (an
editable install or a run from the source tree); an installed copy (`pip install .`) has
none, and so records none.

    >>> sorted(provenance()) in (["imbtrain_version"],
    ...                          ["git_commit", "git_dirty", "imbtrain_version"])
    True
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent


@functools.cache
def git_commit() -> tuple[str, bool] | None:
    """(commit, dirty) of the git checkout this package runs from; None when it does not
    run from one (an installed copy, no git on the machine)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(PACKAGE_DIR), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        # The package must be the checkout's own, not a copy installed somewhere inside
        # another repository (a virtualenv in a checkout).
        if not (top / "imbtrain" / "version.py").resolve() == Path(__file__).resolve():
            return None
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return commit, dirty


def provenance() -> dict[str, object]:
    """`imbtrain_version`, and `git_commit` and `git_dirty` (uncommitted changes to tracked
    files) when imbtrain runs from a git checkout."""
    out: dict[str, object] = {"imbtrain_version": __version__}
    found = git_commit()
    if found is not None:
        out["git_commit"], out["git_dirty"] = found
    return out


def provenance_tags() -> dict[str, str]:
    """`provenance()` as MLflow tags: `imbtrain.version`, and `imbtrain.git_commit` when
    imbtrain runs from a git checkout (every run a study or `imbtrain train` logs)."""
    meta = provenance()
    tags = {"imbtrain.version": str(meta["imbtrain_version"])}
    if "git_commit" in meta:
        tags["imbtrain.git_commit"] = str(meta["git_commit"])
    return tags
