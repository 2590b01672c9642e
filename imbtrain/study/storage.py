"""Where a study lives: a folder on this machine, or a folder under any URI that
`pyarrow.fs.FileSystem.from_uri` opens (`s3://bucket/prefix`, `gs://bucket/prefix`, an
S3-compatible endpoint such as MinIO through the AWS environment, `AWS_ENDPOINT_URL`, or the
URI's own options, `s3://bucket/prefix?endpoint_override=host:9000&scheme=http`).

    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> study = StudyDir.under(root, "batch_size")
    >>> study.is_local, study.local == Path(root) / "batch_size"
    (True, True)
    >>> study.write_text("best.yaml", "lr: 0.1\\n")
    >>> study.read_text("best.yaml"), study.exists("best.yaml"), study.names()
    ('lr: 0.1\\n', True, ['best.yaml'])

A study is written in its working copy (`local`) and pushed to the storage (`push`); it is
read by pulling files into the working copy (`pull`). For a local folder the working copy is
the folder itself and `push` and `pull` do nothing, so the code that writes and reads a study
is the same for both. The working copy of a study in object storage is a cache on this
machine (`cache_root()`), named by the study's URI, so a resumed driver finds the same one;
the storage, never the cache, is the study's record. Ray's side (Tune's trial checkpoints and
experiment state) writes straight to the storage: `tune_storage()` is what `tune.RunConfig`
takes. Ray-free.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs

from imbtrain.errors import UserError

CACHE_ENV = "IMBTRAIN_CACHE_DIR"  # where working copies of studies in object storage live


def cache_root() -> Path:
    """`$IMBTRAIN_CACHE_DIR`, else `$XDG_CACHE_HOME/imbtrain`, else `~/.cache/imbtrain`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imbtrain"


