"""Who may see the dashboard: the API's rule, with a login form and a cookie for browsers.

On loopback nothing is asked. Beyond it, a browser cannot send a bearer token with `<img>` or
`<video>`, so the token is typed once into a login form and kept as an HttpOnly,
SameSite=Strict cookie holding a keyed hash of the token (not the token itself, which also
grants writes); a bearer header works too.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Response
from starlette.exceptions import HTTPException

from serve.auth import Access, AuthError, Credentials
from serve.dashboard.throttle import LoginThrottle
from serve.dashboard.urls import PREFIX, login_url

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
        token = self.access.token
        if self.access.open_reads:
            return True
        if not token:
            return False
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
            return True
        return credentials is not None and hmac.compare_digest(
            credentials.credentials.encode(), token.encode()
        )

    async def page(self, request: Request, credentials: Credentials) -> None:
        if not self.allowed(request, credentials):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "log in first", headers={"location": login_url(target)})

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
            path=PREFIX,
        )
