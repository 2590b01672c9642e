"""A study's folder through pyarrow.fs (`imbtrain.study.storage`), its one-writer lock
(`imbtrain.study.lock`) and the paths its trials read (`imbtrain.study.paths`): on a local
folder and on a real S3 stand-in (moto_server on 127.0.0.1, fixtures_s3.py)."""

from __future__ import annotations

import json
import os
import textwrap
import time

import pytest

from imbtrain.errors import UserError
from imbtrain.study.lock import STALE_S, StudyLock
from imbtrain.study.paths import absolute_paths, study_files
from imbtrain.study.space import load_space
from imbtrain.study.storage import StudyDir, local_file


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBTRAIN_CACHE_DIR", str(tmp_path / "cache"))


# ================================================================ a local folder


def test_a_local_folder_is_its_own_working_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = StudyDir.under("runs", "bs")  # relative: against this process's folder
    assert study.is_local and study.uri == str(tmp_path / "runs" / "bs")
    assert study.local == tmp_path / "runs" / "bs" and study.name == "bs"
    assert study.tune_storage() == (str(tmp_path / "runs"), None)
    assert not study.exists()
    study.write_text("a.yaml", "x: 1\n")
    (study.local / "sub").mkdir()
    (study.local / "sub" / "b.png").write_bytes(b"png")
    study.push("a.yaml", "sub")  # nothing to copy: the folder is the storage
    assert study.exists() and study.is_file("a.yaml") and not study.is_file("sub")
    assert study.names() == ["a.yaml", "sub"] and study.files("*.png") == ["sub/b.png"]
    assert study.pull("a.yaml", "none.txt") == [study.local / "a.yaml", None]
    assert study.shown(study.local / "sub" / "b.png") == f"{study.uri}/sub/b.png"
    assert [p.name for p in tmp_path.joinpath("runs", "bs").iterdir()] != []
    study.remove()
    assert not (tmp_path / "runs" / "bs").exists()


def test_bad_locations_are_one_line(tmp_path):
    with pytest.raises(UserError) as e:
        StudyDir.under("ftp://host/runs", "x")
    assert str(e.value) == (
        "--storage ftp://host/runs: not a storage pyarrow can open (Unrecognized filesystem "
        "type in URI: ftp://host/runs); use a local folder, s3://bucket/prefix or "
        "gs://bucket/prefix (S3-compatible endpoints through AWS_ENDPOINT_URL or "
        "?endpoint_override=host:port)")
    with pytest.raises(UserError, match=r"^--name 'a/b': a study name is one folder name"):
        StudyDir.under(str(tmp_path), "a/b")
    with pytest.raises(UserError, match=r"^--storage is empty"):
        StudyDir.parse("  ")


# ================================================================ S3 (moto)


def test_a_study_in_s3_is_written_through_its_working_copy(s3, tmp_path):
    study = StudyDir.under(s3.uri("unit/runs"), "bs")
    assert not study.is_local and study.uri == s3.uri("unit/runs/bs")
    assert study.path == f"{s3.bucket}/unit/runs/bs"
    assert study.local.is_relative_to(tmp_path / "cache") and study.local.name == "bs"
    path, fs = study.tune_storage()
    assert path == f"{s3.bucket}/unit/runs" and fs is study.fs
    assert not study.exists() and study.names() == []
    study.local.mkdir(parents=True)
    (study.local / "results.parquet").write_bytes(b"PAR1")
    (study.local / "plots").mkdir()
    (study.local / "plots" / "a.png").write_bytes(b"png")
    study.push("results.parquet", study.local / "plots")
    assert s3.keys("unit/runs/bs/") == ["unit/runs/bs/plots/a.png",
                                        "unit/runs/bs/results.parquet"]
    assert study.exists() and study.is_file("results.parquet")
    assert study.files("*.png") == ["plots/a.png"]
    study.write_text("best.yaml", "lr: 0.1\n")  # straight to the bucket
    assert s3.read("unit/runs/bs/best.yaml") == b"lr: 0.1\n"
    # Another machine (an empty cache) reads it all back from the bucket.
    study.clear_working_copy()
    assert not study.local.exists()
    got = study.pull("results.parquet", "best.yaml", "plots", "none.yaml")
    assert got[:3] == [study.local / "results.parquet", study.local / "best.yaml",
                       study.local / "plots"] and got[3] is None
    assert (study.local / "plots" / "a.png").read_bytes() == b"png"
    study.remove()
    assert s3.keys("unit/runs/bs/") == [] and not study.local.exists()


