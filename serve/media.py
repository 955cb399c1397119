"""Keyframes and access copies, streamed from the warehouse with HTTP range requests.

A client names a shot or an asset, never a file: the URI comes from the
catalog, and is served only if it lies inside the warehouse (`ARCHIVIST_HOME`),
after symbolic links are resolved. Files are read through fsspec in chunks, so
a folder and S3 serve alike and a video never sits whole in memory. One byte
range per request is honoured (what players and browsers ask for); a request
for several gets the whole file, which RFC 9110 allows.

IIIF viewers and players on other sites fetch the API's media and exports (`CROSS_ORIGIN_PATHS`)
with script (`fetch`, `<video crossorigin>`, hls/dash players): `CrossOriginMiddleware` lets them
read every answer there, errors and ranges too, and answers their preflights.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from typing import Any

import fsspec
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.settings import Settings

CHUNK = 256 << 10
CROSS_ORIGIN_PATHS = ("/media/", "/iiif/", "/vtt/", "/exports/")
"""What other sites' viewers read: the API's media (not the dashboard's, behind its cookie) and
the exports. A public read needs no credentials, so any origin may (`*`)."""
CROSS_ORIGIN = {
    "access-control-allow-origin": "*",
    "access-control-expose-headers": "Content-Range, Accept-Ranges, Content-Length, Content-Type",
}
PREFLIGHT = {
    "access-control-allow-methods": "GET, OPTIONS",
    "access-control-allow-headers": "Range, Authorization, If-Range",
    "access-control-max-age": "86400",
}


class MediaNotFoundError(LookupError):
    pass


class RangeNotSatisfiableError(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"the range starts beyond the end of the file ({size} bytes)")
        self.size = size


def inside_warehouse(settings: Settings, uri: str) -> bool:
    if settings.home_is_local:
        path = os.path.realpath(uri.removeprefix("file://"))
        return path.startswith(os.path.realpath(settings.home) + os.sep)
    scheme, _, rest = uri.partition("://")
    home_scheme, _, home_rest = settings.home.partition("://")
    return scheme == home_scheme and posixpath.normpath(rest) == rest and rest.startswith(home_rest + "/")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range asked for, as (first, last) inclusive; None to send the whole file
    (no header, several ranges, or one that cannot be read: RFC 9110 says to ignore it)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, dash, last_text = header.removeprefix("bytes=").strip().partition("-")
    if not dash or not (first_text or last_text):
        return None
    try:
        first = int(first_text) if first_text else None
        last = int(last_text) if last_text else None
    except ValueError:
        return None
    if (first is not None and first < 0) or (last is not None and last < 0):
        return None
    if first is None:  # the last `last` bytes
        if last is None or last == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return max(0, size - last), size - 1
    if last is not None and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiableError(size)
    return first, size - 1 if last is None else min(last, size - 1)


def stream(settings: Settings, uri: str, request: Request, media_type: str) -> Response:
    """The file at `uri` (which the catalog gave), whole (200) or the range asked for (206)."""
    if not inside_warehouse(settings, uri):
        raise MediaNotFoundError("that media is not in the warehouse")
    return ranged_file(
        settings,
        uri,
        request,
        media_type,
        missing="the catalog names a media file that is missing from the warehouse",
    )


def keyframe_response(
    settings: Settings, engine: Any, shot_id: str, request: Request, keyframe: int = 0
) -> Response:
    """A shot's keyframe JPEG (its own, or a long take's further one), found through the query
    engine's catalog view."""
    state = engine.state
    uri = state.view.keyframe_uri(state.row(shot_id), keyframe)
    if not uri:
        raise MediaNotFoundError(f"shot {shot_id} has no keyframe" + (f" {keyframe}" if keyframe else ""))
    return stream(settings, uri, request, "image/jpeg")


def ranged_file(settings: Settings, uri: str, request: Request, media_type: str, *, missing: str) -> Response:
    """A file through fsspec, whole (200) or the byte range the request asks for (206, 416);
    `missing` is the message when it is not there. Callers decide which URIs may be served."""
    fs, path = fsspec.core.url_to_fs(uri, **settings.storage_options())
    try:
        size = int(fs.size(path))
    except FileNotFoundError:
        raise MediaNotFoundError(missing) from None
    headers = {"accept-ranges": "bytes", "cache-control": "private, max-age=3600"}
    wanted = None if request.headers.get("if-range") else parse_range(request.headers.get("range"), size)
    if wanted is None:
        first, last, status = 0, size - 1, 200
    else:
        (first, last), status = wanted, 206
        headers["content-range"] = f"bytes {first}-{last}/{size}"
    headers["content-length"] = str(last - first + 1)
    return StreamingResponse(_chunks(fs, path, first, last + 1), status, headers, media_type=media_type)


def _chunks(fs: fsspec.AbstractFileSystem, path: str, start: int, end: int) -> Iterator[bytes]:
    with fs.open(path, "rb") as handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            data = handle.read(min(CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data


class CrossOriginMiddleware:
    """`CROSS_ORIGIN` on every answer under `CROSS_ORIGIN_PATHS` (so a viewer can read a 206's
    Content-Range, or a 404's reason), and a 204 to their CORS preflights (a `Range` or
    `Authorization` header makes the browser ask first). Plain ASGI: a streamed video passes
    through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _within_root(scope).startswith(CROSS_ORIGIN_PATHS):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in Headers(scope=scope):
            await Response(status_code=204, headers={**CROSS_ORIGIN, **PREFLIGHT})(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer = MutableHeaders(scope=message)
                for name, value in CROSS_ORIGIN.items():
                    if name not in answer:
                        answer[name] = value
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _within_root(scope: Scope) -> str:
    """The request's path under the service's root: behind a reverse proxy's path prefix
    (`archivist serve --root-path`), uvicorn puts the prefix in front of the path."""
    path, root = str(scope["path"]), str(scope.get("root_path") or "").rstrip("/")
    return path[len(root) :] if root and path.startswith(root + "/") else path
