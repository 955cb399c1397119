"""The HTTP API: search, recommendations, shots and assets, media, events, health and metrics.

Routes are plain functions (FastAPI runs them in its thread pool): the work is
FAISS and model inference, which release the GIL, not waiting on sockets. The
engine is shared by all requests; a background thread refreshes it every
`REFRESH_SECONDS`, so a rebuilt index or a new run is served without a restart
and a request never waits for a reload. Every error is
`{"error": "...", "detail": ...}` with a 4xx (5xx only for a missing index,
which the operator must build, and for bugs); nothing of a traceback is sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pyiceberg.expressions import EqualTo
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.iceberg import read
from catalog.query import QueryError
from catalog.settings import Settings
from indexes.filters import Filters, describe_errors
from indexes.query import MAX_QUERY_CHARS, MAX_TOP, ImageTooLargeError, QueryEngine, decode_query_image
from indexes.query_image import QueryImageError
from indexes.recommend import DIVERSITY, FAIRNESS, UnknownUserError, for_you, more_like_this, record_events
from indexes.search import UnknownShotError
from indexes.store import IndexMissingError
from serve import schemas
from serve.auth import Access, AuthError, check_binding
from serve.dashboard import dashboard_router
from serve.limits import LimitsMiddleware
from serve.media import MediaNotFoundError, RangeNotSatisfiableError, keyframe_response, stream
from serve.metrics import Metrics, MetricsMiddleware

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
ERRORS = {status: {"model": schemas.ErrorBody} for status in (400, 401, 403, 404, 413, 414, 415, 422, 503)}


Top = Annotated[int, Query(ge=1, le=MAX_TOP, description="how many hits")]
Fold = Annotated[bool, Query(description="fold near-duplicates under the best of them")]


class UnknownAssetError(LookupError):
    pass


def create_app(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    engine: QueryEngine | None = None,
    refresh_seconds: float = REFRESH_SECONDS,
) -> FastAPI:
    """The API for the archive in `settings`, as served on `host` (which decides the token rule)."""
    check_binding(host, settings.api_token)
    engine = engine if engine is not None else QueryEngine(settings)
    access = Access(settings.api_token, host=host)
    metrics = Metrics(lambda: engine.loaded)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        keeper = threading.Thread(
            target=_keep_fresh, args=(engine, stop, refresh_seconds), name="archivist-refresh", daemon=True
        )
        keeper.start()
        yield
        stop.set()
        keeper.join(timeout=refresh_seconds + 30)

    app = FastAPI(
        title="archivist",
        summary="Search and recommendations over a media archive's catalog.",
        version="1",
        lifespan=lifespan,
        responses=ERRORS,
    )
    _add_error_handlers(app)
    app.add_middleware(LimitsMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    read_access = [Depends(access.read)]
    filter_docs = {"parameters": schemas.filter_parameters()}

    @app.get(
        "/search", response_model=schemas.SearchResponse, dependencies=read_access, openapi_extra=filter_docs
    )
    def search_text(
        filters: Annotated[Filters, Depends(filters_except("q", "top", "fold"))],
        q: Annotated[
            str, Query(description=f"words to search for (at most {MAX_QUERY_CHARS} characters)")
        ] = "",
        top: Top = 10,
        fold: Fold = True,
    ) -> Any:
        """Shots whose descriptions or pictures match the words (text and concept spaces, fused)."""
        return _result(engine.by_text(q, top=top, filters=filters, fold=fold))

    @app.post(
        "/search", response_model=schemas.SearchResponse, dependencies=read_access, openapi_extra=filter_docs
    )
    def search_by_example(
        filters: Annotated[Filters, Depends(filters_except("top", "fold"))],
        image: Annotated[UploadFile | None, File(description="a JPEG, PNG or WebP picture")] = None,
        shot_id: Annotated[str | None, Form(description="or a shot to find others like")] = None,
        top: Top = 10,
        fold: Fold = True,
    ) -> Any:
        """Shots that look like an uploaded picture, or like a shot of the archive."""
        if (image is None) == (shot_id is None):
            raise QueryError(
                "send exactly one of: an image file (field 'image') or a shot id (field 'shot_id')"
            )
        if shot_id is not None:
            return _result(engine.by_shot(shot_id, top=top, filters=filters, fold=fold))
        data = image.file.read()
        if not data:
            raise QueryImageError("the uploaded image is empty")
        return _result(engine.by_image(decode_query_image(data), top=top, filters=filters, fold=fold))

    @app.get(
        "/recommend",
        response_model=schemas.RecommendResponse,
        dependencies=read_access,
        openapi_extra=filter_docs,
    )
    def recommend(
        filters: Annotated[
            Filters, Depends(filters_except("shot_id", "user", "top", "diversity", "fairness"))
        ],
        shot_id: Annotated[str | None, Query(description="more like this shot")] = None,
        user: Annotated[
            str | None, Query(max_length=128, description="for this user, from their events")
        ] = None,
        top: Top = 10,
        diversity: Annotated[
            float, Query(ge=0, le=1, description="1: relevance only; lower: more varied")
        ] = (DIVERSITY),
        fairness: Annotated[
            float, Query(ge=0, le=1, description="0: off; 1: every slot a different work")
        ] = (FAIRNESS),
    ) -> Any:
        """More like a shot, or for a user; varied, spread over works, with coverage and Gini reported."""
        if (shot_id is None) == (user is None):
            raise QueryError("give exactly one of: shot_id (more like this) or user (for you)")
        options = {"top": top, "diversity": diversity, "fairness": fairness, "filters": filters}
        if shot_id is not None:
            return _result(more_like_this(engine, shot_id, **options))
        return _result(for_you(engine, user, **options))

    @app.get("/shots/{shot_id}", response_model=schemas.ShotDetail, dependencies=read_access)
    def shot(shot_id: str) -> Any:
        state = engine.state
        row = state.row(shot_id)
        detail = state.view.shot_detail(row)
        asset_id = detail["asset_id"]
        return {
            **detail,
            "thumbnail_url": f"/media/keyframes/{shot_id}" if state.view.keyframe_uris[row] else None,
            "video_url": f"/media/video/{asset_id}" if asset_id in state.view.access_copies else None,
        }

    @app.get("/assets/{asset_id}", response_model=schemas.AssetDetail, dependencies=read_access)
    def asset(asset_id: str) -> Any:
        state = engine.state
        view = state.view
        if asset_id not in view.asset_row:
            raise UnknownAssetError(f"asset {asset_id[:80]!r} is not in the catalog")
        columns = (
            "asset_id",
            "uri",
            "status",
            "duration_s",
            "width",
            "height",
            "fps",
            "video_codec",
            "processed_at",
        )
        rows = read(
            engine.catalog,
            "assets",
            columns=columns,
            row_filter=EqualTo("asset_id", asset_id),
            snapshot_id=view.snapshots["assets"][0],
        ).to_pylist()
        if not rows:
            raise UnknownAssetError(f"asset {asset_id} is not in the catalog")
        shots = sorted(
            (int(r) for r in (view.shot_asset == view.asset_row[asset_id]).nonzero()[0]),
            key=lambda r: view.start_s[r],
        )
        return {
            **rows[0],
            "video_url": f"/media/video/{asset_id}" if asset_id in view.access_copies else None,
            "shots": [
                {
                    "shot_id": view.shot_ids[r],
                    "start_s": view.start_s[r],
                    "end_s": view.end_s[r],
                    "thumbnail_url": f"/media/keyframes/{view.shot_ids[r]}"
                    if view.keyframe_uris[r]
                    else None,
                }
                for r in shots
            ],
        }

    @app.get(
        "/media/keyframes/{shot_id}",
        dependencies=read_access,
        response_class=Response,
        responses={
            200: {"content": {"image/jpeg": {}}},
            206: {"content": {"image/jpeg": {}}},
            416: {"model": schemas.ErrorBody},
        },
    )
    def keyframe(shot_id: str, request: Request) -> Response:
        """The shot's keyframe (JPEG); honours a byte range."""
        return keyframe_response(settings, engine, shot_id, request)

    @app.get(
        "/media/video/{asset_id}",
        dependencies=read_access,
        response_class=Response,
        responses={
            200: {"content": {"video/mp4": {}}},
            206: {"content": {"video/mp4": {}}},
            416: {"model": schemas.ErrorBody},
        },
    )
    def video(asset_id: str, request: Request) -> Response:
        """The asset's access copy (H.264 MP4), for players: honours a byte range."""
        view = engine.state.view
        if asset_id not in view.asset_row:
            raise UnknownAssetError(f"asset {asset_id[:80]!r} is not in the catalog")
        uri = view.access_copies.get(asset_id)
        if uri is None:
            raise MediaNotFoundError(f"asset {asset_id} has no access copy: the remaster stage makes one")
        return stream(settings, uri, request, "video/mp4")

    @app.post(
        "/events",
        response_model=schemas.EventsAccepted,
        status_code=201,
        dependencies=[Depends(access.write)],
    )
    def events(batch: schemas.EventsIn) -> Any:
        """Record what users viewed, liked and saved (for "for you"). Always needs the token."""
        view = engine.state.view
        unknown = [e.shot_id for e in batch.events if e.shot_id not in view.row_of]
        if unknown:
            raise UnknownShotError(
                f"shot {unknown[0]} is not in the catalog ({len(unknown)} unknown in all); "
                "nothing was recorded"
            )
        return {"accepted": record_events(engine.catalog, [e.model_dump() for e in batch.events])}

    app.include_router(dashboard_router(settings, engine, access))

    @app.get("/health", response_model=schemas.Health)
    def health() -> Any:
        """Open to all: whether the service has loaded its state, and which indexes."""
        state = engine.loaded
        if state is None:
            return {"status": "starting", "indexes": {}, "shots": 0}
        return {
            "status": "ok",
            "indexes": {
                space: {
                    "snapshot_id": s.version.snapshot_id,
                    "count": s.version.count,
                    "kind": s.version.kind,
                    "built_at": s.version.built_at,
                }
                for space, s in state.spaces.items()
            },
            "shots": state.view.size,
        }

    @app.get(
        "/metrics",
        dependencies=read_access,
        response_class=Response,
        responses={200: {"content": {metrics.content_type: {}}}},
    )
    def prometheus() -> Response:
        """Prometheus metrics: requests and latency per route, indexes loaded, catalog rows."""
        return Response(metrics.render(), media_type=metrics.content_type)

    return app


