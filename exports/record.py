"""One asset as its exports see it: its rows of the catalog's tables, gathered and ordered.

Each table is read once for all the asset ids asked for (a filter on `asset_id`), so
exporting many assets costs one scan per table, not one per asset.

Curators' corrections are folded in here, once for every format (`catalog.corrections`): a
corrected shot's caption row carries the curator's caption (its `correction` says whose, and
`generated` notes "corrected by …"), its tags lose the removed labels and gain the added ones,
as tags of kind `curator`.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import In

from catalog.corrections import CURATOR_TAG, NOT_TAGS, Effective, effective
from catalog.iceberg import read
from catalog.people import ClusterCorrections, roster
from catalog.schema import TABLES
from catalog.voices import label_segments, voice_corrections

EXPORT_TABLES = (
    "assets",
    "qc",
    "remasters",
    "shots",
    "captions",
    "tags",
    "transcripts",
    "corrections",
    "speakers",
    "voices",
)
"""The tables an export reads."""

SKIPPED_COLUMNS = {"keyframe_jpeg", "processed_at"}
"""Columns left out of the content hash: bytes no export carries, and a time that changes on re-runs."""


@dataclass(frozen=True)
class Embedding:
    """A shot's vector in one space (`catalog.schema.EMBEDDING_SPACES`), with the model that made it.

    Kept as a float32 array, not a list of Python floats: a 1280-d visual vector is 5 KB so,
    40 KB as a list, and the dataset exports hold every selected shot's vectors at once."""

    space: str
    model: str
    vector: np.ndarray


class UnknownAssetError(LookupError):
    """An asset id the catalog does not hold."""


@dataclass(frozen=True)
class ShotRecord:
    shot: dict[str, Any]
    caption: dict[str, Any] | None
    tags: list[dict[str, Any]] = field(default_factory=list)
    transcript: str | None = None
    """The transcript segments that overlap the shot, joined."""
    embeddings: dict[str, Embedding] = field(default_factory=dict)
    """By space; loaded only when asked (`load_records(..., embeddings=True)`), and not in the
    content hash: the formats that carry vectors key their files on them themselves."""
    correction: dict[str, Any] | None = None
    """The curator's correction whose caption `caption` holds (who, when); None: the machine's."""
    people: list[str] = field(default_factory=list)
    """The names curators gave the people seen in the shot (`catalog.people`): a person never named
    is not here, nor a person opted out (`Roster.visible`)."""


@dataclass(frozen=True)
class AssetRecord:
    asset: dict[str, Any]
    qc: dict[str, Any] | None
    remasters: list[dict[str, Any]]
    shots: list[ShotRecord]
    transcript: list[dict[str, Any]]

    @property
    def asset_id(self) -> str:
        return str(self.asset["asset_id"])

    def remaster(self, kind: str) -> dict[str, Any] | None:
        """The `kind` ('master' or 'access') output that succeeded, if there is one."""
        for row in self.remasters:
            if row.get("kind") == kind and row.get("status") == "ok" and row.get("output_uri"):
                return row
        return None

    def content_hash(self) -> str:
        """A hash of every row an export reads: two equal hashes, the same exports."""
        document = {
            "asset": self.asset,
            "qc": self.qc,
            "remasters": self.remasters,
            "shots": [[s.shot, s.caption, s.tags, s.transcript, s.correction, s.people] for s in self.shots],
            "transcript": self.transcript,
        }
        text = json.dumps(_without_skipped(document), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _without_skipped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_skipped(v) for k, v in value.items() if k not in SKIPPED_COLUMNS}
    if isinstance(value, list):
        return [_without_skipped(v) for v in value]
    return value


def all_asset_ids(catalog: SqlCatalog) -> list[str]:
    return sorted(read(catalog, "assets", columns=("asset_id",)).column("asset_id").to_pylist())


