"""Where things are on the dashboard: the pages' prefix and the URLs of its media and pages.

Media are named by id (a shot, an asset, a key derived from a catalog URI), never by a path,
so a URL built here can only reach what the catalog names.

Behind a reverse proxy that serves archivist under a path (`https://example.org/archive/`,
`archivist serve --root-path /archive`), the browser must be sent to that path: the ASGI
`root_path` of the request being answered (`RootPath`, a context variable) goes before every
URL made here, so the routes stay where they are and the links follow the proxy.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from urllib.parse import quote, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/dashboard"
"""Where the dashboard's routes are, under the service's root."""
_ROOT: ContextVar[str] = ContextVar("archivist_root_path", default="")


class RootPath:
    """ASGI middleware: the request's `root_path` (a proxy's path prefix), for `prefix()`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _ROOT.set(str(scope.get("root_path") or "").rstrip("/"))
        try:
            await self.app(scope, receive, send)
        finally:
            _ROOT.reset(token)


def under_root(path: str) -> str:
    """A path of this service as the browser reaches it."""
    return _ROOT.get() + path


def prefix() -> str:
    """The dashboard's path as the browser reaches it."""
    return under_root(PREFIX)


def login_url(target: str) -> str:
    return f"{prefix()}/login?{urlencode({'next': target})}"


def safe_next(target: str | None) -> str:
    """Only back into the dashboard: a login link must not send anyone elsewhere."""
    if target and target.startswith(prefix()) and not target.startswith("//") and "\\" not in target:
        return target
    return prefix()


def keyframe_url(shot_id: str, keyframe: int = 0) -> str:
    return f"{prefix()}/media/keyframes/{shot_id}" + (f"?keyframe={keyframe}" if keyframe else "")


def access_copy_url(asset_id: str) -> str:
    return f"{prefix()}/media/video/{asset_id}"


def source_url(asset_id: str) -> str:
    return f"{prefix()}/media/source/{asset_id}"


def track_url(asset_id: str, kind: str) -> str:
    """A WebVTT sidecar of the asset, behind the dashboard's session like its other media (the
    API's `/vtt/...` wants the bearer token, which a `<track>` cannot send)."""
    return f"{prefix()}/media/vtt/{asset_id}/{kind}.vtt"


def evidence_key(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:24]


def evidence_url(uri: str | None) -> str | None:
    return f"{prefix()}/media/evidence/{evidence_key(uri)}" if uri else None


def report_url(run_id: str) -> str:
    return f"{prefix()}/audits/{quote(run_id)}/report"


def progress_url(run_id: str) -> str:
    return f"{prefix()}/runs/{run_id}/progress"
