"""One writer per study folder: a lock held by the study's driver for the whole study (and for
`--resume`), so that a second driver started on the same folder stops at once, naming the
one that runs.

    with StudyLock(StudyDir.under("runs", "batch_size")):
        ...  # the only driver of runs/batch_size

Beside the study folder (`<storage>/.<name>.lock`, so that a refused driver writes nothing in
the study itself), holding the holder's pid, host and start time:

- a local (or mounted) folder: an exclusive `flock` on that file, which the kernel releases
  when the holder exits in any way (SIGKILL included). A shared file system that supports
  POSIX locks (NFSv4, EFS) extends it across hosts.
- object storage (S3, GCS): there is no atomic create-if-absent in `pyarrow.fs`, so the lock
  is an object with the holder's identity that the holder rewrites every HEARTBEAT_S seconds,
  plus a local `flock` (in the cache, `imbtrain.study.storage.cache_root`) that settles it
  between drivers of one machine. A driver on another host is refused while the object's
  heartbeat is younger than STALE_S; an older one (a driver that died, a lost head) is taken
  over. Two drivers started on different hosts within the same moment can both get it: the
  lock stops the mistakes people make (a second terminal, a job submitted twice), it is not
  a consensus protocol.

Ray-free.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
import uuid
from datetime import datetime

from imbtrain.errors import UserError
from imbtrain.study.storage import StudyDir

HEARTBEAT_S = 30.0  # how often the holder of a lock in object storage says it is alive
STALE_S = 120.0  # a lock object not rewritten for this long belongs to a driver that is gone


def _identity() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now().astimezone().isoformat(timespec="seconds"),
            "token": uuid.uuid4().hex, "heartbeat": time.time()}


def _describe(holder: dict | None) -> str:
    if not holder:
        return "another driver (starting up)"
    return (f"pid {holder.get('pid')} on host {holder.get('host')}, started "
            f"{holder.get('started')}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True


class StudyLock:
    """The lock of one study folder (see the module docstring); a context manager."""

    def __init__(self, study: StudyDir):
        self.study = study
        self.name = f".{study.name}.lock"
        self.me = _identity()
        self._fd: int | None = None
        self._path = None
        self._created_root = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # ------------------------------------------------------------ acquire / release
    def acquire(self) -> None:
        """Take the lock, or raise `UserError` naming the driver that holds it."""
        root = self.study.parent
        if self.study.is_local:
            self._created_root = not root.local.exists()
            self._path = root.local / self.name
        else:
            self._path = self.study.local.parent / f"{self.study.name}.lock"
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._flock()
        except PermissionError as e:
            self._cleanup_root()
            raise UserError(f"--storage {root.uri} cannot be written ({e.strerror}: "
                            f"{e.filename}); give a folder this user can write") from None
        if not self.study.is_local:
            try:
                self._take_object()
            except BaseException:
                self._unlock_local()
                raise
            self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                          name="imbtrain-study-lock")
            self._beat.start()

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None
            try:
                holder = self._read_object()
                if holder and holder.get("token") == self.me["token"]:
                    self.study.parent.delete(self.name)
            except OSError:
                pass  # the object goes stale on its own
        self._unlock_local()
        self._cleanup_root()

    # ------------------------------------------------------------ the local lock
    def _flock(self) -> None:
        while True:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_fd(fd)
                os.close(fd)
                self._cleanup_root()
                raise UserError(self._busy(holder)) from None
            # The holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a file no one else sees; open it again.
            try:
                same = os.fstat(fd).st_ino == os.stat(self._path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(self.me).encode(), 0)
        self._fd = fd

    def _unlock_local(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self._path)  # before the unlock: no one can lock the old file after
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def _cleanup_root(self) -> None:
        """A storage folder this driver created for its lock, and left empty, goes again."""
        if self._created_root:
            try:
                self.study.parent.local.rmdir()
            except OSError:
                pass
            self._created_root = False

    # ------------------------------------------------------------ the lock object
    def _read_object(self) -> dict | None:
        root = self.study.parent
        if not root.is_file(self.name):
            return None
        try:
            data = json.loads(root.read_text(self.name))
        except ValueError:
            return None  # damaged: treated as absent
        return data if isinstance(data, dict) else None

    def _take_object(self) -> None:
        holder = self._read_object()
        if holder and holder.get("token") != self.me["token"]:
            age = time.time() - float(holder.get("heartbeat") or 0)
            here = holder.get("host") == self.me["host"]
            # On this host the local flock is ours, so its holder is gone unless its pid
            # lives (another user's cache); elsewhere only a stale heartbeat says so.
            alive = _pid_alive(holder.get("pid")) if here else True
            if alive and age < STALE_S:
                raise UserError(self._busy(holder, age))
        self._write_object()
        holder = self._read_object()
        if not holder or holder.get("token") != self.me["token"]:
            raise UserError(self._busy(holder))

    def _write_object(self) -> None:
        self.me["heartbeat"] = time.time()
        self.study.parent.write_text(self.name, json.dumps(self.me))

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._write_object()
            except OSError:
                pass  # a storage hiccup; the next beat tries again

    def _busy(self, holder: dict | None, age: float | None = None) -> str:
        seen = f", last seen {age:.0f} s ago" if age is not None else ""
        stale = (f"; a driver silent for {STALE_S:.0f} s is taken over"
                 if not self.study.is_local else "")
        return (f"study folder {self.study.uri} is in use by {_describe(holder)}{seen}; "
                f"wait for it to finish or stop it{stale}, then run again")


def _read_fd(fd: int) -> dict | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
