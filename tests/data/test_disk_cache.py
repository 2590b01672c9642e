"""The on-disk cache of decoded embedded pools (imbtrain.data.disk_cache): where it lives,
what keys it, that a second process reads instead of decoding, that a damaged file is
rebuilt, and that concurrent writers leave one whole file."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from imbtrain.data import build_data, clear_cache
from imbtrain.data import disk_cache as dc
from imbtrain.data.base import RawData

CALLS: list[int] = []


@dc.disk_cached(lambda cfg: {"n": cfg.n})
def counted(cfg) -> RawData:
    """A loader that counts its decodes."""
    CALLS.append(cfg.n)
    x = torch.arange(cfg.n * 4, dtype=torch.uint8).view(cfg.n, 1, 2, 2)
    y = torch.arange(cfg.n) % 2
    return RawData(x, y, x[:2], y[:2], 2, ["a", "b"], (0.5,), (0.25,))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(dc.CACHE_ENV, str(tmp_path / "cache"))
    CALLS.clear()
    return tmp_path / "cache"


def same(a: RawData, b: RawData) -> bool:
    tensors = all(torch.equal(getattr(a, k), getattr(b, k))
                  for k in ("train_x", "train_y", "test_x", "test_y"))
    return tensors and (a.num_classes, a.class_names, a.mean, a.std) == (
        b.num_classes, b.class_names, b.mean, b.std)


def test_the_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(dc.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dc.cache_dir() == tmp_path / "xdg" / "imbtrain"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dc.cache_dir() == tmp_path / "home" / ".cache" / "imbtrain"
    monkeypatch.setenv(dc.CACHE_ENV, str(tmp_path / "mine"))
    assert dc.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv(dc.CACHE_ENV, "off")
    assert dc.cache_dir() is None and dc.cache_path("digits", {}, __name__) is None


def test_the_second_load_reads_the_file_and_gives_the_same_pool(cache):
    cfg = SimpleNamespace(n=6)
    first = counted(cfg)
    files = list(cache.glob("counted-*.pt"))
    assert CALLS == [6] and len(files) == 1
    again = counted(cfg)
    assert CALLS == [6] and same(first, again)  # read, not decoded
    counted(SimpleNamespace(n=8))  # other decode parameters: another file
    assert CALLS == [6, 8] and len(list(cache.glob("counted-*.pt"))) == 2
    assert not list(cache.glob(".*.tmp"))


def test_the_key_holds_the_version_dataset_and_parameters(cache, monkeypatch):
    a = dc.cache_path("digits", {"n": 1}, __name__)
    assert a != dc.cache_path("digits", {"n": 2}, __name__)
    assert a != dc.cache_path("mnist5k", {"n": 1}, __name__)
    assert a.name.startswith("digits-") and a.parent == cache
    monkeypatch.setattr(dc, "__version__", "99.0")
    assert a != dc.cache_path("digits", {"n": 1}, __name__)


@pytest.mark.parametrize("damage", [b"", b"not a torch file", None])
def test_a_damaged_file_is_ignored_and_rebuilt(cache, damage):
    cfg = SimpleNamespace(n=5)
    good = counted(cfg)
    (path,) = cache.glob("counted-*.pt")
    if damage is None:  # truncated half-way
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(damage)
    assert same(counted(cfg), good) and CALLS == [5, 5]  # decoded again ...
    assert same(dc.read(path), good)  # ... and written anew, whole


def test_a_file_of_another_shape_is_ignored(cache):
    cfg = SimpleNamespace(n=3)
    path = dc.cache_path("counted", {"n": 3}, __name__)
    path.parent.mkdir(parents=True)
    torch.save({"train_x": [1, 2]}, path)
    counted(cfg)
    assert CALLS == [3]


def test_an_unwritable_folder_costs_only_the_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder would be")
    monkeypatch.setenv(dc.CACHE_ENV, str(blocker / "cache"))
    CALLS.clear()
    assert len(counted(SimpleNamespace(n=4)).train_y) == 4 and CALLS == [4]


def _write(args) -> None:
    folder, n = args
    import os

    os.environ[dc.CACHE_ENV] = folder
    for _ in range(20):
        dc.write(dc.cache_path("counted", {"n": n}, __name__), counted.uncached(
            SimpleNamespace(n=n)))


def test_concurrent_writers_leave_one_whole_file(cache):
    with mp.get_context("spawn").Pool(4) as pool:
        pool.map(_write, [(str(cache), 7)] * 4)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("counted-")  # no temporary left
    assert same(dc.read(files[0]), counted.uncached(SimpleNamespace(n=7)))


def test_digits_is_the_same_from_the_cache(cache):
    cfg = SimpleNamespace(dataset="digits", data_dir="", train_ratio=0.1,
                          imbalance_profile="exp", test_ratio=1.0, val_fraction=0.5,
                          data_seed=0, image_size=0)
    from imbtrain.data.embedded import digits

    decoded = digits.uncached(cfg)
    clear_cache()
    built = build_data(cfg)  # decodes and writes
    assert len(list(cache.glob("digits-*.pt"))) == 1
    clear_cache()
    again = build_data(cfg)  # reads
    assert same(dc.read(next(cache.glob("digits-*.pt"))), decoded)
    assert torch.equal(built.train_x, again.train_x) and built.train_counts == again.train_counts
    clear_cache()
