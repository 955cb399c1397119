"""METS with PREMIS 3.0 per preservation master, built with metsrw (METS) and lxml (PREMIS).

What a repository's ingest (Archivematica, a LoC-style transfer) wants to know of a master:
which files make it up and their fixity, where they came from, and what was done to them, by
whom. The METS document lists the files (the source, the master, its frame checksums
`master.framemd5`, the access copy, and the remaster manifests) in a fileSec and a structMap;
each file's amdSec holds a PREMIS `object` (identifier, fixity, format, creating application,
its relationships) and, as digiprovMD, the PREMIS `event`s that concern it and the `agent`s
those events name:

- the source: `ingestion` (fingerprinted, its SHA-256 being the asset id, and probed),
  `validation` (the preservation QC record, where there is one: outcome, policy failures) and
  `metadata extraction` (the shots described, linked to each describing model);
- each output: `restoration` (the manifest's operations with their parameters, and its
  decisions with why), `upscaling` (model, version, factor, where one was applied) and
  `message digest calculation` (the output's SHA-256);
- the master: `fixity check` (its frame checksums and the master policy, checked before it
  was published).

Agents: archivist (software, at the pipeline version) and each model an event names (the
upscaler, the caption method, the transcript and tag models). Events carry the date their
manifest was written (else the asset's processing time). PREMIS's eventType is free text;
the LoC vocabulary's terms are used where one fits, and `restoration`/`upscaling` where none
does. Ids are UUIDs derived from the asset and the event, so a re-export names them alike.

A file's `href` is its storage URI, or (`packaged=True`, inside a BagIt bag) its name in the
bag's payload (`PACKAGE_NAMES`). The manifests are read from storage; a missing one leaves the
events to what the `remasters` row says.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
import uuid
from dataclasses import dataclass, field
from typing import Any

import metsrw
from lxml import etree

from exports.record import AssetRecord, copies

PREMIS = "http://www.loc.gov/premis/v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PREMIS_LOCATION = f"{PREMIS} https://www.loc.gov/standards/premis/v3/premis.xsd"
USES = {"source": "original", "master": "preservation", "access": "access", "metadata": "metadata"}
FORMAT_NAMES = {"ffv1": "FFV1 (Matroska)", "h264": "H.264/AVC (MP4)", "libx264": "H.264/AVC (MP4)"}


def package_names(record: AssetRecord) -> dict[str, str]:
    """Each packaged file's name inside a bag's payload, by role (`master`, `access`,
    `master.framemd5`, `master.manifest`, `access.manifest`), for the copies the asset has."""
    names: dict[str, str] = {}
    for kind in ("master", "access"):
        row = record.remaster(kind)
        if row is None:
            continue
        names[kind] = kind + (posixpath.splitext(str(row["output_uri"]))[1] or ".bin")
        if row.get("manifest_uri"):
            names[f"{kind}.manifest"] = f"{kind}.manifest.json"
    if record.remaster("master") is not None:
        names["master.framemd5"] = "master.framemd5"
    return names


@dataclass
class Stored:
    """What a format reads from storage for an asset: its remaster manifests (parsed, and as
    bytes for their fixity) and the time each was written."""

    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)


def read_stored(record: AssetRecord, options: dict[str, Any]) -> Stored:
    import fsspec

    stored = Stored()
    for kind in ("master", "access"):
        row = record.remaster(kind)
        if row is None or not row.get("manifest_uri"):
            continue
        fs, path = fsspec.core.url_to_fs(str(row["manifest_uri"]), **options)
        try:
            with fs.open(path, "rb") as handle:
                data = handle.read()
            stored.manifests[kind] = json.loads(data)
            stored.raw[kind] = data
            modified = fs.modified(path)
        except (OSError, ValueError, NotImplementedError):
            continue
        stored.written[kind] = _iso(modified)
    return stored


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return stamp.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return str(value)


def _p(parent: etree._Element | None, name: str, text: Any = None) -> etree._Element:
    if parent is None:
        element = etree.Element(f"{{{PREMIS}}}{name}", nsmap={"premis": PREMIS, "xsi": XSI})
        element.set("version", "3.0")
        element.set(f"{{{XSI}}}schemaLocation", PREMIS_LOCATION)
    else:
        element = etree.SubElement(parent, f"{{{PREMIS}}}{name}")
    if text is not None:
        element.text = str(text)
    return element


def _ident(parent: etree._Element, name: str, kind: str, value: str) -> None:
    identifier = _p(parent, name)
    _p(identifier, f"{name}Type", kind)
    _p(identifier, f"{name}Value", value)


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "archivist:" + ":".join(parts)))


@dataclass(frozen=True)
class Agent:
    name: str
    version: str
    kind: str = "software"

    @property
    def value(self) -> str:
        return f"{self.name}/{self.version}"

    def element(self) -> etree._Element:
        agent = _p(None, "agent")
        _ident(agent, "agentIdentifier", "archivist agent", self.value)
        _p(agent, "agentName", self.name)
        _p(agent, "agentType", self.kind)
        _p(agent, "agentVersion", self.version)
        return agent


@dataclass
class Event:
    id: str
    type: str
    date: str
    detail: str
    outcome: str
    notes: list[str]
    agents: list[Agent]
    objects: list[str]
    """The sha256 identifiers of the objects the event concerns."""

    def element(self) -> etree._Element:
        event = _p(None, "event")
        _ident(event, "eventIdentifier", "UUID", self.id)
        _p(event, "eventType", self.type)
        _p(event, "eventDateTime", self.date)
        _p(_p(event, "eventDetailInformation"), "eventDetail", self.detail)
        outcome = _p(event, "eventOutcomeInformation")
        _p(outcome, "eventOutcome", self.outcome)
        for note in self.notes:
            _p(_p(outcome, "eventOutcomeDetail"), "eventOutcomeDetailNote", note)
        for agent in self.agents:
            link = _p(event, "linkingAgentIdentifier")
            _p(link, "linkingAgentIdentifierType", "archivist agent")
            _p(link, "linkingAgentIdentifierValue", agent.value)
            _p(link, "linkingAgentRole", "executing program")
        for sha in self.objects:
            link = _p(event, "linkingObjectIdentifier")
            _p(link, "linkingObjectIdentifierType", "sha256")
            _p(link, "linkingObjectIdentifierValue", sha)
        return event


def _object(
    sha: str,
    format_name: str,
    *,
    size: Any = None,
    original: str | None = None,
    made_by: Agent | None = None,
    related: list[tuple[str, str, str, str | None]] = (),  # type: ignore[assignment]
) -> etree._Element:
    """A PREMIS file object (children in the schema's order); `related`: (type, subtype,
    related object's sha256, related event's id)."""
    obj = _p(None, "object")
    obj.set(f"{{{XSI}}}type", "premis:file")
    _ident(obj, "objectIdentifier", "sha256", sha)
    chars = _p(obj, "objectCharacteristics")
    _p(chars, "compositionLevel", 0)
    fixity = _p(chars, "fixity")
    _p(fixity, "messageDigestAlgorithm", "SHA-256")
    _p(fixity, "messageDigest", sha)
    _p(fixity, "messageDigestOriginator", "archivist")
    if size:
        _p(chars, "size", size)
    _p(_p(_p(chars, "format"), "formatDesignation"), "formatName", format_name)
    if made_by is not None:
        app = _p(chars, "creatingApplication")
        _p(app, "creatingApplicationName", made_by.name)
        _p(app, "creatingApplicationVersion", made_by.version)
    if original:
        _p(obj, "originalName", original)
    for kind, subtype, other, event in related:
        relation = _p(obj, "relationship")
        _p(relation, "relationshipType", kind)
        _p(relation, "relationshipSubType", subtype)
        _ident(relation, "relatedObjectIdentifier", "sha256", other)
        if event:
            _ident(relation, "relatedEventIdentifier", "UUID", event)
    return obj


def _models(record: AssetRecord) -> list[Agent]:
    """The models that described the asset: caption methods, tag and transcript models."""
    found: dict[str, Agent] = {}
    for shot in record.shots:
        rows = [shot.caption] if shot.caption else []
        for row in rows + shot.tags:
            name = row.get("method") or row.get("model")
            if name:
                found.setdefault(str(name), Agent(str(name), str(row.get("pipeline_version"))))
    for segment in record.transcript:
        if segment.get("model"):
            name = str(segment["model"])
            found.setdefault(name, Agent(name, str(segment.get("pipeline_version"))))
    return [found[k] for k in sorted(found)]


def _output_events(
    record: AssetRecord, kind: str, row: dict[str, Any], manifest: dict[str, Any], date: str, archivist: Agent
) -> list[Event]:
    sha = str(row.get("output_sha256") or f"{record.asset_id}:{kind}")
    aid = record.asset_id
    restoration = manifest.get("restoration") or {}
    ops = restoration.get("ops", json.loads(row.get("operations") or "[]"))
    decisions = restoration.get("decisions")
    if decisions is None:
        decisions = (json.loads(row.get("decisions") or "{}") or {}).get("decisions") or []
    mode = restoration.get("mode", "unknown")
    notes = [
        f"{d.get('op')}: {'applied' if d.get('apply') else 'not applied'}: {d.get('why')}" for d in decisions
    ]
    events = [
        Event(
            _uuid(aid, kind, "restoration"),
            "restoration",
            date,
            f"mode {mode}; operations: {json.dumps(ops, sort_keys=True)}",
            "applied" if ops else "nothing to restore",
            notes,
            [archivist],
            [aid, sha],
        )
    ]
    upscale = manifest.get("upscale") or {
        "model": row.get("model"),
        "version": row.get("model_version"),
        "applied": row.get("upscale"),
    }
    factor = upscale.get("applied") or row.get("upscale") or 1
    if upscale.get("model") and upscale.get("model") != "none":
        model = Agent(str(upscale["model"]), str(upscale.get("version") or "unknown"))
        detail = f"x{factor} by {model.name} {model.version}"
        if upscale.get("method"):
            detail += f" ({upscale['method']}, on {upscale.get('device', 'unknown')})"
        outcome = "applied" if int(factor) > 1 else "not applied"
        why = [] if int(factor) > 1 else ["kept at the source's size (an interlaced master keeps its fields)"]
        events.append(
            Event(
                _uuid(aid, kind, "upscaling"),
                "upscaling",
                date,
                detail,
                outcome,
                why,
                [archivist, model],
                [sha],
            )
        )
    events.append(
        Event(
            _uuid(aid, kind, "digest"),
            "message digest calculation",
            date,
            "SHA-256 of the output file's bytes",
            "success",
            [sha],
            [archivist],
            [sha],
        )
    )
    return events


def _fixity_event(
    record: AssetRecord, manifest: dict[str, Any], date: str, archivist: Agent, sha: str
) -> Event | None:
    fixity, policy = manifest.get("fixity"), manifest.get("policy")
    if not fixity and not policy:
        return None
    notes = []
    if fixity:
        notes.append(
            f"{fixity.get('frames')} frame checksums ({fixity.get('algorithm')} per decoded picture) "
            f"in master.framemd5, sha256 {fixity.get('sha256')}"
        )
    if policy:
        notes.append(f"master policy: {policy.get('rules')} rules, passed: {policy.get('passed')}")
    passed = (policy or {}).get("passed", True)
    return Event(
        _uuid(record.asset_id, "master", "fixity"),
        "fixity check",
        date,
        "the master decoded whole before publication: frame checksums written, FFV1 slice CRCs "
        "and keyframes checked against the master policy",
        "pass" if passed else "fail",
        notes,
        [archivist],
        [sha],
    )


def _source_events(record: AssetRecord, date: str, archivist: Agent) -> list[Event]:
    aid, asset = record.asset_id, record.asset
    events = [
        Event(
            _uuid(aid, "ingestion"),
            "ingestion",
            date,
            "fingerprinted (SHA-256 of the file's bytes, the asset id) and probed",
            str(asset.get("status")),
            [str(asset["error"])] if asset.get("error") else [],
            [archivist],
            [aid],
        )
    ]
    qc = record.qc
    if qc is not None:
        passed = qc.get("policy_passed")
        policy = "" if passed is None else f", policy {'passed' if passed else 'failed'}"
        outcome = f"{qc.get('status')}{policy}"
        notes = [str(f) for f in qc.get("policy_failures") or []]
        if qc.get("error"):
            notes.insert(0, str(qc["error"]))
        events.append(
            Event(
                _uuid(aid, "validation"),
                "validation",
                date,
                "preservation QC: container, codec, field order, aspect, decode errors, timestamps, "
                "black and frozen spans, broadcast range, audio levels",
                outcome,
                notes,
                [archivist],
                [aid],
            )
        )
    models = _models(record)
    if record.shots:
        events.append(
            Event(
                _uuid(aid, "description"),
                "metadata extraction",
                date,
                f"{len(record.shots)} shots described (captions, tags, on-screen text, transcript): "
                "machine-generated",
                "success",
                [],
                [archivist, *models],
                [aid],
            )
        )
    return events


def _entry(path: str, label: str, use: str, sha: str | None, aid: str) -> metsrw.FSEntry:
    return metsrw.FSEntry(
        path=path,
        label=label,
        use=use,
        file_uuid=_uuid(aid, "file", label),
        checksum=sha,
        checksumtype="SHA-256" if sha else None,
    )


def _attach(entry: metsrw.FSEntry, obj: etree._Element, events: list[Event]) -> None:
    entry.add_premis_object(obj)
    for event in events:
        entry.add_premis_event(event.element())
    agents = {a.value: a for e in events for a in e.agents}
    for agent in agents.values():
        entry.add_premis_agent(agent.element())


def document(record: AssetRecord, stored: Stored, *, packaged: bool = False) -> metsrw.METSDocument:
    aid = record.asset_id
    archivist = Agent("archivist", str(record.asset.get("pipeline_version")))
    asset_date = _iso(record.asset["processed_at"]) if record.asset.get("processed_at") else "unknown"
    names = package_names(record)
    entries = []
    for copy in copies(record):
        if copy.kind == "source":
            source = _entry(copy.location, "source", USES["source"], aid, aid)
            codec = copy.facts.get("video_codec") or "unknown"
            _attach(
                source,
                _object(
                    aid,
                    f"{copy.facts.get('container') or 'unknown'} ({codec})",
                    size=copy.facts.get("size_bytes"),
                    original=copy.location,
                ),
                _source_events(record, asset_date, archivist),
            )
            entries.append(source)
            continue
        row, kind = copy.row or {}, copy.kind
        manifest = stored.manifests.get(kind, {})
        date = stored.written.get(kind, asset_date)
        sha = copy.identifier
        events = _output_events(record, kind, row, manifest, date, archivist)
        fixity = _fixity_event(record, manifest, date, archivist, sha) if kind == "master" else None
        if fixity is not None:
            events.append(fixity)
        restored = events[0].id
        codec = str(row.get("codec") or "unknown")
        obj = _object(
            sha,
            FORMAT_NAMES.get(codec, codec),
            made_by=archivist,
            related=[("derivation", "has source", aid, restored)],
        )
        output = _entry(names[kind] if packaged else copy.location, kind, USES[kind], sha, aid)
        _attach(output, obj, events)
        entries.append(output)
        checksums = manifest.get("fixity") or {}
        if kind == "master" and checksums.get("sha256"):
            path = names["master.framemd5"] if packaged else str(checksums.get("frame_checksums_uri"))
            frames = _entry(path, "master.framemd5", USES["metadata"], str(checksums["sha256"]), aid)
            frames.add_premis_object(
                _object(
                    str(checksums["sha256"]),
                    "archivist.framemd5/1 (md5 of each decoded picture)",
                    made_by=archivist,
                    related=[("reference", "is the frame checksums of", sha, fixity.id if fixity else None)],
                )
            )
            entries.append(frames)
        if kind in stored.raw:
            digest = hashlib.sha256(stored.raw[kind]).hexdigest()
            path = names[f"{kind}.manifest"] if packaged else str(row.get("manifest_uri"))
            note = _entry(path, f"{kind}.manifest", USES["metadata"], digest, aid)
            note.add_premis_object(
                _object(
                    digest,
                    "archivist.remaster.manifest (JSON)",
                    made_by=archivist,
                    related=[("reference", "describes", sha, restored)],
                )
            )
            entries.append(note)
    mets = metsrw.METSDocument()
    mets.objid = aid
    mets.agents.append(
        metsrw.Agent(
            "CREATOR", type="SOFTWARE", name=f"archivist {archivist.version}", notes=[archivist.value]
        )
    )
    mets.append_file(metsrw.FSEntry.dir(aid, entries))
    return mets


def to_bytes(record: AssetRecord, stored: Stored, *, packaged: bool = False) -> bytes:
    return bytes(document(record, stored, packaged=packaged).tostring())
