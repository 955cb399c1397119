"""Who may see the dashboard: the API's rule, with a login form and a cookie for browsers.

On loopback nothing is asked. Beyond it, a browser cannot send a bearer token with `<img>` or
`<video>`, so the token is typed once into a login form and kept as an HttpOnly,
SameSite=Strict cookie holding a keyed hash of the token (not the token itself, which also
grants writes); a bearer header works too.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import Request, Response
from starlette.exceptions import HTTPException

from serve.auth import Access, AuthError, Credentials
from serve.dashboard.throttle import LoginThrottle
from serve.dashboard.urls import login_url, prefix, under_root

COOKIE = "archivist_dashboard"


def session_value(token: str) -> str:
    """What the cookie holds: a keyed hash of the token, useless as a bearer token for writes."""
    return hmac.new(token.encode(), b"archivist dashboard session", hashlib.sha256).hexdigest()


class Gate:
    """The dashboard's two dependencies: pages (which send a browser to the login form) and media
    (which answer 401, as an `<img>` cannot follow a login); and the login that opens both."""

    def __init__(self, access: Access, throttle: LoginThrottle | None = None) -> None:
        self.access = access
        self.throttle = throttle or LoginThrottle()

    @property
    def open(self) -> bool:
        """Whether nothing is asked (the service listens on loopback)."""
        return self.access.open_reads

    def allowed(self, request: Request, credentials: Credentials) -> bool:
        return self.access.open_reads or self.holds_token(request, credentials)

    def holds_token(self, request: Request, credentials: Credentials) -> bool:
        """Whether the request carries the service's token: the login's session cookie or a bearer header."""
        token = self.access.token
        if not token:
            return False
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
            return True
        return credentials is not None and hmac.compare_digest(
            credentials.credentials.encode(), token.encode()
        )

    @staticmethod
    def to_login(request: Request, login: Callable[[str], str] | None = None) -> HTTPException:
        """A redirect to a login form (the dashboard's, unless another is given) that comes back to
        this request's page."""
        path = request.url.path if request.url.path.startswith(prefix()) else under_root(request.url.path)
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return HTTPException(303, "log in first", headers={"location": (login or login_url)(target)})

    async def page(self, request: Request, credentials: Credentials) -> None:
        if not self.allowed(request, credentials):
            raise self.to_login(request)

    async def media(self, request: Request, credentials: Credentials) -> None:
        if not self.allowed(request, credentials):
            raise AuthError(401, "this needs the service's token: log in at /dashboard/login")

    def is_token(self, typed: str) -> bool:
        token = self.access.token
        if not token:
            return False
        return hmac.compare_digest(typed.encode(), token.encode())

    def open_session(self, request: Request, response: Response) -> None:
        """Give the browser the session cookie (only after `is_token`)."""
        response.set_cookie(
            COOKIE,
            session_value(self.access.token or ""),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=prefix(),
        )

    async def form(self, request: Request) -> None:
        """Refuse a form posted from another site (cross-site request forgery). The session
        cookie is SameSite=Strict already; this also covers a service open on loopback, which
        asks for no cookie at all. A browser names where a post comes from (`Sec-Fetch-Site`,
        `Origin`, else `Referer`); a client that names nothing (curl, a script) is not a browser
        being used by another site, and passes."""
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise HTTPException(403, "a form posted from another site is refused")
        source = request.headers.get("origin") or request.headers.get("referer")
        if source and source != "null":
            parts = urlsplit(source)
            if f"{parts.scheme}://{parts.netloc}" != f"{request.url.scheme}://{request.url.netloc}":
                raise HTTPException(403, f"a form posted from {parts.scheme}://{parts.netloc} is refused")
        elif source == "null":  # a sandboxed frame or a data: page: never this dashboard
            raise HTTPException(403, "a form posted from an opaque origin is refused")