def filters_except(*own: str) -> Callable[[Request], Awaitable[Filters]]:
    """A dependency reading the filters from every query parameter but the route's `own` (async:
    it is too cheap to be worth a trip through the thread pool)."""

    async def filters(request: Request) -> Filters:
        return Filters.from_pairs((k, v) for k, v in request.query_params.multi_items() if k not in own)

    return filters


def _result(result: Any) -> dict[str, Any]:
    return {"hits": [hit.to_dict() for hit in result.hits], "meta": result.meta}


def _keep_fresh(engine: QueryEngine, stop: threading.Event, every: float) -> None:
    """Load at start, warm the text encoder, then pick up new indexes and snapshots until stopped."""
    try:
        engine.refresh()
        engine.warm()
    except Exception:
        log.exception("loading the catalog and indexes failed; queries will retry")
    while not stop.wait(every):
        try:
            engine.refresh()
        except Exception:
            log.exception("refreshing the catalog and indexes failed; still serving the state loaded before")


def _error(
    status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message, "detail": detail}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    def by_status(status: int) -> Callable[[Request, Exception], JSONResponse]:
        return lambda _, exc: _error(status, str(exc))

    for error, status in (
        (QueryError, 400),
        (ImageTooLargeError, 413),
        (QueryImageError, 415),
        (UnknownShotError, 404),
        (UnknownUserError, 404),
        (UnknownAssetError, 404),
        (MediaNotFoundError, 404),
        (IndexMissingError, 503),
    ):
        app.add_exception_handler(error, by_status(status))

    @app.exception_handler(AuthError)
    def auth_error(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"www-authenticate": "Bearer"} if exc.status_code == 401 else None
        return _error(exc.status_code, str(exc), headers=headers)

    @app.exception_handler(RangeNotSatisfiableError)
    def unsatisfiable(_: Request, exc: RangeNotSatisfiableError) -> JSONResponse:
        return _error(416, str(exc), {"size": exc.size}, headers={"content-range": f"bytes */{exc.size}"})

    @app.exception_handler(RequestValidationError)
    def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errors]
        return _error(422, f"invalid request: {describe_errors(errors)}", detail)

    @app.exception_handler(StarletteHTTPException)
    def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error: the service log has the details")
