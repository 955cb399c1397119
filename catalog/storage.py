"""Writing results through fsspec so that no reader ever sees half a file.

A local path is written to a temporary name beside it and renamed; an object
store gets a single PUT, which is atomic there. The same holds for the files the
Iceberg catalog writes (data, manifests, metadata), through `ArchiveFileIO`.

Storage fails in ways worth telling apart. Transient S3 failures (500, 503 SlowDown,
a reset connection, a timeout) are retried by botocore with backoff, configured once
(`Settings.s3_config`). What still fails — a full disk, a read-only warehouse, an
object store that keeps refusing — becomes a `StorageError` that names the file or
object, and leaves nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from typing import Any, Self

import fsspec
from pyiceberg.io import OutputStream
from pyiceberg.io.fsspec import FsspecFileIO, FsspecOutputFile
from pyiceberg.typedef import Properties


class StorageError(OSError):
    """A write that failed for good, saying which file or object and why (the errno of the
    cause is kept, so `except OSError` still catches it)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def refused_in(error: str | None) -> StorageError | None:
    """The storage refusal a row's `error` reports, if it does: a stage records what went wrong
    with an asset as its row's error, prefixed with the exception's type (`actors.demux.explain`),
    and a write the archive's own storage refused is not the asset's fault. Recorded as a failed
    asset, the next run would skip it; the run fails on it instead (`jobs.run`)."""
    prefix = f"{StorageError.__name__}: "
    if error and error.startswith(prefix):
        return StorageError(errno.EIO, error.removeprefix(prefix))
    return None


def failure(uri: str, exc: BaseException) -> StorageError:
    """What went wrong writing `uri`, in words naming it."""
    if isinstance(exc, StorageError):
        return exc
    code = getattr(exc, "errno", None) or errno.EIO
    where = uri.rsplit("/", 1)[0] or uri
    if code == errno.ENOSPC:
        message = f"no space left on {where} (writing {uri})"
    elif code == errno.EROFS:
        message = f"{where} is on a read-only file system (writing {uri})"
    elif code == errno.EDQUOT:
        message = f"disk quota exceeded on {where} (writing {uri})"
    elif isinstance(exc, PermissionError):
        message = f"permission denied writing {uri}: {exc}"
    else:
        message = f"could not write {uri}: {type(exc).__name__}: {exc}"
    return StorageError(code, message)


def write_atomic(uri: str, data: bytes, storage_options: dict[str, Any] | None = None) -> None:
    """Write `data` at `uri` whole or not at all; a `StorageError` naming `uri` if it fails."""
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    try:
        if _is_local(fs):
            with AtomicLocalFile(path) as out:
                out.write(data)
        else:
            fs.pipe_file(path, data)
    except Exception as exc:
        raise failure(uri, exc) from exc


class _WrittenOnce:
    """What writers ask of a file written once, front to back, that is whole or not there:
    closing it cleanly publishes it, leaving it (an error, the garbage collector) aborts it."""

    closed: bool
    _stream: Any

    def tell(self) -> int:
        return int(self._stream.tell())

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        self.abort()


class AtomicLocalFile(_WrittenOnce):
    """A local file written under a temporary name beside it and renamed into place when
    closed cleanly; a write that fails (or a file dropped unclosed) removes the temporary
    name, so the final name holds a whole file or nothing."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp = f"{path}.{uuid.uuid4().hex}.part"
        self.closed = True  # until the temporary file is open
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            self._stream = open(self.tmp, "wb")  # noqa: SIM115 - closed by close() or abort()
        except OSError as exc:
            raise failure(path, exc) from exc
        self.closed = False

    def write(self, data: bytes) -> int:
        try:
            return self._stream.write(data)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise failure(self.path, exc) from exc
            raise

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._stream.flush()
            os.fsync(self._stream.fileno())
            self._stream.close()
            os.replace(self.tmp, self.path)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise failure(self.path, exc) from exc
            raise
        self.closed = True

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):  # the disk that failed the write may fail the close too
            self._stream.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.tmp)


class _NamedStream(_WrittenOnce):
    """An fsspec output stream whose failures name its object, and which a failed or
    abandoned write discards rather than uploads (fsspec uploads on close, even from
    the garbage collector)."""

    def __init__(self, location: str, inner: Any) -> None:
        self.location, self._stream = location, inner
        self.closed = False

    def write(self, data: bytes) -> int:
        try:
            return int(self._stream.write(data))
        except Exception as exc:
            self.abort()
            raise failure(self.location, exc) from exc

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._stream.close()
        except Exception as exc:
            self.abort()
            raise failure(self.location, exc) from exc
        self.closed = True

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):  # an abandoned upload is only wasted space
            self._stream.discard()
        self._stream.closed = True  # never uploaded on garbage collection


class _ArchiveOutputFile(FsspecOutputFile):
    def create(self, overwrite: bool = False) -> OutputStream:
        if not overwrite and self.exists():
            raise FileExistsError(f"Cannot create file, file already exists: {self.location}")
        try:
            if _is_local(self._fs):
                return AtomicLocalFile(self._fs._strip_protocol(self.location))
            return _NamedStream(self.location, self._fs.open(self.location, "wb"))
        except Exception as exc:
            raise failure(self.location, exc) from exc


class ArchiveFileIO(FsspecFileIO):
    """pyiceberg's fsspec FileIO with archivist's S3 client config (retries with backoff,
    timeouts: the same as `Settings.storage_options`) and whole-or-nothing writes that
    name their file when they fail. Named by `Settings.iceberg_properties`."""

    def __init__(self, properties: Properties) -> None:
        super().__init__(properties)
        for scheme in ("s3", "s3a", "s3n"):
            self._scheme_to_fs[scheme] = _s3

    def new_output(self, location: str) -> FsspecOutputFile:
        plain = super().new_output(location)
        return _ArchiveOutputFile(location=plain.location, fs=plain._fs)


def _s3(properties: Properties) -> fsspec.AbstractFileSystem:
    from s3fs import S3FileSystem

    client = {
        key: properties[prop]
        for key, prop in (("endpoint_url", "s3.endpoint"), ("region_name", "s3.region"))
        if properties.get(prop)
    }
    config: dict[str, Any] = {
        "retries": {
            "mode": properties.get("archivist.s3.retry-mode", "standard"),
            "max_attempts": int(properties.get("archivist.s3.max-attempts", "5")),
        }
    }
    for key, prop in (("connect_timeout", "s3.connect-timeout"), ("read_timeout", "s3.request-timeout")):
        if properties.get(prop):
            config[key] = float(properties[prop])
    return S3FileSystem(
        key=properties.get("s3.access-key-id"),
        secret=properties.get("s3.secret-access-key"),
        client_kwargs=client,
        config_kwargs=config,
    )


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
