"""IIIF Presentation 3 manifests of audiovisual assets, built with iiif-prezi3's models.

One Canvas per asset, as long as the asset (`duration`) and as large as the picture
(`width`, `height`); the access copy (or, where none was made, the source) paints it; each
shot is a Range (the viewer's table of contents) over its time fragment (`#t=start,end`);
each shot's caption is a supplementing annotation over its fragment, and the transcript and
caption WebVTT sidecars supplement the whole Canvas; the first shot's keyframe is the
thumbnail. A Collection lists the manifests of several assets.

Every id is a URL under `base_url`, where `archivist serve` answers them (`exports.http`):
`/iiif/{asset}/manifest.json`, `/media/video/{asset}` (or `/media/source/{asset}`),
`/media/keyframes/{shot}`, `/vtt/{asset}/{kind}.vtt`.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from typing import Any

from iiif_prezi3 import (
    Annotation,
    AnnotationBody,
    AnnotationPage,
    Canvas,
    CanvasRef,
    Collection,
    Manifest,
    ManifestRef,
    Range,
    TextualBody,
)

from exports.record import AssetRecord, duration, title

MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
}


def _label(text: str) -> dict[str, list[str]]:
    return {"none": [text]}


def manifest_url(base_url: str, asset_id: str) -> str:
    return f"{base_url.rstrip('/')}/iiif/{asset_id}/manifest.json"


def collection_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/iiif/collection.json"


def picture_size(record: AssetRecord) -> tuple[int, int] | None:
    """(width, height) of what a viewer plays: the access copy's, else the source's."""
    for row in (record.remaster("access"), record.qc, record.asset):
        if row and row.get("width") and row.get("height"):
            return int(row["width"]), int(row["height"])
    return None


def painting_body(record: AssetRecord, base_url: str, size: tuple[int, int] | None) -> AnnotationBody:
    """The access copy as served, or the source (as served too) where there is none.

    Never the source's own URI: a viewer on a web page may not load a `file://` one (Chromium:
    "Not allowed to load local resource"), and cannot read the archive's bucket."""
    base = base_url.rstrip("/")
    body: dict[str, Any] = {"type": "Video", "duration": duration(record)}
    if record.remaster("access") is not None:
        body.update(id=f"{base}/media/video/{record.asset_id}", format="video/mp4")
    else:
        body["id"] = f"{base}/media/source/{record.asset_id}"
        media_type = MEDIA_TYPES.get(posixpath.splitext(str(record.asset["uri"]))[1].lower())
        if media_type is not None:
            body["format"] = media_type
    if size is not None:
        body["width"], body["height"] = size
    return AnnotationBody(**body)


def _fragment(canvas_id: str, start: Any, end: Any, length: float) -> str:
    """The Canvas's time from `start` to `end`, within its `length`: Presentation 3 says a
    fragment must not reach past the Canvas's duration, and a shot's end (its last frame plus
    one frame's time) can, where the container says the file is shorter than its picture."""
    first = min(max(float(start or 0), 0.0), length) if length > 0 else max(float(start or 0), 0.0)
    last = max(float(end or 0), first)
    if length > 0:
        last = min(last, length)
    return f"{canvas_id}#t={first:.3f},{last:.3f}"


