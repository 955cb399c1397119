"""Size limits applied before a request reaches a route, so an oversized one costs next to nothing.

A 10 MB query string or a 1 GB upload is refused here, at the door, with a
4xx and the limit: the query never reaches the text encoder, the upload is
never spooled to disk. Bodies are read up to the limit and handed on from
memory; a body that claims a size (Content-Length) over it is refused unread.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_QUERY_STRING_BYTES = 16 << 10
MAX_BODY_BYTES = 10 << 20
"""Largest request body: a query image, or a batch of events."""


class LimitsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string", b"")) > MAX_QUERY_STRING_BYTES:
            await _refuse(
                scope,
                receive,
                send,
                414,
                "the query string is too long",
                {"max_bytes": MAX_QUERY_STRING_BYTES},
            )
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            await _refuse(
                scope, receive, send, 413, "the request body is too large", {"max_bytes": MAX_BODY_BYTES}
            )
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                await _refuse(
                    scope, receive, send, 413, "the request body is too large", {"max_bytes": MAX_BODY_BYTES}
                )
                return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # only a disconnect can follow
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, error: str, detail: dict) -> None:
    await JSONResponse({"error": error, "detail": detail}, status_code=status)(scope, receive, send)