def test_uri_options_are_kept_but_never_shown(s3):
    port = s3.endpoint.rsplit(":", 1)[1]
    study = StudyDir.under(f"{s3.uri('opt')}?endpoint_override=127.0.0.1:{port}&scheme=http",
                           "x")
    assert study.uri == s3.uri("opt/x") and "endpoint" not in repr(study)
    assert study.address("w.pt") == (f"{s3.uri('opt/x')}/w.pt?endpoint_override=127.0.0.1:"
                                     f"{port}&scheme=http")
    study.write_bytes("w.pt", b"weights")
    local = local_file(study.address("w.pt"))  # pretrained=s3://...: a copy on this node
    assert open(local, "rb").read() == b"weights" and local_file(study.address("w.pt")) == local


# ================================================================ the lock


def test_a_second_driver_is_refused_while_the_first_holds_the_lock(tmp_path):
    study = StudyDir.under(str(tmp_path / "runs"), "bs")
    with StudyLock(study) as first:
        lock_file = tmp_path / "runs" / ".bs.lock"
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        with pytest.raises(UserError) as e:
            StudyLock(study).acquire()
        me = first.me
        assert str(e.value) == (
            f"study folder {study.uri} is in use by pid {os.getpid()} on host {me['host']}, "
            f"started {me['started']}; wait for it to finish or stop it, then run again")
        assert not study.exists()  # the lock lives beside the study folder
    assert not (tmp_path / "runs").exists()  # the folder made for the lock goes with it
    with StudyLock(study):
        pass


def test_a_lock_in_s3_names_its_holder_and_goes_stale(s3, monkeypatch):
    import socket

    study = StudyDir.under(s3.uri("lock/runs"), "bs")
    key = "lock/runs/.bs.lock"
    with StudyLock(study) as first:
        holder = json.loads(s3.read(key))
        assert holder["token"] == first.me["token"] and holder["pid"] == os.getpid()
        with pytest.raises(UserError, match=r"is in use by pid \d+ on host "):
            StudyLock(study).acquire()  # this machine's own lock (the cache's flock)
    assert key not in s3.keys("lock/")
    # A driver on another host: refused while it beats, taken over once silent.
    other = {"pid": 1, "host": "other-host", "started": "2026-01-01T00:00:00+00:00",
             "token": "t", "heartbeat": time.time()}
    study.parent.write_text(".bs.lock", json.dumps(other))
    with pytest.raises(UserError) as e:
        StudyLock(study).acquire()
    assert str(e.value).startswith(
        f"study folder {study.uri} is in use by pid 1 on host other-host, started "
        "2026-01-01T00:00:00+00:00, last seen 0 s ago; wait for it to finish or stop it; a "
        f"driver silent for {STALE_S:.0f} s is taken over")
    study.parent.write_text(".bs.lock", json.dumps({**other,
                                                    "heartbeat": time.time() - STALE_S - 1}))
    with StudyLock(study) as taken:
        assert json.loads(s3.read(key))["token"] == taken.me["token"]
    # A driver of this host that is gone (its pid is dead) is taken over at once.
    dead = {**other, "host": socket.gethostname(), "pid": 2 ** 22 + 1}
    study.parent.write_text(".bs.lock", json.dumps(dead))
    with StudyLock(study):
        pass


# ================================================================ paths


def test_relative_paths_of_a_study_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "s.yaml"
    space.write_text(textwrap.dedent("""
        base: {dataset: tabular, label_column: y, data_dir: data/a.csv, pretrained: none}
        knobs:
          data_dir: {grid: [data/a.csv, data/b.csv]}
        variants:
          warm: {m2m_teacher: t/model.pt}
          cold: {}
    """))
    spec = absolute_paths(load_space(space))
    assert spec.base["data_dir"] == str(tmp_path / "data" / "a.csv")
    assert spec.base["pretrained"] == "none"
    assert spec.knobs["data_dir"].values == (str(tmp_path / "data" / "a.csv"),
                                             str(tmp_path / "data" / "b.csv"))
    assert spec.variants["warm"] == {"m2m_teacher": str(tmp_path / "t" / "model.pt")}
    assert study_files(spec) == {"data_dir": [str(tmp_path / "data" / "a.csv"),
                                              str(tmp_path / "data" / "b.csv")],
                                 "m2m_teacher": [str(tmp_path / "t" / "model.pt")]}
