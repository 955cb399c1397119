"""Where things are on the dashboard: the pages' prefix and the URLs of its media and pages.

Media are named by id (a shot, an asset, a key derived from a catalog URI), never by a path,
so a URL built here can only reach what the catalog names.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote, urlencode

PREFIX = "/dashboard"


def login_url(target: str) -> str:
    return f"{PREFIX}/login?{urlencode({'next': target})}"


def safe_next(target: str | None) -> str:
    """Only back into the dashboard: a login link must not send anyone elsewhere."""
    if target and target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX


def keyframe_url(shot_id: str, keyframe: int = 0) -> str:
    return f"{PREFIX}/media/keyframes/{shot_id}" + (f"?keyframe={keyframe}" if keyframe else "")


def access_copy_url(asset_id: str) -> str:
    return f"{PREFIX}/media/video/{asset_id}"


def source_url(asset_id: str) -> str:
    return f"{PREFIX}/media/source/{asset_id}"


def track_url(asset_id: str, kind: str) -> str:
    """A WebVTT sidecar of the asset, behind the dashboard's session like its other media (the
    API's `/vtt/...` wants the bearer token, which a `<track>` cannot send)."""
    return f"{PREFIX}/media/vtt/{asset_id}/{kind}.vtt"


def evidence_key(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:24]


def evidence_url(uri: str | None) -> str | None:
    return f"{PREFIX}/media/evidence/{evidence_key(uri)}" if uri else None


def report_url(run_id: str) -> str:
    return f"{PREFIX}/audits/{quote(run_id)}/report"


def progress_url(run_id: str) -> str:
    return f"{PREFIX}/runs/{run_id}/progress"
