"""The People page: each person the archive's faces were grouped into, and what a curator does to them.

- **The token, even on loopback.** A gallery of the faces across an archive is a face search, so
  this page, its crops and its forms ask for the service's token wherever the service listens, as
  the people API does (`serve.people`). The rest of the dashboard opens on loopback without a
  login, so this page has its own login (the same form, throttle and session cookie as the
  dashboard's: a browser logged in once is logged in to both). Without a token configured the
  page is off and says how to turn it on.
- **Crops, cut on the server.** A face is shown as its own picture cut from the keyframe around
  the detector's box (`face_crop`), so a list of a hundred people loads a hundred small JPEGs, not
  a hundred keyframes. An opted-out person's face is never shown: no crop is served for their
  appearances; the curator still sees their id, name, shots and history, and can take the
  opt-out back.
- **What is shown of a person** is what curators gave and where they appear: a name exists only
  where a person typed it, and the perceived attributes the faces stage keeps for aggregate audits
  (age, gender, skin tone) are never read here.
- **Voices** are a section of this page (`serve.dashboard.voices`), behind the same gate.
- **Every write is `catalog.people`'s** (name, merge, split, exclude): this module only turns the
  forms into its calls and its errors into the page's (422 with the form refilled, 404 for an
  unknown person), then reloads the engine so the next search already finds the name.
"""

from __future__ import annotations

import io
import json
import math
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

import fsspec
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from PIL import Image

from catalog.people import (
    EXCLUDE,
    INCLUDE,
    MERGE,
    NAME,
    SPLIT,
    PeopleError,
    Person,
    Roster,
    UnknownPersonError,
    exclude_person,
    merge_people,
    name_person,
    person_detail,
    roster,
    split_person,
)
from serve.auth import AuthError, Credentials
from serve.dashboard.auth import Gate
from serve.dashboard.data import DashboardData
from serve.dashboard.urls import PREFIX, keyframe_url, prefix, safe_next
from serve.dashboard.voices import add_voice_routes, voices_section
from serve.media import MediaNotFoundError, inside_warehouse

if TYPE_CHECKING:  # routes imports this module
    from serve.dashboard.routes import Pages

PAGE_SIZE = 60
REPRESENTATIVES = 6
CROP_PX = 128
"""The side of a face crop as served (the page shows them at 96 px, sharp on a 1.3x screen)."""
CROP_MARGIN = 0.3
"""How much of the box's size is added around it on each side: a face with its hair and chin."""
PEOPLE_TABLES = ("people", "face_tracks", "people_corrections")
SHOWN = ("all", "named", "unnamed", "excluded")
"""The list's filter: everyone, those a curator named, those still unnamed, those opted out."""
NO_TOKEN = (
    "The People page is off: it shows faces across the archive, which needs the service's token "
    "even on this machine. Start the service with ARCHIVIST_API_TOKEN set."
)


class PeopleGate:
    """Who may see the People page and its crops: a holder of the service's token (the session
    cookie the dashboard's login gives, or a bearer header), whatever address the service
    listens on."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    @property
    def enabled(self) -> bool:
        return bool(self.gate.access.token)

    def allowed(self, request: Request, credentials: Credentials) -> bool:
        return self.gate.holds_token(request, credentials)

    async def page(self, request: Request, credentials: Credentials) -> None:
        """Off (no token configured) or not logged in: to the login, which says which."""
        if not self.allowed(request, credentials):
            raise self.gate.to_login(request, login_url)

    async def media(self, request: Request, credentials: Credentials) -> None:
        if not self.allowed(request, credentials):
            raise AuthError(401, "a face needs the service's token: log in at /dashboard/people/login")


def login_url(target: str) -> str:
    return f"{prefix()}/people/login?{urlencode({'next': target})}"


def person_url(person_id: str) -> str:
    return f"{prefix()}/people/{person_id}"


def crop_url(track_id: str) -> str:
    return f"{prefix()}/media/faces/{track_id}"


# -- reads -----------------------------------------------------------------------------------------


def current_roster(data: DashboardData) -> Roster:
    """The people as every reader sees them, read again only when the engine's view saw one of
    their tables move (it looks every few seconds, and at once after a write here), so a page
    of sixty faces reads them once, not sixty times."""
    snapshots = data.engine.state.view.snapshots
    key = tuple(snapshots.get(name, (None, 0))[0] for name in PEOPLE_TABLES)
    return data.memo.get("people_roster", key, lambda: roster(data.catalog))


@dataclass(frozen=True)
class PeopleQuery:
    """The list's form as typed: words in a name or an id, which people, the page."""

    words: str = ""
    shown: str = "all"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> PeopleQuery:
        page = params.get("page", "1").strip()
        shown = params.get("show", "all").strip()
        return cls(
            words=" ".join(params.get("q", "").split())[:200],
            shown=shown if shown in SHOWN else "all",
            page=max(1, int(page)) if page.isdigit() else 1,
        )

    def params(self, **changes: Any) -> str:
        values = {**self.__dict__, **changes}
        pairs = [("q", values["words"])] if values["words"] else []
        pairs += [("show", values["shown"])] if values["shown"] != "all" else []
        pairs += [("page", str(values["page"]))] if values["page"] > 1 else []
        return urlencode(pairs)

    def keeps(self, person: Person) -> bool:
        wanted = self.words.casefold()
        if (
            wanted
            and wanted not in (person.name or "").casefold()
            and wanted not in person.person_id.casefold()
        ):
            return False
        return {
            "all": True,
            "named": person.name is not None,
            "unnamed": person.name is None,
            "excluded": person.excluded,
        }[self.shown]