def is_uri(location: str | os.PathLike) -> bool:
    """A URI with a scheme of its own (`s3://`, `gs://`, ...); `file://` and plain paths are
    local folders."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def split_query(location: str) -> tuple[str, str]:
    """('s3://b/p', 'endpoint_override=...') of a URI: the query holds options, maybe
    credentials (`access_key=`), so it is never printed."""
    base, _, query = location.partition("?")
    return base.rstrip("/"), query


@dataclass(frozen=True)
class StudyDir:
    """A folder on a `pyarrow.fs` filesystem: `fs` and `path` (the filesystem's own path,
    for S3 `bucket/prefix/name`), `uri` as it is shown (the URI without its options, or the
    absolute local path). Pickles with its filesystem (Ray tasks and trials take one)."""

    fs: pafs.FileSystem = field(repr=False, compare=False)
    path: str
    uri: str
    local: Path  # the working copy (the folder itself when it is local)
    query: str = field(default="", repr=False)  # the URI's options (never shown)

    # ------------------------------------------------------------ where
    @classmethod
    def parse(cls, location: str | os.PathLike, what: str = "--storage") -> StudyDir:
        """The folder at `location`: a local path (relative ones against this process's
        working directory) or a URI. `UserError` (one line) when pyarrow cannot open it."""
        text = str(location).strip()
        if not text:
            raise UserError(f"{what} is empty; give a folder or a storage URI "
                            "(s3://bucket/prefix, gs://bucket/prefix)")
        if not is_uri(text):
            local = Path(text.removeprefix("file://")).expanduser().resolve()
            return cls(pafs.LocalFileSystem(), local.as_posix(), str(local), local)
        base, query = split_query(text)
        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except Exception as e:  # ArrowInvalid (scheme), OSError (credentials, endpoint)
            raise UserError(f"{what} {base}: not a storage pyarrow can open "
                            f"({_first_line(e)}); use a local folder, s3://bucket/prefix or "
                            "gs://bucket/prefix (S3-compatible endpoints through "
                            "AWS_ENDPOINT_URL or ?endpoint_override=host:port)") from None
        path = path.rstrip("/")
        digest = hashlib.sha1(base.encode()).hexdigest()[:16]
        return cls(fs, path, base, cache_root() / "studies" / digest / Path(path).name, query)

    @classmethod
    def under(cls, storage: str | os.PathLike, name: str) -> StudyDir:
        """`<storage>/<name>`: the folder of the study `name`."""
        if not name or name in (".", "..") or "/" in name or "\\" in name or "?" in name:
            raise UserError(f"--name {name!r}: a study name is one folder name under "
                            "--storage (no '/', not '.' or '..')")
        return cls.parse(storage).child(name)

    def child(self, name: str) -> StudyDir:
        local = self.local / name if self.is_local else (
            self.local.parent.parent / hashlib.sha1(f"{self.uri}/{name}".encode())
            .hexdigest()[:16] / name)
        return StudyDir(self.fs, f"{self.path}/{name}", f"{self.uri}/{name}", local, self.query)

    @property
    def parent(self) -> StudyDir:
        head, _, _ = self.path.rpartition("/")
        uri_head = self.uri.rpartition("/")[0]
        local = self.local.parent if self.is_local else cache_root() / "studies" / \
            hashlib.sha1(uri_head.encode()).hexdigest()[:16] / Path(head).name
        return StudyDir(self.fs, head or "/", uri_head or "/", local, self.query)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def file(self, name: str) -> str:
        """How the file `name` of this folder is shown: its URI or local path."""
        return f"{self.uri}/{name}"

    def address(self, name: str) -> str:
        """The file `name` as a path or URI that opens it anywhere (a URI keeps its
        options): what a config value such as `pretrained=` holds."""
        if self.is_local:
            return str(self.local / name)
        return f"{self.uri}/{name}" + (f"?{self.query}" if self.query else "")

    def shown(self, path: str | os.PathLike) -> str:
        """A file of the working copy as it is shown (its place in the storage)."""
        try:
            rel = Path(path).resolve().relative_to(self.local.resolve())
        except ValueError:
            return str(path)
        return self.file(rel.as_posix()) if str(rel) != "." else self.uri

    def tune_storage(self) -> tuple[str, pafs.FileSystem | None]:
        """(storage_path, storage_filesystem) of `tune.RunConfig` for the study in this
        folder (Tune names its experiment folder after the study: this folder)."""
        if self.is_local:
            return str(self.local.parent), None
        return self.parent.path, self.fs

    # ------------------------------------------------------------ the storage itself
    def _at(self, name: str = "") -> str:
        return f"{self.path}/{name}" if name else self.path

    def _info(self, name: str = "") -> pafs.FileInfo:
        return self.fs.get_file_info(self._at(name))

    def exists(self, name: str = "") -> bool:
        """Whether `name` (a file or folder of this folder; "" the folder) exists. A folder
        in object storage exists once something is in it."""
        info = self._info(name)
        if info.type == pafs.FileType.NotFound:
            return False
        return info.type != pafs.FileType.Directory or bool(name) or self.is_local \
            or bool(self.names())

    def is_file(self, name: str) -> bool:
        return self._info(name).type == pafs.FileType.File

    def names(self, sub: str = "") -> list[str]:
        """The names in this folder (or its subfolder `sub`), sorted; [] when missing."""
        selector = pafs.FileSelector(self._at(sub), allow_not_found=True)
        return sorted(i.base_name for i in self.fs.get_file_info(selector))

    def files(self, pattern: str = "*") -> list[str]:
        """Paths of the files below this folder (relative, '/'-separated) that match
        `pattern` (fnmatch), sorted."""
        selector = pafs.FileSelector(self.path, recursive=True, allow_not_found=True)
        prefix = len(self.path) + 1
        return sorted(rel for i in self.fs.get_file_info(selector)
                      if i.type == pafs.FileType.File
                      and fnmatch.fnmatchcase(rel := i.path[prefix:], pattern))

    def read_bytes(self, name: str) -> bytes:
        with self.fs.open_input_stream(self._at(name)) as f:
            return f.readall()

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode("utf-8")

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write the file `name` whole: a local file through a temporary sibling renamed in
        place (a crash leaves the old file or the new one), an object in one PUT."""
        if self.is_local:
            target = self.local / name
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return
        with self.fs.open_output_stream(self._at(name)) as f:
            f.write(data)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def delete(self, name: str) -> None:
        """Delete the file `name` (nothing when it is not there)."""
        try:
            self.fs.delete_file(self._at(name))
        except FileNotFoundError:
            pass

    def remove(self) -> None:
        """Delete this folder and everything in it (and its working copy)."""
        try:
            self.fs.delete_dir(self.path)
        except FileNotFoundError:
            pass
        if not self.is_local:
            shutil.rmtree(self.local, ignore_errors=True)

    # ------------------------------------------------------------ the working copy
    def push(self, *paths: str | os.PathLike) -> None:
        """Copy files (or folders) of the working copy to the storage, each under its
        path relative to the working copy; nothing to do for a local folder. A path outside
        the working copy is copied under its file name."""
        if self.is_local:
            return
        for p in map(Path, paths):
            p = p if p.is_absolute() else self.local / p
            try:
                rel = p.resolve().relative_to(self.local.resolve()).as_posix()
            except ValueError:
                rel = p.name
            if p.is_dir():
                for f in sorted(q for q in p.rglob("*") if q.is_file()):
                    self.upload(f, f"{rel}/{f.relative_to(p).as_posix()}")
            else:
                self.upload(p, rel)

    def upload(self, source: str | os.PathLike, name: str) -> None:
        """Copy the local file `source` into this folder as `name` (also for a local
        folder, unless `source` is that very file)."""
        source = Path(source)
        if self.is_local and (self.local / name).resolve() == source.resolve():
            return
        self.write_bytes(name, source.read_bytes())

    def pull(self, *names: str) -> list[Path | None]:
        """The files `names` of this folder in the working copy (downloaded from the
        storage, replacing older copies), each its local path, None where the storage has
        no such file."""
        out: list[Path | None] = []
        for name in names:
            target = self.local / name
            if self.is_local:
                out.append(target if target.exists() else None)
                continue
            info = self._info(name)
            if info.type == pafs.FileType.NotFound:
                target.unlink(missing_ok=True)
                out.append(None)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if info.type == pafs.FileType.Directory:
                shutil.rmtree(target, ignore_errors=True)
                for rel in StudyDir(self.fs, self._at(name), self.file(name), target).files():
                    (target / rel).parent.mkdir(parents=True, exist_ok=True)
                    (target / rel).write_bytes(self.read_bytes(f"{name}/{rel}"))
            else:
                target.write_bytes(self.read_bytes(name))
            out.append(target)
        return out

    def clear_working_copy(self) -> None:
        """Forget the cached working copy (a new study of the same URI starts clean)."""
        if not self.is_local:
            shutil.rmtree(self.local, ignore_errors=True)


