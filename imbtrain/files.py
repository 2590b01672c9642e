"""Reading the files imbtrain is given: a damaged file is one line, never a traceback.

Every file imbtrain reads (configs, search spaces, routines, study.yaml, analyses.yaml, cluster
files, results and history tables, tuner.pkl, weights) goes through one of these readers. A
file that is missing, a folder, empty, binary, not UTF-8, cut short or of another kind raises
`UserError` with one line that names the file, what is wrong and what was expected:

    T/cfg.yaml: a binary file, not text; expected a TrainConfig YAML file

YAML is read with `yaml.SafeLoader` (no tag runs code) made strict: a key written twice in a
mapping (the last one would silently win) and a key that YAML 1.1 reads as a boolean
(`on:`, `yes:`, `off:`) are refused with the file, the line and the key.

    >>> load_yaml("lr: 0.1\\nepochs: 3\\n", "cfg.yaml")
    {'lr': 0.1, 'epochs': 3}
    >>> load_yaml("lr: 0.1\\nlr: 0.2\\n", "cfg.yaml")
    Traceback (most recent call last):
    ...
    imbtrain.errors.UserError: cfg.yaml: line 2: key 'lr' is written twice (first at line 1); ...
"""

from __future__ import annotations

import os
import pickletools
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from imbtrain.errors import UserError

__all__ = ["check_file", "check_pickle", "check_torch_file", "check_writable", "load_yaml",
           "read_parquet", "read_text", "read_torch", "read_yaml"]

SNIFF_BYTES = 8192  # a NUL byte in the first 8 KiB: a binary file (as git and grep decide)
BOOL_TAG = "tag:yaml.org,2002:bool"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def check_file(path: str | Path, expected: str) -> Path:
    """`path` as a Path, when it is an existing file; else one line naming the problem."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{p}: is a folder; expected {expected}")
    if not p.is_file():
        raise UserError(f"{p}: no such file; expected {expected}")
    return p


def read_text(path: str | Path, expected: str, empty_ok: bool = False) -> str:
    """The text of a UTF-8 file; one line for a folder, a missing, empty, binary or non-UTF-8
    file, or one that cannot be read."""
    p = check_file(path, expected)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise UserError(f"{p}: cannot be read ({e.strerror or _first_line(e)}); expected "
                        f"{expected}") from None
    if not data.strip() and not empty_ok:
        raise UserError(f"{p}: the file is empty; expected {expected}")
    if b"\x00" in data[:SNIFF_BYTES]:
        raise UserError(f"{p}: a binary file, not text; expected {expected}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{p}: not UTF-8 text (byte 0x{data[e.start]:02x} at line {line}); "
                        f"expected {expected}, saved as UTF-8") from None


# ---------------------------------------------------------------------------------------
# YAML: safe, and strict about keys
# ---------------------------------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and keys read as booleans."""

    source = ""  # the file, for messages

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == BOOL_TAG and isinstance(key_node, yaml.ScalarNode):
                    raise UserError(
                        f"{self.source}: line {line}: key {key_node.value!r} is read as the "
                        f"boolean {key_node.value.lower() in ('yes', 'on', 'true', 'y')} by "
                        f"YAML; quote it ('{key_node.value}': ...) to mean the word")
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    continue
                if first is not None:
                    raise UserError(f"{self.source}: line {line}: key {key!r} is written "
                                    f"twice (first at line {first}); a YAML mapping holds "
                                    "each key once")
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def load_yaml(text: str, path: str | Path = "<string>") -> Any:
    """`yaml.safe_load(text)`, refusing duplicate and boolean keys (UserError naming `path`,
    the line and the key). Syntax errors stay `yaml.YAMLError`, for the caller to word."""
    loader = _StrictLoader(text)
    loader.source = str(path)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(e: yaml.YAMLError) -> tuple[int | None, int | None, str]:
    """(line, column, problem) of a YAML syntax error, 1-based; None where it has no mark."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or _first_line(e)
    if mark is None:
        return None, None, problem
    return mark.line + 1, mark.column + 1, problem


def read_yaml(path: str | Path, expected: str, empty_ok: bool = False) -> Any:
    """A YAML file, read strictly (`load_yaml`); a syntax error is one line with its line
    number: `<path>: line 3: invalid YAML: <problem>; expected <expected>`."""
    text = read_text(path, expected, empty_ok=empty_ok)
    try:
        return load_yaml(text, Path(path).expanduser())
    except yaml.YAMLError as e:
        line, _, problem = yaml_problem(e)
        where = f"line {line}: " if line else ""
        raise UserError(f"{Path(path).expanduser()}: {where}invalid YAML: {problem}; "
                        f"expected {expected}") from None


# ---------------------------------------------------------------------------------------
# Binary formats
# ---------------------------------------------------------------------------------------

def read_parquet(path: str | Path, expected: str):
    """A Parquet file as a pyarrow Table; one line for a folder, a missing, empty, truncated
    or non-Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = check_file(path, expected)
    try:
        return pq.read_table(p)
    except (pa.ArrowException, OSError, ValueError) as e:
        reason = re.sub(r"^Could not open Parquet input source '[^']*': ", "", _first_line(e))
        raise UserError(f"{p}: damaged or not a Parquet file ({reason}); expected "
                        f"{expected}") from None


