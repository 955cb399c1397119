"""The dashboard's routes: pages rendered from templates, the media they show, static files, login.

Routes are grouped as the pages are (runs, explore, search, audits), then media, static files
and the login; each group is a function that adds its routes to the router. Every page is
rendered with the same context (the prefix, the static files' URLs) and content security policy.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from catalog.corrections import CorrectionError, Edit, correct
from catalog.corrections import UnknownShotError as UncorrectableShotError
from catalog.query import QueryError
from catalog.settings import Settings
from indexes.query import QueryEngine, Result, decode_query_image
from indexes.query_image import QueryImageError
from indexes.recommend import UnknownUserError, for_you, more_like_this
from indexes.search import UnknownShotError
from indexes.store import IndexMissingError
from serve.auth import Access, Credentials
from serve.dashboard import audits, explore, overview, runs
from serve.dashboard.auth import Gate
from serve.dashboard.data import DashboardData
from serve.dashboard.formats import FILTERS
from serve.dashboard.people import PeopleGate, add_people_routes
from serve.dashboard.static_files import StaticFiles
from serve.dashboard.urls import PREFIX, prefix, safe_next, under_root
from serve.errors import status_of
from serve.media import MediaNotFoundError, keyframe_response, ranged_file, stream

RESULTS = 24
RUNS_LISTED = 50
MAX_RUNS_LISTED = 1000
SEARCH_ERRORS = (QueryError, QueryImageError, UnknownShotError, UnknownUserError, IndexMissingError)
"""What a search can meet that the page says, with the API's status."""

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Plotly sets inline styles; nothing else inline, and nothing from anywhere else."""
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
"""The audit report is another module's HTML: shown, never run."""

TEMPLATES = Jinja2Templates(directory=Path(__file__).parents[1] / "templates")
TEMPLATES.env.filters.update(FILTERS)