def load_records(
    catalog: SqlCatalog, asset_ids: Sequence[str], *, embeddings: bool = False
) -> list[AssetRecord]:
    """The records of `asset_ids`, in that order; an id the catalog does not hold is an error
    naming it (and nothing is returned). `embeddings`: read the shots' vectors too (one more
    scan, of the largest table, which only the dataset formats need)."""
    wanted = list(dict.fromkeys(asset_ids))
    if not wanted:
        return []
    rows = {name: _rows(catalog, name, wanted) for name in EXPORT_TABLES}
    by_asset = {name: _group(rows[name]) for name in EXPORT_TABLES}
    known = by_asset["assets"]
    unknown = [a for a in wanted if a not in known]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise UnknownAssetError(f"asset {unknown[0][:80]!r} is not in the catalog{more}")
    vectors = _embeddings(catalog, wanted) if embeddings else {}
    heard = voice_corrections(catalog) if by_asset["speakers"] else None
    named = roster(catalog).names_by_shot()
    return [_with_people(_record(aid, by_asset, vectors, heard), named) for aid in wanted]


def _with_people(record: AssetRecord, named: dict[str, list[str]]) -> AssetRecord:
    shots = [replace(s, people=named.get(str(s.shot["shot_id"]), [])) for s in record.shots]
    return replace(record, shots=shots)


def _embeddings(catalog: SqlCatalog, asset_ids: list[str]) -> dict[str, dict[str, Embedding]]:
    """The vectors of the assets' shots, by shot id and space, sliced out of Arrow's flat
    buffer rather than converted float by float. A shot's are its first keyframe's
    (`keyframe_index` 0, or null from before long takes had more): the keyframe its row names."""
    rows = read(
        catalog,
        "embeddings",
        columns=("shot_id", "space", "model", "vector", "keyframe_index"),
        row_filter=In(term="asset_id", literals=asset_ids),
    )
    first = pc.fill_null(rows["keyframe_index"], 0)
    rows = rows.filter(pc.equal(first, 0))
    found: dict[str, dict[str, Embedding]] = {}
    if rows.num_rows == 0:
        return found
    column = rows["vector"].combine_chunks()
    offsets = column.offsets.to_numpy()
    values = column.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    shots, spaces, models = (rows[name].to_pylist() for name in ("shot_id", "space", "model"))
    for i, (shot, space, model) in enumerate(zip(shots, spaces, models, strict=True)):
        if valid[i]:
            vector = values[offsets[i] : offsets[i + 1]].copy()
            found.setdefault(shot, {})[space] = Embedding(space=space, model=model, vector=vector)
    return found


def _rows(catalog: SqlCatalog, name: str, asset_ids: list[str]) -> list[dict[str, Any]]:
    columns = tuple(f.name for f in TABLES[name] if f.name != "keyframe_jpeg")
    return read(
        catalog, name, columns=columns, row_filter=In(term="asset_id", literals=asset_ids)
    ).to_pylist()


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["asset_id"], []).append(row)
    return grouped


def _record(
    aid: str,
    by_asset: dict[str, dict[str, list[dict[str, Any]]]],
    vectors: dict[str, dict[str, Embedding]],
    heard: ClusterCorrections | None = None,
) -> AssetRecord:
    def of(name: str) -> list[dict[str, Any]]:
        return by_asset[name].get(aid, [])

    segments = sorted(of("transcripts"), key=lambda r: (_num(r.get("start_s")), r.get("segment_index") or 0))
    if of("speakers"):  # who says each segment: its voice's name or id (catalog.voices)
        segments = label_segments(segments, of("speakers"), of("voices"), heard)
    captions = {r["shot_id"]: r for r in of("captions")}
    tags: dict[str, list[dict[str, Any]]] = {}
    for tag in sorted(of("tags"), key=lambda t: (t["kind"], t.get("rank") or 0, -_num(t.get("score")))):
        tags.setdefault(tag["shot_id"], []).append(tag)
    shot_rows = [r for r in of("shots") if r.get("shot_id")]
    shot_rows.sort(key=lambda r: (r.get("shot_index") or 0, _num(r.get("start_s"))))
    fixes = effective(of("corrections"))
    shots = [
        ShotRecord(
            shot=row,
            caption=_caption(row, captions.get(row["shot_id"]), fixes),
            tags=_tags(row, tags.get(row["shot_id"], []), fixes),
            transcript=_spoken(row, segments),
            embeddings=vectors.get(row["shot_id"], {}),
            correction=_correction(fixes, row["shot_id"]),
        )
        for row in shot_rows
    ]
    qc_rows = of("qc")
    remasters = sorted(of("remasters"), key=lambda r: (str(r.get("kind")), str(r.get("output_uri"))))
    return AssetRecord(
        asset=of("assets")[0],
        qc=qc_rows[0] if qc_rows else None,
        remasters=remasters,
        shots=shots,
        transcript=segments,
    )