def as_study_dir(location: StudyDir | str | os.PathLike, what: str = "RESULTS_DIR") -> StudyDir:
    """A `StudyDir` of a study folder given as one, as a path or as a URI."""
    return location if isinstance(location, StudyDir) else StudyDir.parse(location, what)


def file_exists(location: str) -> bool:
    """Whether the file at `location` (a path or a URI) exists."""
    if not is_uri(location):
        return Path(location).is_file()
    fs, path = pafs.FileSystem.from_uri(location)
    return fs.get_file_info(path).type == pafs.FileType.File


def put_file(source: str | os.PathLike, location: str) -> None:
    """Copy the local file `source` to `location` (a path or a URI), whole."""
    if not is_uri(location):
        target = Path(location)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.resolve() != Path(source).resolve():
            shutil.copyfile(source, target)
        return
    fs, path = pafs.FileSystem.from_uri(location)
    with fs.open_output_stream(path) as f:
        f.write(Path(source).read_bytes())


def local_file(location: str) -> str:
    """A file given as a path or a URI (`pretrained=s3://...`) as a path on this machine: a
    URI is downloaded once into the cache (named by the URI) and its copy's path returned."""
    if not is_uri(location):
        return location
    base, _ = split_query(location)
    try:
        fs, path = pafs.FileSystem.from_uri(location)
        size = fs.get_file_info(path).size
        if size is None:
            raise FileNotFoundError("no such file")
        target = cache_root() / "files" / hashlib.sha1(base.encode()).hexdigest()[:16] / \
            Path(path).name
        if target.is_file() and target.stat().st_size == size:
            return str(target)
        with fs.open_input_stream(path) as f:
            data = f.read()
    except Exception as e:
        raise UserError(f"{base}: cannot be read ({_first_line(e)})") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return str(target)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
