"""New inputs for a saved model: image files, folders and arrays, table rows, vectors.

Each reader returns (ids, batch): the ids name the inputs in the predictions (an image's file
path, a table row's index from 0), the batch is what the training data held (uint8 images
(N, C, H, W), float32 vectors (N, D)). Every problem is one `UserError` line that names the
input and what the model expects, raised before any prediction is made.

Images follow the training data's own decoding (`RawData.image_decode`):

- image trees (imagefolder, cinic10, tiny_imagenet): decoded with PIL, converted to RGB and
  squashed to the model's size, exactly as training decoded its files, so any image file
  of any size and mode works;
- CIFAR trained with image_size: the decoded RGB array resized as training resized it;
- embedded data (mnist5k, digits, synthetic): the model takes arrays of exactly its shape, so
  a file must have the model's size and channels (1: grayscale, 3: colour); anything else is
  refused, naming what the model expects (resize it yourself: imbtrain does not guess).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from imbtrain.data.tabular import is_parquet, read_rows
from imbtrain.data.vision import IMAGE_EXTS, decode_images, resize_uint8
from imbtrain.errors import UserError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".gz", ".bz2")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}  # one channel (alpha dropped)
COLOUR_MODES = {"RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}


def describe_input(spec: dict[str, Any]) -> str:
    """What a model takes, in words: "1x28x28 grayscale images", "tables with columns ..."."""
    shape = spec["shape"]
    if spec["kind"] == "image":
        c, h, w = shape
        colour = {1: "grayscale", 3: "RGB"}.get(c, f"{c}-channel")
        resized = " (any size: resized)" if spec.get("decode") else ""
        return f"{colour} {w}x{h} images{resized}"
    if spec["kind"] == "table":
        return "rows of a CSV or Parquet file"
    return f"vectors of {shape[0]} numbers"


# ================================================================ images


def image_files(path: Path) -> list[Path]:
    """The image file, or the image files under a folder (recursively, sorted)."""
    if not path.exists():
        raise UserError(f"input {path} does not exist")
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTS:
            raise UserError(f"input {path} is not an image file (expected one of "
                            f"{', '.join(sorted(IMAGE_EXTS))}, or a folder of them)")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
    if not images:
        seen = f" (found {len(files)} other file(s), e.g. {files[0].name!r})" if files else ""
        raise UserError(f"input {path} holds no image files "
                        f"({', '.join(sorted(IMAGE_EXTS))}){seen}")
    return images


def read_images(paths: list[Path], spec: dict[str, Any]) -> torch.Tensor:
    """uint8 (N, C, H, W) images of the files, decoded as the training data were."""
    c, h, w = spec["shape"]
    decode = spec.get("decode") or {}
    if decode.get("resize") == "pil_bilinear":  # the image trees: the training decoder itself
        return decode_images(paths, h, "predict")
    out = torch.empty((len(paths), c, h, w), dtype=torch.uint8)
    for i, p in enumerate(paths):
        x = _decode_file(p, c)
        if decode.get("resize") == "tensor_bilinear":
            x = resize_uint8(x[None], h)[0]
        elif tuple(x.shape[1:]) != (h, w):
            raise UserError(f"image {p} is {x.shape[2]}x{x.shape[1]}; the model takes {w}x{h} "
                            f"images (its training data's size); resize it to {w}x{h}")
        out[i] = x
    return out


def _decode_file(path: Path, channels: int) -> torch.Tensor:
    """One file as uint8 (C, H, W) with the model's channel count, or a UserError."""
    from PIL import Image

    want = {1: "1-channel (grayscale)", 3: "3-channel (RGB)"}.get(channels,
                                                                    f"{channels}-channel")
    try:
        with Image.open(path) as im:
            mode = im.mode
            if channels == 1 and mode in GRAY_MODES:
                arr = np.asarray(im.convert("L"))[None]
            elif channels == 3 and mode in COLOUR_MODES:
                arr = np.asarray(im.convert("RGB")).transpose(2, 0, 1)
            else:
                bands = len(im.getbands())
                raise UserError(f"image {path} has {bands} channel(s) (mode {mode}); the model "
                                f"takes {want} images")
    except OSError as e:  # PIL's UnidentifiedImageError is an OSError
        raise UserError(f"cannot read image {path} ({e})") from None
    return torch.from_numpy(np.array(arr, dtype=np.uint8))  # a writable copy


def image_array(x: Any, spec: dict[str, Any]) -> torch.Tensor:
    """An array (numpy or torch) of decoded images, (C, H, W) or (N, C, H, W) uint8 of the
    model's shape, as a uint8 tensor."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    shape = tuple(spec["shape"])
    if t.dim() == len(shape):
        t = t[None]
    if t.dtype != torch.uint8 or tuple(t.shape[1:]) != shape:
        raise UserError(f"the model takes uint8 image arrays (N, {', '.join(map(str, shape))});"
                        f" got {str(t.dtype).removeprefix('torch.')} {tuple(t.shape)}")
    if len(t) == 0:
        raise UserError("no images to predict (an empty array)")
    return t.contiguous()


# ================================================================ tables and vectors


def is_table_file(path: Path) -> bool:
    return path.is_file() and (path.suffix.lower() in TABLE_SUFFIXES or is_parquet(path))


def table_file(path: Path, spec: dict[str, Any], transform=None):
    """The arrow table of a CSV or Parquet file of rows for a table model (its fitted
    `transform` says how its columns were read) or a vector model."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if not path.exists():
        raise UserError(f"input {path} does not exist")
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTS:
        what = "a folder" if path.is_dir() else "an image"
        raise UserError(f"input {path} is {what}; the model takes "
                        f"{describe_input(spec)} (a CSV or Parquet file)")
    if path.stat().st_size == 0:
        raise UserError(f"input {path} is empty; expected {describe_input(spec)}")
    if transform is not None:
        return read_rows(path, transform)
    try:
        return pq.read_table(path) if is_parquet(path) else pcsv.read_csv(path)
    except Exception as e:  # pyarrow's errors: one line
        raise UserError(f"{path}: cannot be read as CSV or Parquet "
                        f"({str(e).strip().splitlines()[0]})") from None


def vector_rows(table, spec: dict[str, Any], source: str) -> np.ndarray:
    """float32 (N, D) of a table of D numeric columns, for a vector model (toy2d, synthetic):
    the values as the training vectors held them (standardised)."""
    import pyarrow as pa

    d = spec["shape"][0]
    if table.num_columns != d:
        raise UserError(f"{source} has {table.num_columns} column(s); the model takes "
                        f"vectors of {d} numbers, one column each")
    if table.num_rows == 0:
        raise UserError(f"{source} holds no rows")
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            raise UserError(f"column {name!r} of {source} has type {col.type}; the model takes "
                            "numbers")
        cols.append(col.cast(pa.float64()).to_numpy(zero_copy_only=False))
    x = np.stack(cols, axis=1)
    if not np.isfinite(x).all():
        raise UserError(f"{source} holds missing or infinite values; the model takes finite "
                        "numbers")
    return x.astype(np.float32)
