"""What a query may be narrowed by: a small typed model of catalog conditions.

The same model reads the HTTP API's query parameters and the CLI's
`--filter KEY=VALUE` pairs, so both accept the same names and values and
refuse the same mistakes with the same message. Unknown names are refused,
not ignored: a misspelt filter that silently matched everything would look
like an answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from catalog.query import QueryError
from catalog.schema import OBJECT_TAG, ONSCREEN_TEXT_TAG, TAG_KINDS

OBJECT_FILTER_KIND = OBJECT_TAG
"""The tag kind the `object` filter matches."""
NOT_TAG_FILTER_KINDS = (OBJECT_TAG, ONSCREEN_TEXT_TAG)
"""The tag kinds the `tag` filter leaves out (objects have their own filter; on-screen text is words,
searched as text); every other kind counts as a tag."""
TAG_FILTER_KINDS = tuple(kind for kind in TAG_KINDS if kind not in NOT_TAG_FILTER_KINDS)
LABEL_FIELDS = ("tags", "objects")
"""The filters that take a list of labels (given once per label) rather than one value."""
MAX_LABELS = 20
"""Tags or objects one query may require."""
MAX_LABEL_CHARS = 100


class FilterError(QueryError):
    """A filter the caller can fix: the message names it, what was wrong, and the valid names."""


class Filters(BaseModel):
    """Conditions a hit must meet; every one given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    asset: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="only shots of this asset id")
    min_duration: float | None = Field(None, ge=0, description="shots at least this many seconds long")
    max_duration: float | None = Field(None, ge=0, description="shots at most this many seconds long")
    tags: tuple[str, ...] = Field(
        (),
        alias="tag",
        max_length=MAX_LABELS,
        description=f"shots carrying this tag (of kind {' or '.join(TAG_FILTER_KINDS)}); "
        "repeat for all of several",
    )
    objects: tuple[str, ...] = Field(
        (),
        alias="object",
        max_length=MAX_LABELS,
        description="shots where this object was detected; repeat for all of several",
    )
    has_faces: bool | None = Field(None, description="shots with (true) or without (false) a detected face")
    safe: bool | None = Field(
        None, description="shots whose unsafe-content score is known and low (true), or the others (false)"
    )
    monochrome: bool | None = Field(None, description="black-and-white shots (true) or colour ones (false)")
    after: dt.date | None = Field(None, description="assets catalogued on or after this day (UTC)")
    before: dt.date | None = Field(None, description="assets catalogued before this day (UTC)")

    @field_validator(*LABEL_FIELDS, mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            for label in value:
                if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS:
                    raise ValueError(f"a label is 1 to {MAX_LABEL_CHARS} characters")
            return tuple(dict.fromkeys(label.strip().lower() for label in value))
        return value

    @classmethod
    def names(cls) -> list[str]:
        """The parameter names, as a caller writes them."""
        return [field.alias or name for name, field in cls.model_fields.items()]

    @classmethod
    def repeatable(cls) -> set[str]:
        return {field.alias or name for name, field in cls.model_fields.items() if name in LABEL_FIELDS}

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Filters:
        """Filters from `name=value` pairs (query parameters, CLI options); FilterError on any mistake."""
        known, repeatable = cls.names(), cls.repeatable()
        values: dict[str, Any] = {}
        for name, value in pairs:
            if name not in known:
                raise FilterError(f"unknown filter {shorten(name)}; the filters are: {', '.join(known)}")
            if name in repeatable:
                values.setdefault(name, []).append(value)
            elif name in values:
                raise FilterError(f"filter {name} is given twice")
            else:
                values[name] = value
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise FilterError(f"malformed filter: {error_text(exc.errors())}") from None

    def active(self) -> bool:
        return bool(self.model_dump(exclude_defaults=True))

    def as_params(self) -> dict[str, Any]:
        """The filters given, by parameter name, for echoing back with the results."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def error_text(errors: Iterable[Any]) -> str:
    """Pydantic errors as one line naming each field; the offending values are cut short, so a
    10 MB parameter is not echoed back."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "body"))
        got = f" (got {shorten(error['input'])})" if isinstance(error.get("input"), str | int | float) else ""
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}{got}" if where else f"{message}{got}")
    return "; ".join(parts)


def shorten(value: Any, limit: int = 40) -> str:
    """A value as it may be quoted back to a caller: cut short, so no huge input is echoed."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")
