"""Writing results through fsspec so that no reader ever sees half a file.

A local path is written to a temporary name beside it and renamed; an object
store gets a single PUT, which is atomic there.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import fsspec


def write_atomic(uri: str, data: bytes, storage_options: dict[str, Any] | None = None) -> None:
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    if _is_local(fs):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.part"
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    else:
        fs.pipe_file(path, data)


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