def manifest(record: AssetRecord, base_url: str) -> Manifest:
    base = base_url.rstrip("/")
    root = f"{base}/iiif/{record.asset_id}"
    canvas_id = f"{root}/canvas/1"
    size = picture_size(record)
    length = duration(record)
    canvas_fields: dict[str, Any] = {
        "id": canvas_id,
        "label": _label(title(record)),
        "duration": length,
    }
    if size is not None:
        canvas_fields["width"], canvas_fields["height"] = size
    canvas = Canvas(**canvas_fields)
    painting = Annotation(
        id=f"{canvas_id}/annotation/painting",
        motivation="painting",
        body=painting_body(record, base, size),
        target=canvas_id,
    )
    canvas.items = [AnnotationPage(id=f"{canvas_id}/page/painting", items=[painting])]
    canvas.annotations = [
        AnnotationPage(
            id=f"{canvas_id}/page/supplementing", items=_supplementing(record, base, canvas_id, length)
        )
    ]
    thumbnails = _thumbnails(record, base)
    if thumbnails:
        canvas.thumbnail = thumbnails[:1]
    shots = [
        Range(
            id=f"{root}/range/shot-{number}",
            label=_label(_shot_label(number, shot.caption)),
            items=[
                CanvasRef(
                    id=_fragment(canvas_id, shot.shot.get("start_s"), shot.shot.get("end_s"), length),
                    type="Canvas",
                )
            ],
        )
        for number, shot in enumerate(record.shots, start=1)
    ]
    result = Manifest(
        id=manifest_url(base, record.asset_id),
        label=_label(title(record)),
        metadata=_metadata(record),
        items=[canvas],
    )
    if thumbnails:
        result.thumbnail = thumbnails[:1]
    if shots:
        result.structures = [Range(id=f"{root}/range/shots", label=_label("Shots"), items=shots)]
    return result


def _shot_label(number: int, caption: dict[str, Any] | None) -> str:
    text = (caption or {}).get("caption")
    return f"Shot {number}" + (f": {text}" if text else "")


def _thumbnails(record: AssetRecord, base: str) -> list[AnnotationBody]:
    return [
        AnnotationBody(id=f"{base}/media/keyframes/{shot.shot['shot_id']}", type="Image", format="image/jpeg")
        for shot in record.shots
        if shot.shot.get("keyframe_uri")
    ]


def _supplementing(record: AssetRecord, base: str, canvas_id: str, length: float) -> list[Annotation]:
    notes: list[Annotation] = []
    tracks = [("captions", "Shot captions (machine-generated)")]
    if record.transcript:
        tracks.insert(0, ("transcript", "Transcript (machine-generated)"))
    for kind, label in tracks:
        body: dict[str, Any] = {
            "id": f"{base}/vtt/{record.asset_id}/{kind}.vtt",
            "type": "Text",
            "format": "text/vtt",
            "label": _label(label),
        }
        language = next((s.get("language") for s in record.transcript if s.get("language")), None)
        if kind == "transcript" and language:
            body["language"] = language
        notes.append(
            Annotation(
                id=f"{canvas_id}/annotation/{kind}-vtt",
                motivation="supplementing",
                body=AnnotationBody(**body),
                target=canvas_id,
            )
        )
    for number, shot in enumerate(record.shots, start=1):
        text = (shot.caption or {}).get("caption")
        if not text:
            continue
        notes.append(
            Annotation(
                id=f"{canvas_id}/annotation/caption-{number}",
                motivation="supplementing",
                body=TextualBody(type="TextualBody", value=text, format="text/plain"),
                target=_fragment(canvas_id, shot.shot.get("start_s"), shot.shot.get("end_s"), length),
            )
        )
    return notes


def _metadata(record: AssetRecord) -> list[dict[str, Any]]:
    pairs = [("Asset id (sha256 of the file)", record.asset_id), ("Status", record.asset.get("status"))]
    pairs += [("Shots", str(len(record.shots))), ("Pipeline version", record.asset.get("pipeline_version"))]
    return [{"label": _label(k), "value": _label(str(v))} for k, v in pairs if v is not None]


def collection(records: Sequence[AssetRecord], base_url: str, label: str = "archivist") -> Collection:
    base = base_url.rstrip("/")
    return Collection(
        id=collection_url(base),
        label=_label(label),
        items=[
            ManifestRef(id=manifest_url(base, r.asset_id), type="Manifest", label=_label(title(r)))
            for r in records
        ],
    )


def to_bytes(resource: Manifest | Collection) -> bytes:
    """The resource as IIIF JSON-LD (with its `@context`), indented for people who read it."""
    return (json.dumps(json.loads(resource.json()), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
