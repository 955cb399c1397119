"""PBCore 2.1 XML per asset, built with lxml: identifiers, technical metadata, instantiations,
and a part per shot whose descriptions are marked machine-generated with model and version.

Not validated against the published XSD (it is not shipped here); the element rules this
module keeps, and its tests check, are the XSD's for what it writes: the document's children
in the schema's order (`pbcoreAssetType`, `pbcoreAssetDate`, `pbcoreIdentifier`+,
`pbcoreTitle`+, `pbcoreSubject`, `pbcoreDescription`+, `pbcoreInstantiation`,
`pbcoreAnnotation`, `pbcorePart`); an instantiation's identifier first, then
`instantiationDigital`, the required `instantiationLocation`, and its essence tracks after the
file-level elements, each track's `essenceTrackType` first. Technical metadata comes from the
QC record where there is one, else the probe (the assets row).
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from exports.record import AssetRecord, copies, duration, generated, subjects, tag_origin, title
from exports.webvtt import timestamp
from exports.xml import element

NS = "http://www.pbcore.org/PBCore/PBCoreNamespace.html"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{NS} https://raw.githubusercontent.com/WGBH/PBCore_2.1/master/pbcore-2.1.xsd"
GENERATIONS = {"source": "Original", "master": "Preservation master", "access": "Access copy"}


def _el(parent: etree._Element, name: str, text: Any = None, **attrs: Any) -> etree._Element:
    return element(parent, NS, name, text, **attrs)


def _instantiation(
    root: etree._Element, kind: str, identifier: str, location: str, facts: dict[str, Any], seconds: float
) -> None:
    inst = _el(root, "pbcoreInstantiation")
    _el(inst, "instantiationIdentifier", identifier, source="archivist sha256")
    if facts.get("width") and facts.get("height"):
        _el(inst, "instantiationDimensions", f"{facts['width']}x{facts['height']}", unitsOfMeasure="pixels")
    container = facts.get("container") or facts.get("codec")
    _el(inst, "instantiationDigital", container or "unknown")
    _el(inst, "instantiationLocation", location)
    _el(inst, "instantiationMediaType", "Moving Image")
    _el(inst, "instantiationGenerations", GENERATIONS[kind])
    if facts.get("size_bytes"):
        _el(inst, "instantiationFileSize", facts["size_bytes"], unitsOfMeasure="bytes")
    if seconds:
        _el(inst, "instantiationDuration", timestamp(seconds))
    video = _el(inst, "instantiationEssenceTrack")
    _el(video, "essenceTrackType", "Video")
    codec = facts.get("video_codec") or facts.get("codec")
    if codec:
        _el(video, "essenceTrackEncoding", codec)
    if facts.get("fps"):
        _el(video, "essenceTrackFrameRate", f"{float(facts['fps']):.3f}", unitsOfMeasure="fps")
    if facts.get("bit_depth"):
        _el(video, "essenceTrackBitDepth", facts["bit_depth"])
    if facts.get("width") and facts.get("height"):
        _el(video, "essenceTrackFrameSize", f"{facts['width']}x{facts['height']}")
    if facts.get("display_aspect_ratio"):
        _el(video, "essenceTrackAspectRatio", facts["display_aspect_ratio"])
    for name, label in (("field_order", "field order"), ("sample_aspect_ratio", "sample aspect ratio")):
        if facts.get(name):
            _el(video, "essenceTrackAnnotation", facts[name], annotationType=label)
    for track in facts.get("audio_tracks") or []:
        if not isinstance(track, dict):
            continue
        audio = _el(inst, "instantiationEssenceTrack")
        _el(audio, "essenceTrackType", "Audio")
        _el(audio, "essenceTrackIdentifier", track.get("stream"), source="stream index")
        if track.get("codec"):
            _el(audio, "essenceTrackEncoding", track["codec"])
        if track.get("sample_rate"):
            _el(audio, "essenceTrackSamplingRate", track["sample_rate"], unitsOfMeasure="Hz")
        if track.get("channels"):
            _el(audio, "essenceTrackAnnotation", track["channels"], annotationType="channels")


def document(record: AssetRecord) -> etree._Element:
    root = etree.Element(f"{{{NS}}}pbcoreDescriptionDocument", nsmap={None: NS, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", SCHEMA_LOCATION)
    _el(root, "pbcoreAssetType", "Moving Image")
    _el(root, "pbcoreIdentifier", record.asset_id, source="archivist sha256")
    _el(root, "pbcoreIdentifier", record.asset.get("uri"), source="URI")
    _el(root, "pbcoreTitle", title(record))
    for label, origin in subjects(record):
        _el(root, "pbcoreSubject", label, subjectType=origin, source="archivist")
    _el(
        root,
        "pbcoreDescription",
        f"{len(record.shots)} shots, described by archivist (machine-generated).",
        descriptionType="summary",
    )
    seconds = duration(record)
    for copy in copies(record):
        _instantiation(root, copy.kind, copy.identifier, copy.location, copy.facts, seconds)
    if record.qc is not None:
        _el(root, "pbcoreAnnotation", record.qc.get("status"), annotationType="QC status")
    _el(
        root,
        "pbcoreAnnotation",
        record.asset.get("pipeline_version"),
        annotationType="archivist pipeline version",
    )
    for number, shot in enumerate(record.shots, start=1):
        _shot_part(root, number, shot, record)
    return root


def _shot_part(root: etree._Element, number: int, shot: Any, record: AssetRecord) -> None:
    row = shot.shot
    start, end = timestamp(float(row.get("start_s") or 0)), timestamp(float(row.get("end_s") or 0))
    part = _el(root, "pbcorePart", partType="shot", startTime=start, endTime=end)
    _el(part, "pbcoreIdentifier", row["shot_id"], source="archivist shot id")
    _el(part, "pbcoreTitle", f"Shot {number}")
    for tag in shot.tags:
        kind = "on-screen text" if tag.get("kind") == "text" else tag_origin(tag)
        _el(part, "pbcoreSubject", tag["label"], subjectType=kind, source=tag.get("model"))
    made = generated(record, shot)
    _el(
        part,
        "pbcoreDescription",
        (shot.caption or {}).get("caption") or f"Shot {number}",
        descriptionType="caption",
        startTime=start,
        endTime=end,
        annotation=made.caption_note(),
    )
    if shot.transcript:
        _el(
            part,
            "pbcoreDescription",
            shot.transcript,
            descriptionType="transcript",
            startTime=start,
            endTime=end,
            annotation=made.transcript_note(),
        )
    note = f"{made.caption_method} / {made.version}"
    _el(part, "pbcoreAnnotation", note, annotationType="machine-generated")


def to_bytes(record: AssetRecord) -> bytes:
    return etree.tostring(document(record), xml_declaration=True, encoding="UTF-8", pretty_print=True)
