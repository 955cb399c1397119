"""Finding the media a job is about, in a folder, a file or an object store."""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass
from typing import Any

import fsspec


class SourceError(ValueError):
    """The source cannot be listed: missing, unreachable, or refused."""


@dataclass(frozen=True)
class Found:
    uri: str
    size_bytes: int
    version: str  # changes whenever the file's bytes may have: mtime+size, or the object's ETag


def discover(
    uri: str, *, include: list[str], exclude: list[str], storage_options: dict[str, Any] | None = None
) -> list[Found]:
    """Every media file under `uri` matching `include` and not `exclude`, by name."""
    try:
        fs, root = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    except (ValueError, ImportError) as exc:
        raise SourceError(f"source {uri!r}: not a usable URL ({exc})") from exc
    protocol = fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol
    try:
        if not fs.exists(root):
            raise SourceError(f"source {uri!r} does not exist")
        listing = fs.find(root, detail=True) if fs.isdir(root) else {root: fs.info(root)}
    except SourceError:
        raise
    except Exception as exc:  # botocore and friends raise their own types
        raise SourceError(_explain(uri, exc)) from exc

    found = []
    for path, info in sorted(listing.items()):
        name = posixpath.basename(path)
        if info.get("type") == "directory" or name.startswith("."):
            continue
        if not any(fnmatch.fnmatch(name.lower(), p.lower()) for p in include):
            continue
        if any(fnmatch.fnmatch(name.lower(), p.lower()) for p in exclude):
            continue
        full = path if protocol in ("file", "local") else f"{protocol}://{path}"
        size = int(info.get("size") or 0)
        stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
        found.append(Found(uri=full, size_bytes=size, version=f"{size}:{stamp}"))
    return found


def _explain(uri: str, exc: Exception) -> str:
    kind = type(exc).__name__
    text = str(exc) or kind
    if kind == "NoCredentialsError" or "credentials" in text.lower():
        return (
            f"source {uri!r}: no S3 credentials were found; set ARCHIVIST_S3_ACCESS_KEY_ID and "
            "ARCHIVIST_S3_SECRET_ACCESS_KEY (or the job spec's source.storage_options)"
        )
    if isinstance(exc, PermissionError):
        return f"source {uri!r}: access denied ({text})"
    return f"source {uri!r} cannot be listed: {kind}: {text}"
