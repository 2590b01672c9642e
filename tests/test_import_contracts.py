"""The import layers: Ray only at the edge, analyses and studies without it, checked two ways.

- in a fresh interpreter, `import imbtrain.analysis, imbtrain.study` loads no module of
  imbtrain.tune and not Ray;
- import-linter's contracts (pyproject.toml, `make lint`) hold on the tree, and break on a
  copy of the package with one import turned the wrong way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))
# The contracts of the layers above the core (the core's own layers: the contract "core").
CONTRACTS = ("edge", "study-format", "no-ray")


def loaded_modules(code: str) -> list[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=ROOT)
    return json.loads(out.stdout.splitlines()[-1])


def test_analysis_and_study_import_neither_tune_nor_ray():
    loaded = loaded_modules("import imbtrain.analysis, imbtrain.study")
    assert "imbtrain.study" in loaded and "imbtrain.analysis" in loaded
    assert [m for m in loaded if m == "imbtrain.tune" or m.startswith("imbtrain.tune.")] == []
    assert [m for m in loaded if m == "ray" or m.startswith("ray.")] == []
    assert "mlflow" not in loaded


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess:
    """lint-imports on the package that `cwd` holds, with the contracts of `cwd`'s
    pyproject.toml (all, or the given ids)."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # the package under cwd, not the install
    args = [LINT, "--no-cache", *(a for c in contracts for a in ("--contract", c))]
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env)


def copy_package(dest: Path) -> Path:
    """imbtrain and pyproject.toml copied to `dest` (without caches)."""
    shutil.copytree(ROOT / "imbtrain", dest / "imbtrain",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_layers_hold_on_the_tree():
    done = lint_imports(ROOT, *CONTRACTS)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout


@pytest.mark.parametrize("module, line, contract, broken", [
    # the study package reaching up to the Ray side
    ("study/space.py", "import imbtrain.tune.runner", "edge",
     "imbtrain.study is not allowed to import imbtrain.tune"),
    # the results format depending on the analyses that read it
    ("study/results.py", "import imbtrain.analysis.sweep", "study-format",
     "imbtrain.study.results is not allowed to import imbtrain.analysis"),
    # an analysis importing Ray through the back door of the trainable
    ("analysis/sweep.py", "import imbtrain.tune.trainable", "edge",
     "imbtrain.analysis is not allowed to import imbtrain.tune"),
])
def test_an_inverted_import_breaks_the_contract(tmp_path, module, line, contract, broken):
    copy = copy_package(tmp_path)
    kept = lint_imports(copy, contract)  # the copy itself is sound
    assert kept.returncode == 0, kept.stdout[-3000:] + kept.stderr[-2000:]
    path = copy / "imbtrain" / module
    path.write_text(path.read_text() + f"\n{line}  # the wrong way\n")
    done = lint_imports(copy, contract)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "BROKEN" in done.stdout and broken in done.stdout, done.stdout[-3000:]