def _caption(shot: dict[str, Any], machine: dict[str, Any] | None, fixes: Effective) -> dict[str, Any] | None:
    """The shot's caption row, with the curator's caption where one corrected it (the machine's
    kept beside it as `machine_caption`)."""
    fixed = fixes.corrected_caption(shot["shot_id"])
    if fixed is None:
        return machine
    base = machine or {"shot_id": shot["shot_id"], "asset_id": shot["asset_id"], "method": None}
    return {**base, "caption": fixed["value"], "machine_caption": (machine or {}).get("caption")}


def _correction(fixes: Effective, shot_id: str) -> dict[str, Any] | None:
    fixed = fixes.corrected_caption(shot_id)
    return {k: fixed[k] for k in ("curator", "at", "note", "before")} if fixed is not None else None


def _tags(shot: dict[str, Any], machine: list[dict[str, Any]], fixes: Effective) -> list[dict[str, Any]]:
    """The machine's tag rows less those a curator removed, then the curator's added ones."""
    sid = shot["shot_id"]
    removed = fixes.removed(sid)
    kept = [t for t in machine if t.get("kind") in NOT_TAGS or str(t["label"]).lower() not in removed]
    have = {str(t["label"]).lower() for t in kept if t.get("kind") not in NOT_TAGS}
    added = [
        {
            "shot_id": sid,
            "asset_id": shot["asset_id"],
            "kind": CURATOR_TAG,
            "label": r["value"],
            "score": None,
            "rank": None,
            "box": None,
            "model": f"curator {r['curator']}",
            "curator": r["curator"],
            "at": r["at"],
        }
        for r in sorted(fixes.added(sid), key=lambda r: str(r["value"]).lower())
        if str(r["value"]).lower() not in have
    ]
    return kept + added


def tag_origin(tag: dict[str, Any], *, kind: bool = True) -> str:
    """What a tag is, as the descriptive formats label it: a curator's, or the machine's (of its
    kind, unless `kind` is False)."""
    if tag.get("kind") == CURATOR_TAG:
        return "curator tag"
    return f"machine-generated {tag.get('kind')}" if kind else "machine-generated tag"


def subjects(record: AssetRecord) -> list[tuple[str, str]]:
    """The asset's tag labels (every shot's, but text read on screen) with what each is
    (`tag_origin`), sorted: the subjects the descriptive formats list for the whole asset."""
    found = {
        (t["label"], tag_origin(t, kind=False))
        for s in record.shots
        for t in s.tags
        if t.get("kind") != "text"
    }
    found |= {(name, PERSON_SUBJECT) for s in record.shots for name in s.people}
    return sorted(found)


PERSON_SUBJECT = "person named by a curator"
"""What a subject that is a person's name is (`subjects`): the only way a name reaches an export."""


def tag_note(tag: dict[str, Any]) -> str:
    """Who made a tag: the curator who added it and when, or the model and pipeline version."""
    if tag.get("kind") == CURATOR_TAG:
        return f"added by {tag.get('curator')} on {tag['at'].date().isoformat()}"
    return f"machine-generated by {tag.get('model')}, pipeline {tag.get('pipeline_version')}"


def _spoken(shot: dict[str, Any], segments: list[dict[str, Any]]) -> str | None:
    """The text of the segments that name the shot (or, where none names shots, overlap it)."""
    sid, start, end = shot["shot_id"], _num(shot.get("start_s")), _num(shot.get("end_s"))
    said = [
        s["text"].strip()
        for s in segments
        if s.get("text")
        and (
            sid in (s.get("shot_ids") or [])
            if s.get("shot_ids")
            else _num(s.get("start_s")) < end and _num(s.get("end_s")) > start
        )
    ]
    return " ".join(said) if said else None


