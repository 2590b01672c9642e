"""The import layers, checked on the source, in a fresh interpreter and with import-linter.

The core's layers: no module imports one above it, and the core needs no Ray. Bottom to top:
errors and registry; config; the plug-ins (data, models, augment, methods); metrics; the
trainers (train, pretrain, pretrained, xgb). Above the core: study, analysis, tune and cli,
which the core never imports. Plug-in packages may import each other, never in a circle. Every
import of the core is read from the source (the AST, so also those inside functions and
`if TYPE_CHECKING:` blocks); the core imports imbtrain's own modules at module level only, so
no function-level import can hide a circle.

Above the core, Ray only at the edge, analyses and studies without it, checked two ways:

- in a fresh interpreter, `import imbtrain.analysis, imbtrain.study` loads no module of
  imbtrain.tune and not Ray;
- import-linter's contracts (pyproject.toml, `make lint`) hold on the tree, and break on a
  copy of the package with one import turned the wrong way.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imbtrain

PACKAGE = Path(imbtrain.__file__).parent
LAYERS = [
    ("imbtrain.errors", "imbtrain.registry", "imbtrain.files", "imbtrain.version"),
    ("imbtrain.config",),
    ("imbtrain.data", "imbtrain.models", "imbtrain.augment", "imbtrain.methods"),
    ("imbtrain.metrics",),
    ("imbtrain.train", "imbtrain.pretrain", "imbtrain.pretrained", "imbtrain.xgb",
     "imbtrain.linear", "imbtrain.console", "imbtrain.saved"),
]
NAMES = ["errors/registry/files/version", "config", "plug-ins", "metrics", "trainers"]
ABOVE = ("imbtrain.study", "imbtrain.analysis", "imbtrain.tune", "imbtrain.cli")
UNITS = [unit for layer in LAYERS for unit in layer]


def unit_of(module: str) -> str | None:
    """The core unit (`imbtrain.data`, `imbtrain.train`, ...) a module belongs to."""
    return next((u for u in UNITS if module == u or module.startswith(u + ".")), None)


def layer_of(module: str) -> int | None:
    unit = unit_of(module)
    return next((i for i, layer in enumerate(LAYERS) if unit in layer), None)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of imbtrain's modules.

    `from imbtrain.x import y` counts as importing `imbtrain.x.y` when y is a module of the
    package, else `imbtrain.x`; relative imports are resolved against `module`.
    """
    tree = ast.parse(source)
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = module.split(".")
                    keep = len(parts) - child.level + (1 if is_package else 0)
                    base = ".".join(parts[:keep] + ([base] if base else []))
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    names.append(full if _is_module(full) else base)
            for name in names:
                if name == "imbtrain" or name.startswith("imbtrain."):
                    found.append((name, child.lineno, nested))
            visit(child, nested)

    visit(tree, False)
    return found


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """What is wrong with the imports of core module `module` (empty when nothing)."""
    own = layer_of(module)
    out = []
    for name, line, in_function in imports(source, module, is_package):
        where = f"{module}:{line} imports {name}"
        target = layer_of(name)
        if name == "imbtrain" or name.startswith(ABOVE) or target is None:
            out.append(f"{where}, which is above the core")
        elif target > own:
            out.append(f"{where}, a higher layer ({NAMES[target]} above {NAMES[own]})")
        elif in_function and unit_of(name) != unit_of(module):
            out.append(f"{where} inside a function; import it at the top of the module")
    return out


def core_files() -> list[Path]:
    files = []
    for unit in UNITS:
        path = PACKAGE.parent.joinpath(*unit.split("."))
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return files


@pytest.mark.parametrize("path", core_files(), ids=lambda p: module_name(p))
def test_no_core_module_imports_a_higher_layer(path):
    assert violations(path.read_text(), module_name(path), path.name == "__init__.py") == []


def test_plug_in_packages_import_each_other_without_a_circle():
    edges: dict[str, set[str]] = {u: set() for u in UNITS}
    for path in core_files():
        module = module_name(path)
        for name, _, _ in imports(path.read_text(), module, path.name == "__init__.py"):
            if unit_of(name) not in (None, unit_of(module)):
                edges[unit_of(module)].add(unit_of(name))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in edges[start])

    circles = sorted(u for u in UNITS if reaches(u, u, set()))
    assert circles == [], f"import circles through {circles}: {edges}"


def test_the_check_catches_an_inverted_import():
    source = ("from imbtrain.errors import UserError\n"
              "from imbtrain.train import train\n"
              "import imbtrain.tune.runner\n"
              "def f():\n    from imbtrain.models import create_model\n")
    found = violations(source, "imbtrain.methods.fake")
    assert len(found) == 3
    assert "imbtrain.methods.fake:2 imports imbtrain.train, a higher layer" in found[0]
    assert "imbtrain.tune.runner, which is above the core" in found[1]
    assert "imbtrain.models inside a function" in found[2]
    assert violations("from . import base\nfrom .base import Method\n",
                      "imbtrain.methods", is_package=True) == []
    assert violations("from .. import registry\n", "imbtrain.data.embedded") == []
    assert violations("from ..metrics import split_metrics\n", "imbtrain.data.embedded") != []


def test_the_core_imports_no_ray_mlflow_tune_or_analysis():
    code = ("import json, sys\n"
            "import imbtrain.config, imbtrain.train, imbtrain.xgb, imbtrain.pretrain\n"
            "from imbtrain.config import TrainConfig\n"
            "TrainConfig(dataset='digits', method='m2m')\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    banned = ("ray", "mlflow", "imbtrain.tune", "imbtrain.analysis")
    loaded = [m for m in json.loads(out.stdout)
              if any(m == b or m.startswith(b + ".") for b in banned)]
    assert loaded == []


# ================================================================ above the core

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
