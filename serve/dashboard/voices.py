"""The People page's Voices section: each voice the archive's speakers were grouped into, and the
curator's forms to name it, merge another into it and opt it out.

It is part of the People page, so it has that page's gate (the service's token, even on loopback: a
list of voices across an archive is a voice search) and its error handling (422 with the form
refilled and the error said beside the voice, 404 for an unknown voice). Every write is
`catalog.voices`'s; this module turns the forms into its calls and reloads the engine after one, so
the next search already finds the shots a newly named voice speaks in.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.params import Depends as Dependency
from fastapi.responses import RedirectResponse, Response

from catalog.people import EXCLUDE, MERGE, NAME, PeopleError, UnknownPersonError
from catalog.voices import VOICE_TABLES, VoiceRoster, exclude_voice, merge_voices, name_voice, voice_roster
from serve.dashboard.data import DashboardData
from serve.dashboard.urls import PREFIX, prefix

Typed = Annotated[str, Form()]
Listing = Callable[[Request, Mapping[str, Any], int], Response]
"""The People page rendered with a voice's form refilled (`typed`) and a status."""


def current_voices(data: DashboardData) -> VoiceRoster:
    """The voices as readers see them, read again only when the engine's view saw one of their
    tables move (as `serve.dashboard.people.current_roster` does for people)."""
    snapshots = data.engine.state.view.snapshots
    key = tuple(snapshots.get(name, (None, 0))[0] for name in VOICE_TABLES)
    return data.memo.get("voice_roster", key, lambda: voice_roster(data.catalog))


def voices_section(data: DashboardData, typed: Mapping[str, Any]) -> dict[str, Any]:
    """The section's context: every voice, the most heard first, with the assets it speaks in."""
    found = current_voices(data)
    view = data.engine.state.view
    voices = []
    for voice in found.voices():
        assets = sorted({asset for asset, _ in found.members[voice]})
        voices.append(
            {
                **found.summary(voice),
                "asset_list": [_asset(view.asset_uris, view.asset_row, a) for a in assets],
            }
        )
    return {"voices": voices, "voice_form": typed}


def _asset(uris: Sequence[str | None], rows: Mapping[str, int], asset_id: str) -> dict[str, str]:
    uri = uris[rows[asset_id]] if asset_id in rows else None
    return {"asset_id": asset_id, "name": posixpath.basename(uri) if uri else asset_id[:12]}


def voices_url(voice_id: str) -> str:
    return f"{prefix()}/people#voice-{voice_id}"


def add_voice_routes(
    router: APIRouter, data: DashboardData, form: Sequence[Dependency], listing: Listing
) -> None:
    """The section's forms, behind the People page's gate (`form`: its dependencies for a post)."""
    deps = list(form)

    def act(request: Request, voice_id: str, typed: dict[str, Any], work: Callable[[], Any]) -> Response:
        """A curator's action, then the section again (303, at the voice a merge kept); or the page
        with the form refilled and the error said beside the voice (422)."""
        try:
            row = work()
        except UnknownPersonError as exc:
            return listing(request, {**typed, "voice_id": voice_id, "error": str(exc)}, 404)
        except PeopleError as exc:
            return listing(request, {**typed, "voice_id": voice_id, "error": str(exc)}, 422)
        data.engine.refresh()
        return RedirectResponse(
            voices_url(row["value"] if row["action"] == MERGE else row["cluster_id"]), 303
        )

    @router.post(f"{PREFIX}/voices/{{voice_id}}/name", dependencies=deps)
    def name(request: Request, voice_id: str, curator: Typed = "", name: Typed = "") -> Response:
        typed = {"action": NAME, "curator": curator, "name": name}
        return act(
            request, voice_id, typed, lambda: name_voice(data.catalog, voice_id, name, curator=curator)
        )

    @router.post(f"{PREFIX}/voices/{{voice_id}}/merge", dependencies=deps)
    def merge(request: Request, voice_id: str, curator: Typed = "", other: Typed = "") -> Response:
        typed = {"action": MERGE, "curator": curator, "other": other}
        return act(
            request,
            voice_id,
            typed,
            lambda: merge_voices(data.catalog, voice_id, other.strip(), curator=curator),
        )

    @router.post(f"{PREFIX}/voices/{{voice_id}}/exclude", dependencies=deps)
    def exclude(request: Request, voice_id: str, curator: Typed = "", excluded: Typed = "yes") -> Response:
        typed = {"action": EXCLUDE, "curator": curator}
        return act(
            request,
            voice_id,
            typed,
            lambda: exclude_voice(data.catalog, voice_id, curator=curator, excluded=excluded != "no"),
        )
