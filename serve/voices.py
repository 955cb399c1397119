"""The voices API: who speaks where, and curators naming, merging and opting voices out.

A voice is the people API's kind of thing heard rather than seen, so it keeps that API's rules
(`serve.people`): every route needs the service's token, reads included and even on loopback (a list
of voices across an archive is a voice search); a service started without a token answers 403; bad
input is a 4xx that says what to change and writes nothing (a body the schema refuses → 422, an
unknown voice → 404, a merge the catalog's state refuses → 409); a write reloads the query engine
before it answers, so the next search already finds the shots a newly named voice speaks in.

    GET  /voices                     every voice with speakers, most heard first
    GET  /voices/{voice_id}          one voice: its speakers (asset, label, seconds, turns), history
    POST /voices/{voice_id}/name     {"curator", "name", "note"?}
    POST /voices/{voice_id}/merge    {"curator", "other", "note"?}: `other` becomes part of voice_id
    POST /voices/{voice_id}/exclude  {"curator", "excluded"?: true, "note"?}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field

from catalog.voices import exclude_voice, list_voices, merge_voices, name_voice, voice_detail
from indexes.query import QueryEngine
from serve.auth import Access
from serve.people import ClusterId, CuratorBody, Name, _answer, _written, token_guard
from serve.schemas import ErrorBody


class VoiceNameIn(CuratorBody):
    name: Name = Field(description="the voice's name, which labels its lines and finds where it speaks")


class VoiceMergeIn(CuratorBody):
    other: ClusterId = Field(description="the voice that becomes part of this one")


class VoiceExcludeIn(CuratorBody):
    excluded: bool = Field(True, description="true: opt the voice out; false: take the opt-out back")


def voices_router(engine: QueryEngine, access: Access) -> APIRouter:
    """The voice routes over the engine's catalog, each behind the token."""
    router = APIRouter(
        prefix="/voices", tags=["voices"], dependencies=[Depends(token_guard(access, "the voices API"))]
    )
    catalog = engine.catalog

    @router.get("")
    def voices() -> Any:
        """Every voice with speakers (opted-out ones marked), the most heard first."""
        return {"voices": list_voices(catalog)}

    @router.get("/{voice_id}")
    def voice(voice_id: str) -> Any:
        """One voice (a merged-away id answers with the voice it joined): each speaker it is, with
        its asset, label, seconds of speech and turns, and what curators did."""
        return _answer(lambda: voice_detail(catalog, voice_id))

    @router.post("/{voice_id}/name", status_code=201)
    def name(voice_id: str, body: VoiceNameIn) -> Any:
        """Name the voice (the latest name wins; the row keeps the name before)."""
        return _written(
            engine, lambda: name_voice(catalog, voice_id, body.name, curator=body.curator, note=body.note)
        )

    @router.post("/{voice_id}/merge", status_code=201, responses={409: {"model": ErrorBody}})
    def merge(voice_id: str, body: VoiceMergeIn) -> Any:
        """Make `other` part of this voice (409: the same voice twice)."""
        return _written(
            engine, lambda: merge_voices(catalog, voice_id, body.other, curator=body.curator, note=body.note)
        )

    @router.post("/{voice_id}/exclude", status_code=201)
    def exclude(voice_id: str, body: VoiceExcludeIn) -> Any:
        """Opt the voice out of transcripts' labels, exports and search (or back in)."""
        return _written(
            engine,
            lambda: exclude_voice(
                catalog, voice_id, curator=body.curator, excluded=body.excluded, note=body.note
            ),
        )

    return router