class Pages:
    """Renders a template with what every page needs."""

    def __init__(self, files: StaticFiles) -> None:
        self.static = files.urls()

    def render(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        static = {name: under_root(url) for name, url in self.static.items()}
        context = {"prefix": prefix(), "static": static, **context}
        return TEMPLATES.TemplateResponse(
            request, name, context, status_code=status, headers={"content-security-policy": CSP}
        )

    def problem(self, request: Request, status: int, title: str, message: str) -> Response:
        return self.render(request, "problem.html", {"page": "", "title": title, "message": message}, status)


def dashboard_router(settings: Settings, engine: QueryEngine, access: Access) -> APIRouter:
    """The dashboard's pages and media, for `create_app` to include."""
    data = DashboardData(settings, engine)
    gate = Gate(access)
    files = StaticFiles()
    pages = Pages(files)
    router = APIRouter(include_in_schema=False)
    add_run_routes(router, data, gate, pages)
    add_explore_routes(router, data, gate, pages)
    add_search_routes(router, data, gate, pages)
    add_audit_routes(router, data, gate, pages)
    add_people_routes(router, data, gate, pages)
    add_media_routes(router, data, gate)
    add_static_routes(router, files)
    add_login_routes(router, gate, pages)
    return router


def add_run_routes(router: APIRouter, data: DashboardData, gate: Gate, pages: Pages) -> None:
    """The overview, the runs, one run, and a running job's progress (JSON, for the page's script)."""
    page = [Depends(gate.page)]

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse(prefix(), status_code=307)

    @router.get(PREFIX, dependencies=page)
    def overview_page(request: Request) -> Response:
        return pages.render(request, "overview.html", {"page": "overview", **overview.overview_page(data)})

    @router.get(f"{PREFIX}/runs", dependencies=page)
    def runs_page(request: Request, limit: int = RUNS_LISTED) -> Response:
        found = runs.runs_page(data, min(max(limit, 1), MAX_RUNS_LISTED))
        return pages.render(request, "runs.html", {"page": "runs", **found})

    @router.get(f"{PREFIX}/runs/{{run_id}}", dependencies=page)
    def run_page(request: Request, run_id: str) -> Response:
        found = runs.run_page(data, run_id)
        if found is None:
            message = f"no run {run_id[:80]!r}: see the runs page for run ids"
            return pages.problem(request, 404, "No such run", message)
        return pages.render(request, "run.html", {"page": "runs", "run": found})

    @router.get(f"{PREFIX}/runs/{{run_id}}/progress", dependencies=[Depends(gate.media)])
    def progress(run_id: str) -> Response:
        found = runs.progress(data, run_id)
        if found is None:
            raise HTTPException(404, f"no run {run_id[:80]!r}")
        return Response(json.dumps(found, default=str), media_type="application/json")


def add_explore_routes(router: APIRouter, data: DashboardData, gate: Gate, pages: Pages) -> None:
    """The explore grid and the shot page."""
    page = [Depends(gate.page)]

    @router.get(f"{PREFIX}/explore", dependencies=page)
    def explore_page(request: Request) -> Response:
        query = explore.ExploreQuery.parse(request.query_params.multi_items())
        try:
            found = explore.explore_page(data, query)
        except QueryError as exc:
            found = explore.explore_error_page(data, query, exc)
            return pages.render(request, "explore.html", {"page": "explore", **found}, 400)
        return pages.render(request, "explore.html", {"page": "explore", **found})

    @router.get(f"{PREFIX}/shots/{{shot_id}}", dependencies=page)
    def shot_page(request: Request, shot_id: str) -> Response:
        try:
            found = explore.shot_page(data, shot_id)
        except UnknownShotError as exc:
            return pages.problem(request, 404, "No such shot", str(exc))
        return pages.render(request, "shot.html", {"page": "explore", "shot": found})

    @router.post(f"{PREFIX}/shots/{{shot_id}}/corrections", dependencies=[*page, Depends(gate.form)])
    def correct_shot(
        request: Request,
        shot_id: str,
        curator: Annotated[str, Form()] = "",
        caption: Annotated[str, Form()] = "",
        add_tags: Annotated[str, Form()] = "",
        remove_tags: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
    ) -> Response:
        """A curator's fix from the shot page's form, then back to the page (303), which shows it;
        a caption left as the page showed it is no change."""
        state = data.engine.state
        shown = state.view.captions[state.view.row_of[shot_id]] if shot_id in state.view.row_of else None
        changed = caption if " ".join(caption.split()) != " ".join((shown or "").split()) else None
        edit = Edit(curator, changed, explore.labels(add_tags), explore.labels(remove_tags), note or None)
        try:
            correct(data.catalog, shot_id, edit)
        except UncorrectableShotError as exc:
            return pages.problem(request, 404, "No such shot", str(exc))
        except CorrectionError as exc:
            found = explore.shot_page(data, shot_id)
            typed = {"curator": curator, "caption": caption, "add_tags": add_tags, "remove_tags": remove_tags,
                     "note": note, "error": str(exc)}  # fmt: skip
            return pages.render(request, "shot.html", {"page": "explore", "shot": found, "form": typed}, 422)
        data.engine.refresh()
        return RedirectResponse(f"{prefix()}/shots/{shot_id}", status_code=303)


def add_search_routes(router: APIRouter, data: DashboardData, gate: Gate, pages: Pages) -> None:
    """Search by words, by a shot, for a user (GET) and by an uploaded picture (POST)."""
    engine = data.engine
    page = [Depends(gate.page)]

    def search_page(
        request: Request, answer: Callable[[], Result] | None, context: dict[str, Any]
    ) -> Response:
        users = data.users(engine.state)
        context = {"page": "search", "users": users, "q": "", "like": "", "user": "", **context}
        if answer is None:
            return pages.render(request, "search.html", context)
        try:
            result = answer()
        except SEARCH_ERRORS as exc:
            return pages.render(request, "search.html", {**context, "error": str(exc)}, status_of(exc))
        hits = [explore.hit_card(engine, h) for h in result.hits]
        return pages.render(request, "search.html", {**context, "hits": hits, "meta": result.meta})

    @router.get(f"{PREFIX}/search", dependencies=page)
    def search(
        request: Request, credentials: Credentials, q: str = "", like: str = "", user: str = ""
    ) -> Response:
        q, like, user = q.strip(), like.strip(), user.strip()
        if q:
            people = PeopleGate(gate).allowed(request, credentials)  # a person's name: a face search
            return search_page(
                request, lambda: engine.by_text(q, top=RESULTS, people=people), {"q": q, "mode": "text"}
            )
        if like:
            context = {"like": like, "mode": "like"}
            return search_page(request, lambda: more_like_this(engine, like, top=RESULTS), context)
        if user:
            context = {"user": user, "mode": "user"}
            return search_page(request, lambda: for_you(engine, user, top=RESULTS), context)
        return search_page(request, None, {})

    @router.post(f"{PREFIX}/search", dependencies=[*page, Depends(gate.form)])
    def search_image(request: Request, image: Annotated[UploadFile, File()]) -> Response:
        picture = image.file.read()

        def answer() -> Result:
            if not picture:
                raise QueryImageError("the uploaded image is empty: choose a JPEG, PNG or WebP picture")
            return engine.by_image(decode_query_image(picture), top=RESULTS)

        return search_page(request, answer, {"mode": "image", "image_name": image.filename or "picture"})


def add_audit_routes(router: APIRouter, data: DashboardData, gate: Gate, pages: Pages) -> None:
    """The audits page and a run's audit report (another module's HTML, sandboxed)."""

    @router.get(f"{PREFIX}/audits", dependencies=[Depends(gate.page)])
    def audits_page(request: Request, run: str = "") -> Response:
        return pages.render(
            request, "audits.html", {"page": "audits", **audits.audit_page(data, run or None)}
        )

    @router.get(f"{PREFIX}/audits/{{run_id}}/report", dependencies=[Depends(gate.media)])
    def report(run_id: str, request: Request) -> Response:
        response = stream(data.settings, audits.report_uri(data, run_id), request, "text/html")
        response.headers["content-security-policy"] = REPORT_CSP
        return response


def add_media_routes(router: APIRouter, data: DashboardData, gate: Gate) -> None:
    """Keyframes, access copies, sources and audit evidence, by id, from URIs the catalog gives."""
    settings, engine = data.settings, data.engine
    media = [Depends(gate.media)]

    @router.get(f"{PREFIX}/media/keyframes/{{shot_id}}", dependencies=media)
    def keyframe(
        shot_id: str, request: Request, keyframe: Annotated[int, Query(ge=0, le=64)] = 0
    ) -> Response:
        return keyframe_response(settings, engine, shot_id, request, keyframe)

    @router.get(f"{PREFIX}/media/video/{{asset_id}}", dependencies=media)
    def remaster(asset_id: str, request: Request) -> Response:
        uri = engine.state.view.access_copies.get(asset_id)
        if uri is None:
            raise MediaNotFoundError(
                f"asset {asset_id[:80]!r} has no access copy: the remaster stage makes one"
            )
        return stream(settings, uri, request, "video/mp4")

    @router.get(f"{PREFIX}/media/source/{{asset_id}}", dependencies=media)
    def source(asset_id: str, request: Request) -> Response:
        """An asset's source file, whole or the byte range asked for. Unlike the warehouse's media,
        a source lives wherever the archive keeps it; it is served only because the catalog names
        it as the asset's URI, which the client cannot choose."""
        uri = explore.source_uri(data, asset_id)
        media_type = mimetypes.guess_type(uri)[0] or "application/octet-stream"
        missing = "the asset's source file is gone from where the catalog says it was"
        return ranged_file(settings, uri, request, media_type, missing=missing)

    @router.get(f"{PREFIX}/media/vtt/{{asset_id}}/{{kind}}.vtt", dependencies=media)
    def track(asset_id: str, kind: str) -> Response:
        """A WebVTT sidecar for the players' `<track>`s (captions, transcript, chapters)."""
        return Response(explore.track(data, asset_id, kind), media_type="text/vtt; charset=utf-8")

    @router.get(f"{PREFIX}/media/evidence/{{key}}", dependencies=media)
    def evidence(key: str, request: Request) -> Response:
        return stream(settings, audits.evidence_uri(data, key), request, "image/jpeg")


def add_static_routes(router: APIRouter, files: StaticFiles) -> None:
    @router.get(f"{PREFIX}/static/{{name}}")
    def static(name: str, request: Request) -> Response:
        """Open to all (nothing in it is the archive's), and cached for good: URLs carry a version."""
        return files.response(name, request)


def add_login_routes(router: APIRouter, gate: Gate, pages: Pages) -> None:
    """The login form, and the login that gives the browser its session cookie."""

    @router.get(f"{PREFIX}/login")
    def login_form(request: Request, next: str | None = None) -> Response:
        if gate.open:
            return RedirectResponse(safe_next(next), status_code=303)
        return pages.render(request, "login.html", {"page": "", "next": safe_next(next)})

    @router.post(f"{PREFIX}/login", dependencies=[Depends(gate.form)])
    def login(
        request: Request, token: Annotated[str, Form()], next: Annotated[str | None, Form()] = None
    ) -> Response:
        if gate.open:
            return RedirectResponse(safe_next(next), status_code=303)
        client = request.client.host if request.client else "unknown"
        wait = gate.throttle.retry_after(client)
        if wait is not None:
            context = {
                "page": "",
                "next": safe_next(next),
                "error": f"too many attempts: try again in {wait} s",
            }
            page = pages.render(request, "login.html", context, 429)
            page.headers["retry-after"] = str(wait)
            return page
        if not gate.is_token(token):
            gate.throttle.failed(client)
            context = {"page": "", "next": safe_next(next), "error": "that is not this service's token"}
            return pages.render(request, "login.html", context, 403)
        gate.throttle.succeeded(client)
        response = RedirectResponse(safe_next(next), status_code=303)
        gate.open_session(request, response)
        return response
