"""The people API: who appears where, and curators naming, merging, splitting and opting people out.

Every route here needs the service's token, reads included and even on loopback: a list of faces
across an archive is a face search, which no page on the same laptop may run unasked (issue 15's
privacy rule). A service started without a token answers 403 to all of them. Bad input is a 4xx
that says what to change and writes nothing (a body the schema refuses → 422,
`UnknownPersonError` → 404, `PeopleConflict` → 409). A write reloads the query engine before it
answers, so the next search already finds the name.

    GET  /people                     every person (?name= exact name; ?include_excluded=false)
    GET  /people/{person_id}         one person: appearances, representative crops, history
    GET  /people/{person_id}/shots   the shots a person appears in (none for an opted-out person)
    POST /people/{person_id}/name    {"curator", "name", "note"?}
    POST /people/{person_id}/merge   {"curator", "other", "note"?}: `other` becomes part of person_id
    POST /people/{person_id}/split   {"curator", "track_ids", "note"?}: those appearances, a new person
    POST /people/{person_id}/exclude {"curator", "excluded"?: true, "note"?}
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from catalog.people import (
    MAX_CURATOR_CHARS,
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_SPLIT_TRACKS,
    PeopleConflict,
    PeopleError,
    UnknownPersonError,
    exclude_person,
    find_people,
    list_people,
    merge_people,
    name_person,
    person_detail,
    roster,
    split_person,
)
from indexes.query import QueryEngine, keyframe_url
from serve.auth import Access, AuthError, Credentials

Result = TypeVar("Result")

SOME_TEXT = r"[^\s\x1c-\x1f\x85]"
"""A field that must hold more than white space (JSON Schema patterns match anywhere in the text).
White space as the catalog strips it (Python's `str.strip`), which also counts the separators
U+001C-U+001F and U+0085 that JSON Schema's (ECMAScript's) white-space class does not.
The schema states each limit the catalog enforces, so a request the schema allows is one the
catalog keeps: a client learns the rules from the document, not from a refusal."""


class CuratorBody(BaseModel):
    # A field the API does not know is refused, and the schema says so (clients see it before sending).
    model_config = ConfigDict(extra="forbid")

    curator: str = Field(
        min_length=1,
        max_length=MAX_CURATOR_CHARS,
        pattern=SOME_TEXT,
        description="who is acting, as they name themselves",
    )
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS)


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=SOME_TEXT)]
"""A name as the catalog keeps it (a person's or a voice's)."""
ClusterId = Annotated[str, Field(min_length=1, max_length=64, pattern=SOME_TEXT)]
"""A person's or a voice's id, as a body names one."""


class NameIn(CuratorBody):
    name: Name = Field(description="the person's name")


class MergeIn(CuratorBody):
    other: ClusterId = Field(description="the person who becomes part of this one")


class SplitIn(CuratorBody):
    track_ids: list[Annotated[str, Field(min_length=1, max_length=64, pattern=SOME_TEXT)]] = Field(
        min_length=1, max_length=MAX_SPLIT_TRACKS, description="the appearances that leave"
    )


class ExcludeIn(CuratorBody):
    excluded: bool = Field(True, description="true: opt the person out; false: take the opt-out back")


def token_guard(access: Access, api: str = "the people API") -> Callable[..., Any]:
    """A dependency that asks for the service's token whatever the address the service listens on
    (`api` names what is off in a service started without one)."""

    async def guard(credentials: Credentials) -> None:
        if not access.token:
            raise AuthError(403, f"{api} is disabled on this service: start it with ARCHIVIST_API_TOKEN set")
        if credentials is None:
            raise AuthError(401, "this needs the service's token: send Authorization: Bearer <token>")
        if not hmac.compare_digest(credentials.credentials.encode(), access.token.encode()):
            raise AuthError(403, "the token is not this service's token")

    return guard


def holds_token(access: Access, credentials: Any) -> bool:
    """Whether a request carries the service's token (for routes open without it that show more with
    it: the search finds people by name only for a token holder)."""
    return bool(
        access.token
        and credentials is not None
        and hmac.compare_digest(credentials.credentials.encode(), access.token.encode())
    )


def people_router(engine: QueryEngine, access: Access) -> APIRouter:
    """The people routes over the engine's catalog, each behind the token."""
    router = APIRouter(prefix="/people", tags=["people"], dependencies=[Depends(token_guard(access))])
    catalog = engine.catalog

    @router.get("")
    def people(
        name: Annotated[str | None, Query(max_length=MAX_NAME_CHARS, description="exactly this name")] = None,
        include_excluded: Annotated[bool, Query(description="list opted-out people too (marked)")] = True,
    ) -> Any:
        """Every person with an appearance, by id; with `name`, those a curator gave that name."""
        found = (
            find_people(catalog, name)
            if name is not None
            else list_people(catalog, include_excluded=include_excluded)
        )
        return {"people": [p.as_dict() for p in found]}

    @router.get("/{person_id}")
    def person(person_id: str) -> Any:
        """One person: their appearances (each a shot and a box on a keyframe, with the keyframe's
        URL to crop), a few representative ones, the assets, and what curators did."""
        detail = _answer(lambda: person_detail(catalog, person_id)).as_dict()
        for appearance in (*detail["appearance_list"], *detail["representatives"]):
            appearance["keyframe_url"] = keyframe_url(appearance["shot_id"], appearance["keyframe_index"])
        return detail

    @router.get("/{person_id}/shots")
    def shots(person_id: str) -> Any:
        """The shots the person appears in, asset by asset in time order: none for an opted-out person."""
        found = roster(catalog)
        resolved = _answer(lambda: found.resolve(person_id))
        listed = found.shots_of(resolved) if found.visible(resolved) else []
        return {"person_id": resolved, "excluded": found.is_excluded(resolved), "shots": listed}

    @router.post("/{person_id}/name", status_code=201)
    def name(person_id: str, body: NameIn) -> Any:
        """Name the person (the latest name wins; the row keeps the name before)."""
        return _written(
            engine, lambda: name_person(catalog, person_id, body.name, curator=body.curator, note=body.note)
        )

    @router.post("/{person_id}/merge", status_code=201)
    def merge(person_id: str, body: MergeIn) -> Any:
        """Make `other` part of this person."""
        return _written(
            engine, lambda: merge_people(catalog, person_id, body.other, curator=body.curator, note=body.note)
        )

    @router.post("/{person_id}/split", status_code=201)
    def split(person_id: str, body: SplitIn) -> Any:
        """Move these appearances to a new person (its id: `new_person_id`)."""
        return _written(
            engine,
            lambda: split_person(catalog, person_id, body.track_ids, curator=body.curator, note=body.note),
        )

    @router.post("/{person_id}/exclude", status_code=201)
    def exclude(person_id: str, body: ExcludeIn) -> Any:
        """Opt the person out of search and exports (or back in)."""
        return _written(
            engine,
            lambda: exclude_person(
                catalog, person_id, curator=body.curator, excluded=body.excluded, note=body.note
            ),
        )

    return router


def _answer(work: Callable[[], Result]) -> Result:
    try:
        return work()
    except UnknownPersonError as exc:
        raise HTTPException(404, str(exc)) from None
    except PeopleConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except PeopleError as exc:
        raise HTTPException(422, str(exc)) from None


def _written(engine: QueryEngine, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    row = _answer(work)
    engine.refresh()
    return {"correction": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}}
