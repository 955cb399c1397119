"""Who may call what: open reads on loopback, a token for everything else.

The rule is the dashboard's: "works on a laptop with no login on localhost; a
token protects it when bound to another address". So reads need the token only
when the service listens beyond loopback (and it refuses to start that way
without one); writes (`POST /events`) always need it, since a browser page on
the same laptop could otherwise post to localhost. The token is
`ARCHIVIST_API_TOKEN`, sent as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}

bearer = HTTPBearer(auto_error=False, description="ARCHIVIST_API_TOKEN")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class BindingError(ValueError):
    pass


class AuthError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token: that would open the archive to the network."""
    if not is_loopback(host) and not token:
        raise BindingError(
            f"serving on {host} (beyond this machine) needs a token: set ARCHIVIST_API_TOKEN, "
            "or bind to 127.0.0.1"
        )


class Access:
    """The two FastAPI dependencies, `read` and `write`, for a service bound to `host` (async: a
    comparison is not worth a trip through the thread pool)."""

    def __init__(self, token: str | None, *, host: str) -> None:
        self.token = token
        self.open_reads = is_loopback(host)

    async def read(self, credentials: Credentials) -> None:
        """For a service whose reads are not open (bound beyond loopback)."""
        self._check(credentials)

    async def write(self, credentials: Credentials) -> None:
        if not self.token:
            raise AuthError(403, "writes are disabled on this service: start it with ARCHIVIST_API_TOKEN set")
        self._check(credentials)

    def _check(self, credentials: HTTPAuthorizationCredentials | None) -> None:
        if credentials is None:
            raise AuthError(401, "this needs the service's token: send Authorization: Bearer <token>")
        if not self.token or not hmac.compare_digest(credentials.credentials.encode(), self.token.encode()):
            raise AuthError(403, "the token is not this service's token")
