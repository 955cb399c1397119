"""What the API answers, as pydantic models, so the OpenAPI document says what a client gets."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from catalog.corrections import (
    MAX_CAPTION_CHARS,
    MAX_CURATOR_CHARS,
    MAX_NOTE_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
)
from indexes.defaults import DIVERSITY_HELP, FAIRNESS_HELP
from indexes.filters import LABEL_FIELDS, MAX_LABEL_CHARS, MAX_LABELS, Filters
from indexes.query import Hit

SHOT_ID = r"^[0-9a-f]{32}$"
NOT_BLANK_FIELD = r"[^\s\x1c-\x1f]"
"""A text with a character Python's `str.strip` keeps (`NOT_BLANK`, for fields of models)."""
Label = Annotated[str, Field(min_length=1, max_length=MAX_TAG_CHARS, pattern=NOT_BLANK_FIELD)]
ASSET_ID = r"^[0-9a-f]{64}$"
USER_ID = r"^[A-Za-z0-9_.@:-]{1,128}$"
MAX_EVENTS_PER_POST = 1000


class ErrorBody(BaseModel):
    error: str = Field(description="what went wrong and, where there is one, what to do about it")
    detail: Any = None


class SpaceUsed(BaseModel):
    snapshot_id: int
    count: int
    kind: str


class RankingMeta(BaseModel):
    """What every ranked answer reports about how it was found."""

    top: int
    spaces: dict[str, SpaceUsed]
    missing_spaces: list[str]
    score: Literal["cosine", "rrf"]
    filters: dict[str, Any]
    searched: str
    notes: list[str]


class SearchMeta(RankingMeta):
    query: str
    catalog_version: int | None = Field(
        None, description="the catalog version every hit was read at (none before the first run's commit)"
    )


# A hit is `indexes.query.Hit` itself, a dataclass pydantic reads (with its field descriptions), so the
# API's answer and the engine's cannot drift apart.
class SearchResponse(BaseModel):
    hits: list[Hit]
    meta: SearchMeta


class Exposure(BaseModel):
    assets: int = Field(description="distinct assets in the list")
    coverage: float = Field(description="share of the candidate pool's assets that get a slot")
    catalog_coverage: float = Field(description="share of the catalog's assets with shots that get a slot")
    gini: float = Field(description="Gini coefficient of position-weighted exposure over the pool's assets")


class RecommendMeta(RankingMeta):
    basis: dict[str, Any]
    pool: int
    diversity: float = Field(description=DIVERSITY_HELP)
    fairness: float = Field(description=FAIRNESS_HELP)
    max_per_asset: int
    exposure: Exposure
    exposure_before_rerank: Exposure


class RecommendResponse(BaseModel):
    hits: list[Hit]
    meta: RecommendMeta


class CaptionCorrected(BaseModel):
    curator: str
    at: dt.datetime
    note: str | None


class CorrectionOut(BaseModel):
    correction_id: str
    field: Literal["caption", "tag_added", "tag_removed"]
    value: str | None = Field(description="the new caption, or the tag's label")
    before: str | None = Field(description="what was shown before: the caption, or the shot's tags")
    curator: str
    at: dt.datetime
    note: str | None


class ShotDetail(BaseModel):
    shot_id: str
    asset_id: str | None
    uri: str | None
    start_s: float
    end_s: float
    caption: str | None
    tags: list[str]
    objects: list[str]
    faces: int
    nsfw_score: float | None
    monochrome: bool
    dup_group: str
    group_size: int
    caption_corrected: CaptionCorrected | None = Field(
        description="who corrected the caption shown, when a curator did (else it is the machine's)"
    )
    machine_caption: str | None = Field(description="the caption the pipeline wrote")
    corrections: list[CorrectionOut] = Field(
        description="every curator's correction of the shot, oldest first"
    )
    thumbnail_url: str | None
    video_url: str | None


class CorrectionIn(BaseModel):
    """A curator's fix of a shot: any of a new caption, tags to add, tags to remove (at least one:
    the schema says so, `catalog.corrections.Edit.checked` enforces it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["caption"], "properties": {"caption": {"type": "string"}}},
                {"required": ["add_tags"], "properties": {"add_tags": {"minItems": 1}}},
                {"required": ["remove_tags"], "properties": {"remove_tags": {"minItems": 1}}},
            ]
        }
    )

    curator: str = Field(
        min_length=1, max_length=MAX_CURATOR_CHARS, pattern=NOT_BLANK_FIELD, description="who is correcting"
    )
    caption: str | None = Field(None, min_length=1, max_length=MAX_CAPTION_CHARS, pattern=NOT_BLANK_FIELD)
    add_tags: list[Label] = Field(default_factory=list, max_length=MAX_TAGS)
    remove_tags: list[Label] = Field(default_factory=list, max_length=MAX_TAGS)
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS)


class CorrectionsStored(BaseModel):
    corrections: list[CorrectionOut]


class AssetShot(BaseModel):
    shot_id: str
    start_s: float
    end_s: float
    thumbnail_url: str | None


class AssetDetail(BaseModel):
    asset_id: str
    uri: str
    status: str | None
    duration_s: float | None
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str | None
    processed_at: dt.datetime | None
    video_url: str | None = Field(description="the access copy, when the remaster stage made one")
    shots: list[AssetShot]


class EventIn(BaseModel):
    user_id: str = Field(pattern=USER_ID)
    shot_id: str = Field(pattern=SHOT_ID)
    kind: Literal["view", "like", "save"]
    at: dt.datetime | None = Field(None, description="when it happened; now when left out")


class EventsIn(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_POST)


class EventsAccepted(BaseModel):
    accepted: int


class IndexLoaded(BaseModel):
    snapshot_id: int
    count: int
    kind: str
    built_at: str


class Health(BaseModel):
    status: Literal["ok", "starting"]
    indexes: dict[str, IndexLoaded]
    shots: int


EXAMPLE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {
                            "image": {
                                "type": "string",
                                "format": "binary",
                                "description": "a JPEG, PNG or WebP picture",
                            }
                        },
                        "required": ["image"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {
                            "shot_id": {"type": "string", "description": "a shot to find others like"}
                        },
                        "required": ["shot_id"],
                        "additionalProperties": False,
                    },
                ]
            },
            "encoding": {"image": {"contentType": "image/jpeg, image/png, image/webp"}},
        }
    },
}
"""POST /search's body as it is checked: exactly one of a picture or a shot id (FastAPI, which
reads the two as optional form fields, cannot say so itself)."""


NOT_BLANK = r"[^\s\x1c-\x1f]"
"""A character Python's `str.strip` keeps: OpenAPI's `\\s` leaves out the separators
U+001C to U+001F, which `strip` removes, so a text of them alone would pass for words."""


def filter_parameters() -> list[dict[str, Any]]:
    """The filters as OpenAPI query parameters: they are parsed from the raw query (so that an
    unknown one is refused, not ignored), which FastAPI cannot see to document."""
    parameters = []
    for name, info in Filters.model_fields.items():
        schema = TypeAdapter(info.rebuild_annotation()).json_schema()
        if name in LABEL_FIELDS:  # as the validator takes them: a non-blank label, a bounded list
            label = {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_CHARS, "pattern": NOT_BLANK}
            schema = {"type": "array", "items": label, "maxItems": MAX_LABELS}
        parameters.append(
            {
                "name": info.alias or name,
                "in": "query",
                "required": False,
                "description": info.description,
                "schema": schema,
            }
        )
    return parameters