def people_page(data: DashboardData, query: PeopleQuery) -> dict[str, Any]:
    """The people the query keeps, the most often seen first, one page of them as cards."""
    found = current_roster(data)
    everyone = [found.person(p) for p in found.people()]
    kept = sorted((p for p in everyone if query.keeps(p)), key=lambda p: (-p.appearances, p.person_id))
    pages = max(1, math.ceil(len(kept) / PAGE_SIZE))
    page = min(query.page, pages)
    shown = kept[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return {
        "query": query,
        "total": len(kept),
        "everyone": len(everyone),
        "named": sum(p.name is not None for p in everyone),
        "excluded": sum(p.excluded for p in everyone),
        "page": page,
        "pages": pages,
        "people": [person_card(found, p) for p in shown],
    }


def person_card(found: Roster, person: Person) -> dict[str, Any]:
    """A person in the list: their surest face (none for the opted-out), name, counts."""
    tracks = [found.tracks[t] for t in found.members.get(person.person_id, []) if found.tracks[t]["box"]]
    best = max(tracks, key=lambda r: r["score"] or 0.0, default=None)
    return {
        **person.as_dict(),
        "url": person_url(person.person_id),
        "crop_url": crop_url(str(best["track_id"])) if best is not None and not person.excluded else None,
    }


def person_page(data: DashboardData, person_id: str) -> dict[str, Any]:
    """One person in detail: a few faces, their appearances on each asset's timeline and as a
    table, the assets, the curators' history (UnknownPersonError for an id never given)."""
    detail = person_detail(data.catalog, person_id, representatives=REPRESENTATIVES)
    person = detail.person
    state = data.engine.state
    shown = not person.excluded
    appearances = [
        {
            **a.as_dict(),
            "crop_url": crop_url(a.track_id) if shown and a.box else None,
            "shot_url": f"{prefix()}/shots/{a.shot_id}",
            "caption": _caption(data, a.shot_id),
        }
        for a in detail.appearances
    ]
    by_asset: dict[str, list[dict[str, Any]]] = {}
    for a in appearances:
        by_asset.setdefault(a["asset_id"], []).append(a)
    assets = [
        _asset_timeline(data.asset(state, asset_id), asset_id, seen) for asset_id, seen in by_asset.items()
    ]
    assets.sort(key=lambda a: (a["catalogued"] is None, a["catalogued"] or 0, a["name"]))
    names = {a["asset_id"]: a["name"] for a in assets}
    for a in appearances:
        a["asset_name"] = names[a["asset_id"]]
    return {
        "person": person,
        "faces": [
            {
                "crop_url": crop_url(a.track_id),
                "shot_url": f"{prefix()}/shots/{a.shot_id}",
                "shot_id": a.shot_id,
                "keyframe_url": keyframe_url(a.shot_id, a.keyframe_index),
            }
            for a in detail.representatives
        ]
        if shown
        else [],
        "appearances": appearances,
        "assets": assets,
        "history": [history_line(row, person.person_id) for row in reversed(detail.history)],
    }


def _caption(data: DashboardData, shot_id: str) -> str | None:
    view = data.engine.state.view
    row = view.row_of.get(shot_id)
    return view.captions[row] if row is not None else None


def _asset_timeline(
    asset: Mapping[str, Any] | None, asset_id: str, seen: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """An asset the person appears in, with each appearance placed on its running time (in per
    cent, for the page's bars)."""
    duration = float(asset["duration_s"] or 0.0) if asset else 0.0
    span = duration or max((a["end_s"] or 0.0) for a in seen) or 1.0
    marks = []
    for a in seen:
        start, end = float(a["start_s"] or 0.0), float(a["end_s"] or a["start_s"] or 0.0)
        left = min(100.0, 100 * start / span)
        marks.append(
            {
                **a,
                "left": round(left, 2),
                "width": round(max(0.6, min(100 - left, 100 * (end - start) / span)), 2),
            }
        )
    return {
        "asset_id": asset_id,
        "name": posixpath.basename(asset["uri"]) if asset else asset_id[:12],
        "duration_s": duration or None,
        "catalogued": asset["processed_at"] if asset else None,
        "appearances": marks,
        "seconds": sum(float((a["end_s"] or 0.0) - (a["start_s"] or 0.0)) for a in seen),
    }


def history_line(row: Mapping[str, Any], person_id: str) -> dict[str, Any]:
    """A curator's row as the history table says it, from this person's side."""
    action, value, cluster = row["action"], row["value"], row["cluster_id"]
    if action == NAME:
        what = f"named {value!r}" + (f" (was {row['before']!r})" if row["before"] else "")
    elif action == MERGE:
        what = (
            f"{cluster} merged into {value}"
            if value == person_id or cluster != person_id
            else f"merged into {value}"
        )
    elif action == SPLIT:
        split = json.loads(value)
        what = f"{len(split['tracks'])} appearance(s) of {cluster} split off as {split['person_id']}"
    elif action == EXCLUDE:
        what = f"{cluster} opted out of search and exports"
    elif action == INCLUDE:
        what = f"{cluster}'s opt-out taken back"
    else:
        what = str(action)
    return {"at": row["at"], "curator": row["curator"], "what": what, "note": row["note"]}


# -- crops -------------------------------------------------------------------------------------------


def face_crop(data: DashboardData, track_id: str) -> bytes:
    """A JPEG of one appearance's face, cut from its keyframe around the detector's box with a
    margin, squared and scaled to `CROP_PX` either way (MediaNotFoundError for an unknown track, an
    opted-out person's, or a keyframe the catalog no longer has)."""
    found = current_roster(data)
    track = found.tracks.get(track_id)
    if track is None:
        raise MediaNotFoundError(f"no face appearance {track_id[:64]!r}")
    if found.is_excluded(found.person_of[track_id]):
        raise MediaNotFoundError("this person is opted out: their face is not shown")
    if not track["box"]:
        raise MediaNotFoundError("this appearance was seen between keyframes: it has no picture")
    state = data.engine.state
    row = state.view.row_of.get(str(track["shot_id"]))
    uri = state.view.keyframe_uri(row, int(track["keyframe_index"] or 0)) if row is not None else None
    if not uri or not inside_warehouse(data.settings, uri):
        raise MediaNotFoundError(f"the keyframe of face appearance {track_id[:64]!r} is not in the warehouse")
    fs, path = fsspec.core.url_to_fs(uri, **data.settings.storage_options())
    try:
        picture = Image.open(io.BytesIO(fs.cat_file(path))).convert("RGB")
    except FileNotFoundError:
        raise MediaNotFoundError("the catalog names a keyframe that is missing from the warehouse") from None
    face = picture.crop(square_around(track["box"], picture.size))
    face = face.resize((CROP_PX, CROP_PX), Image.Resampling.LANCZOS)  # small keyframes' faces too
    out = io.BytesIO()
    face.save(out, "JPEG", quality=85)
    return out.getvalue()


def square_around(box: Sequence[float] | None, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The square (left, top, right, bottom) centred on a face box with `CROP_MARGIN` around it,
    kept inside a picture of `size` (the whole picture for a box there is none of)."""
    width, height = size
    if not box or len(box) != 4:
        return 0, 0, width, height
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * CROP_MARGIN)
    side = max(8.0, min(side, float(width), float(height)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(0.0, cx - side / 2), width - side)
    top = min(max(0.0, cy - side / 2), height - side)
    return round(left), round(top), round(left + side), round(top + side)


# -- routes ------------------------------------------------------------------------------------------


Typed = Annotated[str, Form()]


def add_people_routes(router: APIRouter, data: DashboardData, gate: Gate, pages: Pages) -> None:
    """The People page (its Voices section's forms too), a person's page, their forms, the faces'
    crops and the page's login."""
    guard = PeopleGate(gate)
    page = [Depends(guard.page)]
    form = [*page, Depends(gate.form)]
    add_login_routes(router, guard, pages)

    def listing(request: Request, voice_form: Mapping[str, Any], status: int = 200) -> Response:
        """The list of people, then the voices (`voice_form`: a voice's form as typed, with its error)."""
        query = PeopleQuery.parse(request.query_params)
        context = {"page": "people", **people_page(data, query), **voices_section(data, voice_form)}
        return pages.render(request, "people.html", context, status)

    @router.get(f"{PREFIX}/people", dependencies=page)
    def people_list(request: Request) -> Response:
        return listing(request, {})

    add_voice_routes(router, data, form, listing)

    def one(request: Request, person_id: str, typed: Mapping[str, Any], status: int = 200) -> Response:
        try:
            found = person_page(data, person_id)
        except UnknownPersonError as exc:
            return pages.problem(request, 404, "No such person", str(exc))
        if found["person"].person_id != person_id:  # merged into another: that one's page
            return RedirectResponse(person_url(found["person"].person_id), status_code=303)
        context = {"page": "people", **found, "form": typed}
        return pages.render(request, "person.html", context, status)

    def act(request: Request, person_id: str, typed: dict[str, Any], work: Callable[[], Any]) -> Response:
        """A curator's action, then the page it leads to (303: the person kept by a merge, the new
        person of a split); or the page again with the form refilled and the error said (422)."""
        try:
            row = work()
        except UnknownPersonError as exc:
            return pages.problem(request, 404, "No such person", str(exc))
        except PeopleError as exc:
            return one(request, person_id, {**typed, "error": str(exc)}, 422)
        data.engine.refresh()
        target = row.get("new_person_id") or (row["value"] if row["action"] == MERGE else row["cluster_id"])
        return RedirectResponse(person_url(target), status_code=303)

    @router.get(f"{PREFIX}/people/{{person_id}}", dependencies=page)
    def person(request: Request, person_id: str) -> Response:
        return one(request, person_id, {})

    @router.post(f"{PREFIX}/people/{{person_id}}/name", dependencies=form)
    def name(
        request: Request, person_id: str, curator: Typed = "", name: Typed = "", note: Typed = ""
    ) -> Response:
        typed = {"action": NAME, "curator": curator, "name": name, "note": note}
        return act(
            request,
            person_id,
            typed,
            lambda: name_person(data.catalog, person_id, name, curator=curator, note=note or None),
        )

    @router.post(f"{PREFIX}/people/{{person_id}}/merge", dependencies=form)
    def merge(
        request: Request, person_id: str, curator: Typed = "", other: Typed = "", note: Typed = ""
    ) -> Response:
        typed = {"action": MERGE, "curator": curator, "other": other, "note": note}
        return act(
            request,
            person_id,
            typed,
            lambda: merge_people(data.catalog, person_id, other.strip(), curator=curator, note=note or None),
        )

    @router.post(f"{PREFIX}/people/{{person_id}}/split", dependencies=form)
    def split(
        request: Request,
        person_id: str,
        track: Annotated[list[str] | None, Form()] = None,
        curator: Typed = "",
        note: Typed = "",
    ) -> Response:
        tracks = track or []
        typed = {"action": SPLIT, "curator": curator, "note": note, "tracks": tracks}
        return act(
            request,
            person_id,
            typed,
            lambda: split_person(data.catalog, person_id, tracks, curator=curator, note=note or None),
        )

    @router.post(f"{PREFIX}/people/{{person_id}}/exclude", dependencies=form)
    def exclude(
        request: Request, person_id: str, curator: Typed = "", excluded: Typed = "yes", note: Typed = ""
    ) -> Response:
        typed = {"action": EXCLUDE, "curator": curator, "note": note}
        return act(
            request,
            person_id,
            typed,
            lambda: exclude_person(
                data.catalog, person_id, curator=curator, excluded=excluded != "no", note=note or None
            ),
        )

    @router.get(f"{PREFIX}/media/faces/{{track_id}}", dependencies=[Depends(guard.media)])
    def face(track_id: str) -> Response:
        crop = face_crop(data, track_id)
        return Response(crop, media_type="image/jpeg", headers={"cache-control": "private, max-age=60"})


def add_login_routes(router: APIRouter, guard: PeopleGate, pages: Pages) -> None:
    """The People page's login: the dashboard's form, throttle and session cookie, offered on
    loopback too (where the dashboard's own login is not, as nothing else there asks for it)."""
    gate = guard.gate

    def form(request: Request, next: str | None, error: str | None = None, status: int = 200) -> Response:
        if not guard.enabled:
            return pages.problem(request, 403, "The People page is off", NO_TOKEN)
        context = {"page": "people", "next": safe_next(next), "error": error}
        return pages.render(request, "people_login.html", context, status)

    @router.get(f"{PREFIX}/people/login")
    def people_login_form(request: Request, next: str | None = None) -> Response:
        return form(request, next)

    @router.post(f"{PREFIX}/people/login", dependencies=[Depends(gate.form)])
    def people_login(request: Request, token: Typed, next: Annotated[str | None, Form()] = None) -> Response:
        if not guard.enabled:
            return form(request, next)
        client = request.client.host if request.client else "unknown"
        wait = gate.throttle.retry_after(client)
        if wait is not None:
            answer = form(request, next, f"too many attempts: try again in {wait} s", 429)
            answer.headers["retry-after"] = str(wait)
            return answer
        if not gate.is_token(token):
            gate.throttle.failed(client)
            return form(request, next, "that is not this service's token", 403)
        gate.throttle.succeeded(client)
        answer = RedirectResponse(safe_next(next), status_code=303)
        gate.open_session(request, answer)
        return answer
