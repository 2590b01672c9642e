"""On-disk vision datasets: cifar10, cifar100, cinic10, tiny_imagenet, imagefolder.

Nothing is downloaded. CIFAR is read from torchvision's pickled layout directly (no md5
check); the others are image trees decoded with PIL in a thread pool, converted to RGB and
resized (squashed, aspect ratio not kept) to a square `image_size`. Images are held as uint8
(N, 3, H, W). Every missing path or wrong layout is a one-line `UserError` that names the
path expected and the layout.
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from imbtrain.data.base import RawData, channel_stats, require_data_dir
from imbtrain.data.profiles import split_per_class
from imbtrain.errors import UserError
from imbtrain.registry import DATASETS

# ----------------------------------------------------------------------------- CIFAR

# Per-channel statistics of the CIFAR train sets on the 0..1 scale. The std is the true
# per-pixel std (0.2470, ...), not the (0.2023, 0.1994, 0.2010) that many repos copy.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
_TV = "(download it with torchvision once, elsewhere)"


def _cifar_root(data_dir: Path, folder: str, marker: str, name: str, layout: str) -> Path:
    """`<data_dir>/<folder>`, or data_dir itself when it already is that folder."""
    root = Path(data_dir)
    if (root / folder).is_dir():
        return root / folder
    if (root / marker).is_file():
        return root
    raise UserError(f"{name}: no {folder!r} under {root}; expected {layout} {_TV}")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what torchvision's CIFAR files hold: dicts, lists, bytes, text,
    numbers and numpy arrays. Pickle calls whatever a file names, so any other global
    (os.system, ...) is refused: a crafted data file cannot run code (RELIABILITY.md)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               *((m, "_reconstruct") for m in ("numpy.core.multiarray",
                                              "numpy._core.multiarray")),
               *((m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric"))}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data "
                                         "file")
        return super().find_class(module, name)


def _unpickle(path: Path, name: str, layout: str) -> dict:
    if not path.is_file():
        raise UserError(f"{name}: missing file {path}; expected {layout} {_TV}")
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as e:  # any unpickling failure means "not the pickled layout"
        raise UserError(f"{name}: cannot unpickle {path} ({e}); expected {layout}") from e
    if not isinstance(d, dict):
        raise UserError(f"{name}: {path} holds a {type(d).__name__}, not a dict; expected {layout}")
    return d


def _key(d: dict, key: str, path: Path, name: str):
    """d[b"key"] (torchvision's files have bytes keys; str keys are accepted too)."""
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise UserError(f"{name}: {path} has no {key!r} entry; expected torchvision's pickled CIFAR")


def _read_batches(paths: list[Path], label_key: str, name: str, layout: str):
    xs, ys = [], []
    for p in paths:
        d = _unpickle(p, name, layout)
        data = np.asarray(_key(d, "data", p, name), dtype=np.uint8)
        try:
            labels = np.asarray(_key(d, label_key, p, name), dtype=np.int64)
        except (TypeError, ValueError):
            raise UserError(f"{name}: {p} {label_key!r} holds values that are not integer "
                            "class indices; expected a list of ints 0..K-1") from None
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
            raise UserError(
                f"{name}: {p} 'data' has shape {data.shape} for {len(labels)} labels; "
                "expected (N, 3072) uint8 rows of 32x32 RGB images"
            )
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def _names(meta: dict, key: str, path: Path, name: str) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in _key(meta, key, path, name)]


