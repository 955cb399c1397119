"""Curators' corrections of a shot's caption and tags, kept apart from the machine's rows.

A run replaces its machine rows (captions, tags) asset by asset; a person's fix must survive
that. So a fix is never written into the machine's tables: it is a row of `corrections`
(who, when, what, the value before), appended by the service and never replaced, and every
reader folds the corrections over the machine rows it read (`effective`): the latest caption
correction of a shot wins over its machine caption; its tags are the machine's, plus those a
curator added, minus those a curator removed (the latest action on a label wins). A re-run
rewrites the machine rows underneath and the fold gives the curator's values still.

Tags here are what the query filters call tags: every kind but detected objects and on-screen
text (`catalog.schema.TAG_KINDS`). Labels are compared case-insensitively, as the filters do.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

from catalog.iceberg import append, read
from catalog.schema import CORRECTIONS, OBJECT_TAG, ONSCREEN_TEXT_TAG

CAPTION = "caption"
TAG_ADDED = "tag_added"
TAG_REMOVED = "tag_removed"
FIELDS: dict[str, str] = {
    CAPTION: "the shot's caption, replaced (`value`: the new caption)",
    TAG_ADDED: "a tag the shot carries that the machine did not give it (`value`: its label)",
    TAG_REMOVED: "a tag the machine gave that the shot does not carry (`value`: its label)",
}
"""What a correction can change, by its `field` value."""

CURATOR_TAG = "curator"
"""The tag kind a curator's added tag is given where tags are listed with their kinds (exports)."""

MAX_CURATOR_CHARS = 80
MAX_CAPTION_CHARS = 2000
MAX_TAG_CHARS = 100
MAX_TAGS = 50
MAX_NOTE_CHARS = 1000
NOT_TAGS = (OBJECT_TAG, ONSCREEN_TEXT_TAG)
"""Machine tag kinds that are not tags to a curator (they are listed apart: objects, text read)."""


class CorrectionError(ValueError):
    """A correction that cannot be kept as asked: the message says what to change."""


class UnknownShotError(LookupError):
    """A correction of a shot the catalog does not hold."""


@dataclass(frozen=True)
class Edit:
    """What a curator asks to change on one shot (any of caption, tags to add, tags to remove;
    the removals are applied before the additions)."""

    curator: str
    caption: str | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    note: str | None = None

    def checked(self) -> Edit:
        """The edit with its texts tidied (spaces collapsed), or CorrectionError naming the first
        thing wrong with it: a reader gets one clear message, and nothing is written."""
        curator = _tidy(self.curator)
        if not curator:
            raise CorrectionError("say who is correcting: the curator's name is required")
        if len(curator) > MAX_CURATOR_CHARS:
            raise CorrectionError(f"the curator's name is at most {MAX_CURATOR_CHARS} characters")
        caption = None
        if self.caption is not None:
            caption = _tidy(self.caption)
            if not caption:
                raise CorrectionError("a corrected caption cannot be empty")
            if len(caption) > MAX_CAPTION_CHARS:
                raise CorrectionError(f"a caption is at most {MAX_CAPTION_CHARS} characters")
        added, removed = _labels(self.add_tags, "add"), _labels(self.remove_tags, "remove")
        # A label both added and removed is added: removals are applied first (`correct`).
        if caption is None and not added and not removed:
            raise CorrectionError("nothing to correct: give a caption, tags to add or tags to remove")
        note = _tidy(self.note or "") or None
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise CorrectionError(f"a note is at most {MAX_NOTE_CHARS} characters")
        return Edit(curator, caption, added, removed, note)


@dataclass(frozen=True)
class Effective:
    """The corrections of some shots, folded: what each reader applies over the machine's rows."""

    captions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per shot, its latest caption correction (its row)."""
    tag_actions: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    """Per shot, per lower-cased label, the latest tag correction (a row: added or removed)."""
    history: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """Per shot, every correction, oldest first."""

    def caption(self, shot_id: str, machine: str | None) -> str | None:
        """The caption a reader shows: the latest curator's, else the machine's."""
        found = self.captions.get(shot_id)
        return str(found["value"]) if found is not None else machine

    def corrected_caption(self, shot_id: str) -> Mapping[str, Any] | None:
        """The correction whose caption the shot shows (who, when), if a curator's it is."""
        return self.captions.get(shot_id)

    def added(self, shot_id: str) -> list[Mapping[str, Any]]:
        """The tag corrections that add a label to the shot (latest action per label)."""
        return [r for r in self.tag_actions.get(shot_id, {}).values() if r["field"] == TAG_ADDED]

    def removed(self, shot_id: str) -> set[str]:
        """The lower-cased labels a curator took off the shot."""
        actions = self.tag_actions.get(shot_id, {})
        return {label for label, r in actions.items() if r["field"] == TAG_REMOVED}

    def tags(self, shot_id: str, machine: Iterable[str]) -> list[str]:
        """The shot's tags as a reader shows them: the machine's, less the removed, with the added
        (sorted, one per label whatever its case)."""
        removed = self.removed(shot_id)
        found = {t.lower(): t for t in machine if t.lower() not in removed}
        for row in self.added(shot_id):
            found.setdefault(str(row["value"]).lower(), str(row["value"]))
        return sorted(found.values())