def _num(value: Any) -> float:
    return float(value) if value is not None else 0.0


def title(record: AssetRecord) -> str:
    uri = str(record.asset.get("uri") or record.asset_id)
    return posixpath.basename(uri.rstrip("/")) or record.asset_id


def duration(record: AssetRecord) -> float:
    """The asset's length: as probed, else as QC measured, else the end of its last shot."""
    for value in (record.asset.get("duration_s"), (record.qc or {}).get("duration_s")):
        if value:
            return float(value)
    ends = [float(s.shot["end_s"]) for s in record.shots if s.shot.get("end_s") is not None]
    return max(ends, default=0.0)


# ---- facts every descriptive format writes alike (PBCore, EBUCore, METS/PREMIS) ----------------

COPY_KINDS = ("source", "master", "access")
"""The copies an asset can have: the file as archived, the preservation master, the access copy."""


@dataclass(frozen=True)
class Copy:
    """One copy of an asset as the export formats describe it (an instantiation, a format, an object)."""

    kind: str
    """One of COPY_KINDS."""
    identifier: str
    """The sha256 of its bytes (for the source, the asset id), else `asset:kind`."""
    location: str
    facts: dict[str, Any]
    """Its technical facts: for the source the QC record's over the probe's, for an output its row's."""
    row: dict[str, Any] | None = None
    """The `remasters` row of an output (None for the source)."""


def technical(record: AssetRecord) -> dict[str, Any]:
    """The source's technical facts: the QC record's, filled in from the probe (the assets row)."""
    facts = dict(record.asset)
    for key, value in (record.qc or {}).items():
        if value is not None:
            facts[key] = value
    return facts


def copies(record: AssetRecord) -> list[Copy]:
    """The source, then the master and the access copy where they were made (and succeeded).

    The master keeps every audio track of the source (the QC record's), so it is described with
    them; what the access copy carries is in its manifest, not in its row."""
    source_facts = technical(record)
    found = [Copy("source", record.asset_id, str(record.asset.get("uri")), source_facts)]
    for kind in ("master", "access"):
        row = record.remaster(kind)
        if row is None:
            continue
        tracks = source_facts.get("audio_tracks") if kind == "master" else None
        found.append(
            Copy(
                kind,
                str(row.get("output_sha256") or f"{record.asset_id}:{kind}"),
                str(row["output_uri"]),
                {**row, "audio_tracks": tracks},
                row,
            )
        )
    return found


@dataclass(frozen=True)
class Generated:
    """Who made a shot's machine-generated descriptions: the caption's method, the transcript's
    model, and the pipeline version, written beside each description."""

    caption_method: str
    transcript_model: str
    version: str
    corrected_by: str | None = None
    corrected_on: str | None = None
    """Who corrected the caption and on what day (ISO), where a curator did."""

    def caption_note(self) -> str:
        if self.corrected_by is not None:
            return (
                f"corrected by {self.corrected_by} on {self.corrected_on} (replacing the caption "
                f"machine-generated by {self.caption_method}, pipeline {self.version})"
            )
        return f"machine-generated by {self.caption_method}, pipeline {self.version}"

    def transcript_note(self) -> str:
        return f"machine-generated by {self.transcript_model}, pipeline {self.version}"


def generated(record: AssetRecord, shot: ShotRecord) -> Generated:
    caption = shot.caption or {}
    version = caption.get("pipeline_version") or shot.shot.get("pipeline_version")
    model = next((s.get("model") for s in record.transcript if s.get("model")), None)
    fixed = shot.correction
    return Generated(
        str(caption.get("method") or "unknown"),
        str(model or "unknown"),
        str(version),
        corrected_by=str(fixed["curator"]) if fixed else None,
        corrected_on=fixed["at"].date().isoformat() if fixed else None,
    )
