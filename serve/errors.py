"""What each error a request can meet answers with, alike for the API and the dashboard.

Every error of the API is `{"error": "...", "detail": ...}` with a 4xx (5xx only for a missing
index, which the operator must build, and for bugs); nothing of a traceback is sent. The
dashboard's pages say the same errors on the page, with the same status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.query import QueryError
from indexes.filters import error_text
from indexes.query_image import ImageTooLargeError, QueryImageError
from indexes.recommend import UnknownUserError
from indexes.search import UnknownShotError
from indexes.store import IndexMissingError
from serve.auth import AuthError
from serve.media import MediaNotFoundError, RangeNotSatisfiableError

log = logging.getLogger("serve.app")  # the service's log, where these were always written


class UnknownAssetError(LookupError):
    pass


STATUS: dict[type[Exception], int] = {
    QueryError: 400,
    ImageTooLargeError: 413,
    QueryImageError: 415,
    UnknownShotError: 404,
    UnknownUserError: 404,
    UnknownAssetError: 404,
    MediaNotFoundError: 404,
    IndexMissingError: 503,
}
"""The status of each error a query can meet (a subclass answers as its nearest listed class)."""


def status_of(error: Exception) -> int:
    """The status `error` answers with (400 for one not listed)."""
    return next((STATUS[kind] for kind in type(error).__mro__ if kind in STATUS), 400)


def error_response(
    status: int, message: str, detail: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message, "detail": detail}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    def by_status(status: int) -> Callable[[Request, Exception], JSONResponse]:
        return lambda _, exc: error_response(status, str(exc))

    for error, status in STATUS.items():
        app.add_exception_handler(error, by_status(status))

    @app.exception_handler(AuthError)
    def auth_error(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"www-authenticate": "Bearer"} if exc.status_code == 401 else None
        return error_response(exc.status_code, str(exc), headers=headers)

    @app.exception_handler(RangeNotSatisfiableError)
    def unsatisfiable(_: Request, exc: RangeNotSatisfiableError) -> JSONResponse:
        return error_response(
            416, str(exc), {"size": exc.size}, headers={"content-range": f"bytes */{exc.size}"}
        )

    @app.exception_handler(RequestValidationError)
    def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errors]
        return error_response(422, f"invalid request: {error_text(errors)}", detail)

    @app.exception_handler(StarletteHTTPException)
    def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error: the service log has the details")