def resize_uint8(x: torch.Tensor, size: int, chunk: int = 1024) -> torch.Tensor:
    """Resize uint8 images (N, C, H, W) to (size, size), bilinear with antialiasing."""
    if size <= 0 or x.shape[-2:] == (size, size):
        return x
    out = torch.empty((len(x), x.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, len(x), chunk):
        part = F.interpolate(
            x[i : i + chunk].float(),
            size=(size, size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        out[i : i + chunk] = part.round().clamp(0, 255).to(torch.uint8)
    return out


def _cifar(
    cfg, name: str, folder: str, files: tuple[list[str], str, str], keys: tuple[str, str], stats
) -> RawData:
    """Read one CIFAR variant: `files` = (train files, test file, meta file), `keys` =
    (label key, class-names key), `stats` = (mean, std)."""
    train_files, test_file, meta_file = files
    label_key, names_key = keys
    listed = "data_batch_1..5" if len(train_files) > 1 else train_files[0]
    layout = f"torchvision's layout <data_dir>/{folder}/{listed}, {test_file} and {meta_file}"
    data_dir = require_data_dir(cfg, name, f"{layout} {_TV}")
    root = _cifar_root(data_dir, folder, test_file, name, layout)
    tx, ty = _read_batches([root / f for f in train_files], label_key, name, layout)
    sx, sy = _read_batches([root / test_file], label_key, name, layout)
    names = _names(_unpickle(root / meta_file, name, layout), names_key, root / meta_file, name)
    labels = torch.cat([ty, sy])
    if int(labels.min()) < 0 or int(labels.max()) >= len(names):
        raise UserError(
            f"{name}: labels in {root} run outside 0..{len(names) - 1} "
            f"({len(names)} class names in {meta_file})"
        )
    size = int(cfg.image_size or 0)
    decode = {"resize": "tensor_bilinear"} if size and size != tx.shape[-1] else None
    return RawData(
        resize_uint8(tx, size), ty, resize_uint8(sx, size), sy, len(names), names, *stats,
        image_decode=decode,
    )


@DATASETS.register("cifar10", on_disk=True, num_classes=10)
def cifar10(cfg) -> RawData:
    """CIFAR-10 from `<data_dir>/cifar-10-batches-py/` (or data_dir = that folder).

    Train pool 5,000 a class, test pool 1,000 a class; resized only if image_size > 0.
    """
    files = ([f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta")
    return _cifar(
        cfg,
        "cifar10",
        "cifar-10-batches-py",
        files,
        ("labels", "label_names"),
        (CIFAR10_MEAN, CIFAR10_STD),
    )


@DATASETS.register("cifar100", on_disk=True, num_classes=100)
def cifar100(cfg) -> RawData:
    """CIFAR-100 (fine labels) from `<data_dir>/cifar-100-python/` (or data_dir = that folder).

    Train pool 500 a class, test pool 100 a class; resized only if image_size > 0.
    """
    return _cifar(
        cfg,
        "cifar100",
        "cifar-100-python",
        (["train"], "test", "meta"),
        ("fine_labels", "fine_label_names"),
        (CIFAR100_MEAN, CIFAR100_STD),
    )


# ----------------------------------------------------------------------------- image trees

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _is_image(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS


def list_images(folder: Path, name: str, layout: str) -> list[Path]:
    """The image files of one folder, sorted; an error if there are none."""
    if not folder.is_dir():
        raise UserError(f"{name}: missing directory {folder}; expected {layout}")
    files = sorted(p for p in folder.iterdir() if _is_image(p))
    if not files:
        others = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        seen = f" (found {len(others)} other entries, e.g. {others[0]!r})" if others else ""
        raise UserError(
            f"{name}: no image files ({', '.join(sorted(IMAGE_EXTS))}) in {folder}{seen}; "
            f"expected {layout}"
        )
    return files


def class_folders(root: Path, name: str, layout: str) -> list[Path]:
    """The class folders of a class-per-folder tree, sorted by name; at least two."""
    if not root.is_dir():
        raise UserError(f"{name}: missing directory {root}; expected {layout}")
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(dirs) < 2:
        found = f"only {dirs[0].name!r}" if dirs else "none"
        raise UserError(
            f"{name}: {root} needs at least 2 class folders, found {found}; expected {layout}"
        )
    return dirs


def read_tree(root: Path, classes: list[str], name: str, layout: str):
    """(paths, labels) of `root/<class>/*` for the given class order."""
    paths, labels = [], []
    for c, cls in enumerate(classes):
        files = list_images(root / cls, name, layout)
        paths += files
        labels += [c] * len(files)
    return paths, torch.tensor(labels, dtype=torch.int64)


# How `decode_images` makes an image of a file: what a saved model does to new files too.
IMAGE_DECODE = {"mode": "RGB", "resize": "pil_bilinear"}


def decode_images(paths: list[Path], size: int, name: str) -> torch.Tensor:
    """Decode image files to uint8 (N, 3, size, size), RGB, in a thread pool.

    PIL releases the GIL while decoding, so threads overlap; each fills its own row of one
    preallocated array, so the pool is never held twice.
    """
    from PIL import Image

    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def load(i: int) -> None:
        try:
            with Image.open(paths[i]) as im:
                im = im.convert("RGB")
                if im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR)
                out[i] = np.asarray(im)
        except OSError as e:  # PIL's UnidentifiedImageError is an OSError
            raise UserError(f"{name}: cannot read image {paths[i]} ({e})") from e

    workers = min(16, (os.cpu_count() or 1) + 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(load, range(len(paths))))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _tree_data(train_paths, train_y, test_paths, test_y, classes, size, name) -> RawData:
    train_x = decode_images(train_paths, size, name)
    test_x = decode_images(test_paths, size, name)
    mean, std = channel_stats(train_x)
    return RawData(train_x, train_y, test_x, test_y, len(classes), classes, mean, std,
                   image_decode=IMAGE_DECODE)


def _same_classes(train_root: Path, test_root: Path, name: str, layout: str) -> list[str]:
    classes = [p.name for p in class_folders(train_root, name, layout)]
    test_classes = [p.name for p in class_folders(test_root, name, layout)]
    if test_classes != classes:
        diff = sorted(set(classes) ^ set(test_classes))
        raise UserError(
            f"{name}: class folders of {train_root} and {test_root} differ ({diff[:5]}); "
            f"expected {layout}"
        )
    return classes


@DATASETS.register("cinic10", on_disk=True, num_classes=10)
def cinic10(cfg) -> RawData:
    """CINIC-10 from `<data_dir>/train/<class>/*.png` and `<data_dir>/test/<class>/*.png`.

    CINIC's `valid/` split is ignored: the train pool is `train/` alone (9,000 a class), the
    n_max of the long-tailed CINIC-10 benchmarks, and imbtrain takes validation from the test
    pool anyway. Native 32x32; resized if image_size > 0.
    """
    name = "cinic10"
    layout = "<data_dir>/train/<class>/*.png and <data_dir>/test/<class>/*.png (CINIC-10)"
    root = require_data_dir(cfg, name, layout)
    classes = _same_classes(root / "train", root / "test", name, layout)
    train_paths, train_y = read_tree(root / "train", classes, name, layout)
    test_paths, test_y = read_tree(root / "test", classes, name, layout)
    size = int(cfg.image_size or 0) or 32
    return _tree_data(train_paths, train_y, test_paths, test_y, classes, size, name)


def _tiny_val(root: Path, wnids: list[str], name: str, layout: str):
    """(paths, labels) of Tiny-ImageNet's val split from val/val_annotations.txt."""
    ann = root / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise UserError(f"{name}: missing file {ann}; expected {layout}")
    label_of = {w: i for i, w in enumerate(wnids)}
    paths, labels = [], []
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if not line.strip():
            continue
        if len(parts) < 2 or parts[1] not in label_of:
            raise UserError(
                f"{name}: {ann}: bad line {line!r}; expected '<file>\\t<wnid>...'"
                " with a wnid of wnids.txt"
            )
        p = root / "val" / "images" / parts[0]
        if not p.is_file():
            raise UserError(f"{name}: {ann} names {p}, which does not exist; expected {layout}")
        paths.append(p)
        labels.append(label_of[parts[1]])
    return paths, torch.tensor(labels, dtype=torch.int64)


def _tiny_names(root: Path, wnids: list[str]) -> list[str]:
    """Readable class names from words.txt when it is there (first synonym), else wnids."""
    words = root / "words.txt"
    table = {}
    if words.is_file():
        for line in words.read_text().splitlines():
            wnid, _, text = line.partition("\t")
            table[wnid] = text.split(",")[0].strip()
    return [table.get(w) or w for w in wnids]


@DATASETS.register("tiny_imagenet", on_disk=True, num_classes=200)
def tiny_imagenet(cfg) -> RawData:
    """Tiny-ImageNet-200: train pool `train/<wnid>/images/*.JPEG` (500 a class), test pool
    the labelled `val/images/*.JPEG` (50 a class, labels from `val/val_annotations.txt`).

    Classes are the wnids of `wnids.txt` sorted by name (ImageFolder's order). The unlabelled
    `test/` split is not used. Native 64x64; resized if image_size > 0.
    """
    name = "tiny_imagenet"
    layout = (
        "<data_dir>/wnids.txt, <data_dir>/train/<wnid>/images/*.JPEG, "
        "<data_dir>/val/images/*.JPEG and <data_dir>/val/val_annotations.txt"
    )
    root = require_data_dir(cfg, name, layout)
    if not (root / "wnids.txt").is_file():
        raise UserError(f"{name}: missing file {root / 'wnids.txt'}; expected {layout}")
    wnids = sorted({w.strip() for w in (root / "wnids.txt").read_text().split() if w.strip()})
    if len(wnids) < 2:
        raise UserError(f"{name}: {root / 'wnids.txt'} lists {len(wnids)} wnid; need at least 2")
    train_paths, train_y = [], []
    for c, w in enumerate(wnids):
        files = list_images(root / "train" / w / "images", name, layout)
        train_paths += files
        train_y += [c] * len(files)
    test_paths, test_y = _tiny_val(root, wnids, name, layout)
    size = int(cfg.image_size or 0) or 64
    data = _tree_data(
        train_paths, torch.tensor(train_y, dtype=torch.int64), test_paths, test_y, wnids, size, name
    )
    data.class_names = _tiny_names(root, wnids)
    return data


IMAGEFOLDER_TEST_FRACTION = 0.2
_IMAGEFOLDER_SEED = 20230  # constant: the 80/20 split of a tree must never change


@DATASETS.register("imagefolder", on_disk=True)
def imagefolder(cfg) -> RawData:
    """Any class-per-folder tree (ISIC, APTOS, EuroSAT, a user's own).

    With `<data_dir>/train/<class>/*` and `<data_dir>/test/<class>/*` those are the pools;
    a plain tree `<data_dir>/<class>/*` is split stratified 80/20 (a fifth of each class,
    rounded, at least one image a side) with a constant seed. Classes are the folder names
    in sorted order; files without an image extension are skipped. Images are squashed to
    image_size x image_size, 64 when image_size is 0.
    """
    name = "imagefolder"
    layout = (
        "<data_dir>/train/<class>/* and <data_dir>/test/<class>/*, "
        "or a class-per-folder tree <data_dir>/<class>/*"
    )
    root = require_data_dir(cfg, name, layout)
    size = int(cfg.image_size or 0) or 64
    if (root / "train").is_dir() or (root / "test").is_dir():
        classes = _same_classes(root / "train", root / "test", name, layout)
        train_paths, train_y = read_tree(root / "train", classes, name, layout)
        test_paths, test_y = read_tree(root / "test", classes, name, layout)
        return _tree_data(train_paths, train_y, test_paths, test_y, classes, size, name)
    classes = [p.name for p in class_folders(root, name, layout)]
    paths, y = read_tree(root, classes, name, layout)
    test_idx, train_idx = split_per_class(
        y, IMAGEFOLDER_TEST_FRACTION, _IMAGEFOLDER_SEED, len(classes)
    )
    return _tree_data(
        [paths[i] for i in train_idx.tolist()],
        y[train_idx],
        [paths[i] for i in test_idx.tolist()],
        y[test_idx],
        classes,
        size,
        name,
    )