def check_pickle(path: str | Path, expected: str) -> Path:
    """Check that a pickle file is whole (every opcode up to STOP) without unpickling it: no
    object is built and no code runs. One line for a folder, a missing, empty, cut-short or
    non-pickle file."""
    p = check_file(path, expected)
    try:
        with open(p, "rb") as f:
            for _ in pickletools.genops(f):
                pass
    except OSError as e:
        raise UserError(f"{p}: cannot be read ({e.strerror or _first_line(e)}); expected "
                        f"{expected}") from None
    except Exception as e:  # ValueError: cut short, unknown opcode; anything genops raises
        reason = "the file is empty" if p.stat().st_size == 0 else _first_line(e)
        raise UserError(f"{p}: damaged ({reason}); expected {expected}") from None
    return p


def check_torch_file(path: str | Path, expected: str) -> Path:
    """Cheap checks of a `torch.save` file, without loading it: a file, not empty, not text,
    torch's zip format (its directory whole: a file cut short fails here) or a legacy
    pickle. One line naming the problem."""
    import zipfile

    p = check_file(path, expected)
    with open(p, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if not head:
        raise UserError(f"{p}: the file is empty; expected {expected}")
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip, or a legacy pickle
        kind = "a text file" if b"\x00" not in head and _is_text(head) else "not a torch.save file"
        raise UserError(f"{p}: {kind}, not saved tensors; expected {expected}")
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(p) as z:
                z.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise UserError(f"{p}: damaged ({_first_line(e)}); expected {expected}") from None
    return p


def read_torch(path: str | Path, expected: str):
    """A `torch.save` file loaded with `weights_only=True` (tensors and plain containers
    only: no code runs), on the CPU; one line for a folder, a missing, empty, text, cut-short
    or otherwise unreadable file."""
    import torch

    p = check_torch_file(path, expected)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # a cut-short zip, a refused global, a damaged pickle
        raise UserError(f"{p}: cannot be read as tensors only (torch.load weights_only=True: "
                        f"{_first_line(e)}); expected {expected}") from None


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:  # a multi-byte character cut at the end of the sniff
        return e.start >= len(head) - 3
    return True


def check_writable(path: str | Path, flag: str) -> None:
    """Fail now if `path` (a file or folder to create later) cannot be written: its nearest
    existing parent must be a folder in which a folder can be made (one is made and removed;
    permission bits alone would not tell, e.g. for root on a read-only mount)."""
    path = Path(path)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: {parent} is a file, not a folder; give a path "
                        "under a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{path.name}.check-", dir=parent))
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot write in {parent} ({e.strerror}); give a "
                        "folder you can write to") from None
