"""The HTTP API: search, recommendations, shots and assets, media, events, health and metrics.

Routes are plain functions (FastAPI runs them in its thread pool): the work is
FAISS and model inference, which release the GIL, not waiting on sockets. The
engine is shared by all requests; a background thread refreshes it every
`REFRESH_SECONDS`, so a rebuilt index or a new run is served without a restart
and a request never waits for a reload. Every error is
`{"error": "...", "detail": ...}` with a 4xx (5xx only for a missing index,
which the operator must build, and for bugs); nothing of a traceback is sent
(`serve.errors`).

`create_app` puts the service together: the engine and access rule, the
refresher, the middleware, then each group of routes, each added by its own
function in the order the API documents them.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.params import Depends as Dependency
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pyiceberg.expressions import EqualTo

from catalog.corrections import CorrectionError, Edit, correct
from catalog.corrections import UnknownShotError as UncorrectableShotError
from catalog.iceberg import read
from catalog.query import QueryError
from catalog.settings import Settings
from exports.http import exports_router
from indexes.filters import Filters
from indexes.query import MAX_QUERY_CHARS, MAX_TOP, QueryEngine, decode_query_image, keyframe_url
from indexes.query_image import QueryImageError
from indexes.recommend import DIVERSITY, FAIRNESS, for_you, more_like_this, record_events
from indexes.search import UnknownShotError
from serve import schemas
from serve.auth import Access, check_binding
from serve.dashboard import dashboard_router
from serve.dashboard.urls import RootPath
from serve.errors import UnknownAssetError, add_error_handlers, error_response
from serve.limits import LimitsMiddleware
from serve.media import CrossOriginMiddleware, MediaNotFoundError, keyframe_response, ranged_file, stream
from serve.metrics import Metrics, MetricsMiddleware
from serve.people import holds_token, people_router
from serve.voices import voices_router

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorBody} for status in (400, 401, 403, 404, 413, 414, 415, 422, 503)
}
ASSET_COLUMNS = (
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
"""What `GET /assets/{asset_id}` tells of an asset, beside its shots."""

Route = TypeVar("Route", bound=Callable[..., Any])
Top = Annotated[int, Query(ge=1, le=MAX_TOP, description="how many hits")]
Fold = Annotated[bool, Query(description="fold near-duplicates under the best of them")]


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
    warm = threading.Event()
    app = FastAPI(
        title="archivist",
        summary="Search and recommendations over a media archive's catalog.",
        version="1",
        lifespan=kept_fresh(engine, refresh_seconds, warm),
        responses=ERRORS,
    )
    add_error_handlers(app)
    add_middleware(app, metrics)
    # Open reads declare no credentials, so the OpenAPI document says what this deployment wants.
    reads = [] if access.open_reads else [Depends(access.read)]
    add_search_routes(app, engine, reads, access)
    add_catalog_routes(app, engine, reads)
    add_media_routes(app, settings, engine, reads)
    add_event_routes(app, engine, [Depends(access.write)])
    add_correction_routes(app, engine, [Depends(access.write)])
    app.include_router(dashboard_router(settings, engine, access))
    app.include_router(exports_router(settings, reads))
    app.include_router(people_router(engine, access))
    app.include_router(voices_router(engine, access))
    add_service_routes(app, engine, metrics, reads, warm)
    return app


SERVED_HOST = "ARCHIVIST_SERVED_HOST"
"""The address `archivist serve` listens on, for the app each of its worker processes makes."""


def served_app() -> FastAPI:
    """The app of one worker process of `archivist serve` (uvicorn's factory): each worker loads
    its own engine; the indexes' vectors are memory-mapped, so the workers share their pages."""
    return create_app(Settings(), host=os.environ.get(SERVED_HOST, "127.0.0.1"))


def kept_fresh(
    engine: QueryEngine, every: float, warm: threading.Event
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the catalog, the indexes and the text encoder loaded before the app
    takes its first connection, then a thread that keeps the engine fresh while it serves.

    Loading before serving, not beside it, is what makes several workers on one port safe: a
    worker still loading accepts no connection, so the others take them, and no search waits
    seconds for a model. A start that fails is logged and served anyway (`/health` says
    `starting`), and the thread tries again every `every` seconds."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await asyncio.to_thread(_load, engine, warm)
        except Exception:
            log.exception("loading the catalog, indexes or text encoder failed; trying again")
        stop = threading.Event()
        keeper = threading.Thread(
            target=_keep_fresh, args=(engine, stop, every, warm), name="archivist-refresh", daemon=True
        )
        keeper.start()
        yield
        stop.set()
        keeper.join(timeout=every + 30)

    return lifespan


def add_middleware(app: FastAPI, metrics: Metrics) -> None:
    """Size limits at the door, inside the metrics (which count what the limits refuse too); CORS
    outermost, so that what other sites' viewers read carries it whatever answered."""
    app.add_middleware(LimitsMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(CrossOriginMiddleware)
    app.add_middleware(RootPath)


def add_search_routes(
    app: FastAPI, engine: QueryEngine, reads: list[Dependency], access: Access | None = None
) -> None:
    """Search by words, by a picture or a shot, and recommendations: all take the filters. Words that
    are a person's or a voice's name find their shots only for a caller with the token (a face or
    voice search)."""
    filter_docs = {"parameters": schemas.filter_parameters()}

    @app.get("/search", response_model=schemas.SearchResponse, dependencies=reads, openapi_extra=filter_docs)
    def search_text(
        filters: Annotated[Filters, Depends(filters_except("q", "top", "fold"))],
        q: Annotated[
            str,
            Query(
                description=f"words to search for (at most {MAX_QUERY_CHARS} characters)",
                min_length=1,
                max_length=MAX_QUERY_CHARS,
                pattern=schemas.NOT_BLANK,
            ),
        ],
        top: Top = 10,
        fold: Fold = True,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Any:
        """Shots whose descriptions or pictures match the words (text and concept spaces, fused); with
        the token, a person's or a voice's name (as a curator gave it) finds their shots first. The
        token is read from the header without declaring a security scheme: the route is open without
        one."""
        credentials = _bearer(authorization)
        people = access is not None and holds_token(access, credentials)
        return _result(engine.by_text(q, top=top, filters=filters, fold=fold, people=people))

    @app.post(
        "/search",
        response_model=schemas.SearchResponse,
        dependencies=reads,
        openapi_extra={**filter_docs, "requestBody": schemas.EXAMPLE_BODY},
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
        assert image is not None  # exactly one of the two, checked above
        data = image.file.read()
        if not data:
            raise QueryImageError("the uploaded image is empty")
        return _result(engine.by_image(decode_query_image(data), top=top, filters=filters, fold=fold))

    @app.get(
        "/recommend", response_model=schemas.RecommendResponse, dependencies=reads, openapi_extra=filter_docs
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
        if shot_id is not None:
            return _result(
                more_like_this(
                    engine, shot_id, top=top, diversity=diversity, fairness=fairness, filters=filters
                )
            )
        assert user is not None  # exactly one of the two, checked above
        return _result(
            for_you(engine, user, top=top, diversity=diversity, fairness=fairness, filters=filters)
        )


def add_catalog_routes(app: FastAPI, engine: QueryEngine, reads: list[Dependency]) -> None:
    """A shot, and an asset with its shots, as the catalog has them."""

    @app.get("/shots/{shot_id}", response_model=schemas.ShotDetail, dependencies=reads)
    def shot(shot_id: str) -> Any:
        state = engine.state
        row = state.row(shot_id)
        detail = state.view.shot_detail(row)
        asset_id = detail["asset_id"]
        return {
            **detail,
            "thumbnail_url": _keyframe_url(state.view, row),
            "video_url": _video_url(state.view, asset_id),
        }

    @app.get("/assets/{asset_id}", response_model=schemas.AssetDetail, dependencies=reads)
    def asset(asset_id: str) -> Any:
        view = engine.state.view
        if asset_id not in view.asset_row:
            raise UnknownAssetError(f"asset {asset_id[:80]!r} is not in the catalog")
        rows = read(
            engine.catalog,
            "assets",
            columns=ASSET_COLUMNS,
            row_filter=EqualTo(term="asset_id", value=asset_id),
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
            "video_url": _video_url(view, asset_id),
            "shots": [
                {
                    "shot_id": view.shot_ids[r],
                    "start_s": view.start_s[r],
                    "end_s": view.end_s[r],
                    "thumbnail_url": _keyframe_url(view, r),
                }
                for r in shots
            ],
        }


def add_media_routes(app: FastAPI, settings: Settings, engine: QueryEngine, reads: list[Dependency]) -> None:
    """Keyframes and access copies, by id, honouring byte ranges."""

    def media(path: str, media_type: str) -> Callable[[Route], Route]:
        responses = _media_responses(media_type)
        return app.get(path, dependencies=reads, response_class=Response, responses=responses)

    @media("/media/keyframes/{shot_id}", "image/jpeg")
    def keyframe(
        shot_id: str,
        request: Request,
        keyframe: Annotated[int, Query(ge=0, le=64, description="a long take's further keyframe")] = 0,
    ) -> Response:
        """The shot's keyframe (JPEG), or a long take's further one; honours a byte range."""
        return keyframe_response(settings, engine, shot_id, request, keyframe)

    @media("/media/video/{asset_id}", "video/mp4")
    def video(asset_id: str, request: Request) -> Response:
        """The asset's access copy (H.264 or AV1 in MP4), for players: honours a byte range."""
        view = engine.state.view
        if asset_id not in view.asset_row:
            raise UnknownAssetError(f"asset {asset_id[:80]!r} is not in the catalog")
        uri = view.access_copies.get(asset_id)
        if uri is None:
            raise MediaNotFoundError(f"asset {asset_id} has no access copy: the remaster stage makes one")
        return stream(settings, uri, request, "video/mp4")

    @media("/media/source/{asset_id}", "video/*")
    def source(asset_id: str, request: Request) -> Response:
        """The asset's source file, which a IIIF manifest paints where no access copy was made:
        honours a byte range. Unlike the warehouse's media, a source lives wherever the archive
        keeps it; it is served only because the catalog names it as the asset's URI."""
        view = engine.state.view
        row = view.asset_row.get(asset_id)
        if row is None:
            raise UnknownAssetError(f"asset {asset_id[:80]!r} is not in the catalog")
        uri = view.asset_uris[row]
        media_type = mimetypes.guess_type(uri)[0] or "application/octet-stream"
        missing = "the asset's source file is gone from where the catalog says it was"
        return ranged_file(settings, uri, request, media_type, missing=missing)


def add_event_routes(app: FastAPI, engine: QueryEngine, writes: list[Dependency]) -> None:
    @app.post("/events", response_model=schemas.EventsAccepted, status_code=201, dependencies=writes)
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


def add_correction_routes(app: FastAPI, engine: QueryEngine, writes: list[Dependency]) -> None:
    """A curator's fixes of a shot's caption and tags (`catalog.corrections`): kept apart from the
    machine's rows, so no later run undoes them."""
    app.add_exception_handler(CorrectionError, lambda _, exc: error_response(422, str(exc)))

    @app.post(
        "/shots/{shot_id}/corrections",
        response_model=schemas.CorrectionsStored,
        status_code=201,
        dependencies=writes,
    )
    def corrections(shot_id: str, body: schemas.CorrectionIn) -> Any:
        """Correct a shot's caption or tags, as the curator named in the body. Always needs the
        token. Answers with the corrections kept, each with the value it replaced."""
        return {"corrections": correct_shot(engine, shot_id, edit_of(body))}


def edit_of(body: schemas.CorrectionIn) -> Edit:
    return Edit(body.curator, body.caption, tuple(body.add_tags), tuple(body.remove_tags), body.note)


def correct_shot(engine: QueryEngine, shot_id: str, edit: Edit) -> list[dict[str, Any]]:
    """Keep the corrections, then reload the view at once, so that the answer to this request's
    next read (the shot page a form returns to, a search) shows them."""
    try:
        rows = correct(engine.catalog, shot_id, edit)
    except UncorrectableShotError as exc:
        raise UnknownShotError(str(exc)) from None
    engine.refresh()
    return rows


def add_service_routes(
    app: FastAPI, engine: QueryEngine, metrics: Metrics, reads: list[Dependency], warm: threading.Event
) -> None:
    """Health (open to all) and Prometheus metrics."""

    @app.get("/health", response_model=schemas.Health)
    def health() -> Any:
        """Open to all: whether the service is ready (its state and text encoder loaded: the first
        search does not wait), and which indexes it serves."""
        state = engine.loaded
        if state is None or not warm.is_set():
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
        dependencies=reads,
        response_class=Response,
        responses={200: {"content": {metrics.content_type: {}}}},
    )
    def prometheus() -> Response:
        """Prometheus metrics: requests and latency per route, indexes loaded, catalog rows."""
        return Response(metrics.render(), media_type=metrics.content_type)


def filters_except(*own: str) -> Callable[[Request], Awaitable[Filters]]:
    """A dependency reading the filters from every query parameter but the route's `own` (async:
    it is too cheap to be worth a trip through the thread pool)."""

    async def filters(request: Request) -> Filters:
        return Filters.from_pairs((k, v) for k, v in request.query_params.multi_items() if k not in own)

    return filters


def _media_responses(media_type: str) -> dict[int | str, dict[str, Any]]:
    """How a media route answers: the whole file (200), a byte range (206), or a range past the end."""
    return {
        200: {"content": {media_type: {}}},
        206: {"content": {media_type: {}}},
        416: {"model": schemas.ErrorBody},
    }


def _keyframe_url(view: Any, row: int) -> str | None:
    return keyframe_url(view.shot_ids[row]) if view.keyframe_uris[row] else None


def _video_url(view: Any, asset_id: str) -> str | None:
    return f"/media/video/{asset_id}" if asset_id in view.access_copies else None


def _result(result: Any) -> dict[str, Any]:
    return {"hits": [hit.to_dict() for hit in result.hits], "meta": result.meta}


def _load(engine: QueryEngine, warm: threading.Event) -> None:
    """What changed in the catalog and indexes; the text encoder too, until it is warm."""
    engine.refresh()
    if not warm.is_set():
        engine.warm()
        warm.set()


def _keep_fresh(engine: QueryEngine, stop: threading.Event, every: float, warm: threading.Event) -> None:
    """Pick up new indexes and snapshots until stopped (and finish a start that failed)."""
    while not stop.wait(every):
        try:
            _load(engine, warm)
        except Exception:
            if warm.is_set():
                log.exception("refreshing the catalog and indexes failed; serving the state loaded before")
            else:
                log.exception("loading the catalog, indexes or text encoder failed; trying again")


def _bearer(authorization: str | None) -> HTTPAuthorizationCredentials | None:
    """The credentials of an `Authorization: Bearer …` header, or None for any other header."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