def effective(rows: Iterable[Mapping[str, Any]] | pa.Table) -> Effective:
    """Fold correction rows (of any shots, in any order) into what wins: the latest by `at`
    (ties, within one request, by the order they were written in)."""
    listed = rows.to_pylist() if isinstance(rows, pa.Table) else list(rows)
    ordered = sorted(enumerate(listed), key=lambda pair: (_instant(pair[1]["at"]), pair[0]))
    captions: dict[str, Mapping[str, Any]] = {}
    actions: dict[str, dict[str, Mapping[str, Any]]] = {}
    history: dict[str, list[Mapping[str, Any]]] = {}
    for _, row in ordered:
        shot = row["shot_id"]
        history.setdefault(shot, []).append(row)
        if row["field"] == CAPTION:
            captions[shot] = row
        elif row["field"] in (TAG_ADDED, TAG_REMOVED):
            actions.setdefault(shot, {})[str(row["value"]).lower()] = row
    return Effective(captions, actions, history)


def read_corrections(catalog: SqlCatalog, shot_id: str | None = None) -> pa.Table:
    """The corrections table (of one shot, or all): always its newest rows, as no run writes it."""
    if shot_id is None:
        return read(catalog, "corrections")
    return read(catalog, "corrections", row_filter=EqualTo(term="shot_id", value=shot_id))


def correct(
    catalog: SqlCatalog, shot_id: str, edit: Edit, *, at: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Keep a curator's corrections of a shot, in one commit; the rows written, each with the
    value it replaces (`before`: the caption, or the shot's tags, as readers saw them).
    CorrectionError for an edit that cannot be kept, UnknownShotError for a shot not in the
    catalog; either way nothing is written."""
    edit = edit.checked()
    found = read(
        catalog, "shots", columns=("shot_id", "asset_id"), row_filter=EqualTo(term="shot_id", value=shot_id)
    )
    if found.num_rows == 0:
        raise UnknownShotError(f"shot {shot_id[:80]!r} is not in the catalog: nothing was corrected")
    asset_id = str(found["asset_id"][0].as_py())
    of_shot = EqualTo(term="shot_id", value=shot_id)
    captions = read(catalog, "captions", columns=("shot_id", "caption"), row_filter=of_shot)
    machine_caption = captions["caption"][0].as_py() if captions.num_rows else None
    tag_rows = read(catalog, "tags", columns=("shot_id", "kind", "label"), row_filter=of_shot).to_pylist()
    machine_tags = [r["label"] for r in tag_rows if r["kind"] not in NOT_TAGS]
    folded = effective(read_corrections(catalog, shot_id))
    when = at or dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []

    def row(kind: str, value: str, before: str | None) -> dict[str, Any]:
        return {
            "correction_id": uuid.uuid4().hex,
            "shot_id": shot_id,
            "asset_id": asset_id,
            "field": kind,
            "value": value,
            "before": before,
            "curator": edit.curator,
            "at": when,
            "note": edit.note,
        }

    if edit.caption is not None:
        rows.append(row(CAPTION, edit.caption, folded.caption(shot_id, machine_caption)))
    tags = folded.tags(shot_id, machine_tags)
    for label in edit.remove_tags:
        rows.append(row(TAG_REMOVED, label, ", ".join(tags)))
        tags = [t for t in tags if t.lower() != label.lower()]
    for label in edit.add_tags:
        rows.append(row(TAG_ADDED, label, ", ".join(tags)))
        if label.lower() not in {t.lower() for t in tags}:
            tags = sorted([*tags, label])
    append(catalog, "corrections", pa.Table.from_pylist(rows, schema=CORRECTIONS))
    return rows


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _labels(labels: Sequence[str], what: str) -> tuple[str, ...]:
    tidied = tuple(dict.fromkeys(t for t in (_tidy(label) for label in labels) if t))
    if len(tidied) > MAX_TAGS:
        raise CorrectionError(f"at most {MAX_TAGS} tags to {what} at once")
    long = next((t for t in tidied if len(t) > MAX_TAG_CHARS), None)
    if long is not None:
        raise CorrectionError(f"a tag is at most {MAX_TAG_CHARS} characters: {long[:40]!r}… is longer")
    return tidied


def _instant(value: Any) -> dt.datetime:
    """A row's `at` as an aware time (pyarrow gives aware; rows built in Python may not be)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value))
