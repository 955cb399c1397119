"""The policy of the QC record, like a MediaConch policy: rules a file must meet.

A rule names one field of the record (``catalog.schema.QC_RECORD``) and one comparison, such as
``{"field": "video_codec", "in": ["ffv1"]}``, ``{"field": "bit_depth", "at_least": 10}`` or
``{"field": "decode_errors", "equals": 0}``; a list field compares its length (errors and tracks:
their full count), and ``audio.<field>`` must hold for every audio track. A failed rule is said
in words, with the rule's ``note`` if it has one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog.schema import QC_AUDIO_TRACK, QC_RECORD

RECORD_FIELDS = [f.name for f in QC_RECORD]
TRACK_FIELDS = [f.name for f in QC_AUDIO_TRACK]
COUNTED = {"decode_errors": "decode_error_count", "audio_tracks": "audio_track_count"}
"""List fields whose rules compare the full count (the lists keep only the first events)."""
OPERATORS = ("in", "not_in", "equals", "at_least", "at_most")


class PolicyRule(BaseModel):
    """One rule a file must meet: a field of the QC record and one comparison. A list field
    compares its length; ``audio.<field>`` must hold for every audio track."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str = Field(description="a column of the qc table, or audio.<column of a track>")
    in_: list[Any] | None = Field(None, alias="in", description="the value is one of these")
    not_in: list[Any] | None = Field(None, description="the value is none of these")
    equals: Any = Field(None, description="the value is this")
    at_least: float | None = Field(None, description="the value is this or more")
    at_most: float | None = Field(None, description="the value is this or less")
    note: str | None = Field(None, description="why the rule is there, said with its failure")

    @model_validator(mode="after")
    def _one_comparison(self) -> PolicyRule:
        given = [op for op in OPERATORS if getattr(self, _attr(op)) is not None]
        if len(given) != 1:
            raise ValueError(f"rule on {self.field!r}: give exactly one of {', '.join(OPERATORS)}")
        name = self.field.removeprefix("audio.")
        known = TRACK_FIELDS if self.field.startswith("audio.") else RECORD_FIELDS
        if name not in known:
            raise ValueError(f"rule on {self.field!r}: no such field (fields: {', '.join(known)})")
        return self

    @property
    def operator(self) -> str:
        return next(op for op in OPERATORS if getattr(self, _attr(op)) is not None)

    def failure(self, record: dict[str, Any]) -> str | None:
        """None where the record meets the rule, else the failure in words."""
        if self.field.startswith("audio."):
            name = self.field.removeprefix("audio.")
            tracks = record.get("audio_tracks") or []
            if not tracks:
                return self._say(f"{self.field}: the file has no audio track")
            for track in tracks:
                problem = self._check(track.get(name))
                if problem:
                    return self._say(f"audio track {track.get('stream')}: {name} {problem}")
            return None
        value = record.get(COUNTED.get(self.field, self.field))
        problem = self._check(value)
        return self._say(f"{self.field} {problem}") if problem else None

    def _check(self, value: Any) -> str | None:
        if isinstance(value, list):
            value = len(value)
        op = self.operator
        wanted = getattr(self, _attr(op))
        if value is None:
            return f"is unknown (the rule wants it {_wants(op, wanted)})"
        try:
            ok = {
                "in": lambda: value in wanted,
                "not_in": lambda: value not in wanted,
                "equals": lambda: value == wanted,
                "at_least": lambda: float(value) >= wanted,
                "at_most": lambda: float(value) <= wanted,
            }[op]()
        except (TypeError, ValueError):
            ok = False
        return None if ok else f"is {value!r}, not {_wants(op, wanted)}"

    def _say(self, text: str) -> str:
        return f"{text} ({self.note})" if self.note else text


def _attr(op: str) -> str:
    return "in_" if op == "in" else op


def _wants(op: str, wanted: Any) -> str:
    if op in ("in", "not_in"):
        items = ", ".join(repr(w) for w in wanted)
        return f"one of {items}" if op == "in" else f"any of {items}"
    return {"equals": f"{wanted!r}", "at_least": f"at least {wanted:g}", "at_most": f"at most {wanted:g}"}[op]


def check_policy(record: dict[str, Any], policy: list[PolicyRule]) -> list[str]:
    """The rules of the policy the record fails, each in words (empty: it passes)."""
    return [f for f in (rule.failure(record) for rule in policy) if f]
