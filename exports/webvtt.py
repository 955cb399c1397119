"""WebVTT sidecars of an asset: its transcript, its shots' captions, and a chapter per shot.

Built with webvtt-py's models (`Caption`, `WebVTT`), so timestamps and the file's framing are
the library's, not a template's. Cue text is escaped as WebVTT requires (`&`, `<`, `>`); a
transcript segment whose row names a speaker gets a voice span (`<v Speaker>`).
"""

from __future__ import annotations

import html
import io
from typing import Any

import webvtt

from exports.record import AssetRecord

KINDS = ("transcript", "captions", "chapters")
"""The sidecars: `transcript` (what is said), `captions` (what each shot shows), `chapters` (the
shots, for a player's chapter menu)."""


class UnknownTrackError(LookupError):
    pass


def timestamp(seconds: float) -> str:
    """`HH:MM:SS.mmm`, as WebVTT writes time."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _escape(text: str) -> str:
    return html.escape(" ".join(text.split()), quote=False)


def _cue(identifier: str, start: Any, end: Any, text: str) -> webvtt.Caption | None:
    first, last = float(start or 0.0), float(end or 0.0)
    if not text or last <= first:
        return None
    return webvtt.Caption(timestamp(first), timestamp(last), text, identifier=identifier)


def transcript_cues(record: AssetRecord) -> list[webvtt.Caption]:
    cues = []
    for i, segment in enumerate(record.transcript):
        text = _escape(segment.get("text") or "")
        speaker = segment.get("speaker")
        if text and speaker:
            text = f"<v {_escape(str(speaker))}>{text}</v>"
        cue = _cue(f"segment-{segment.get('segment_index', i)}", segment["start_s"], segment["end_s"], text)
        if cue is not None:
            cues.append(cue)
    return cues


def caption_cues(record: AssetRecord) -> list[webvtt.Caption]:
    cues = []
    for shot in record.shots:
        caption = (shot.caption or {}).get("caption")
        cue = _cue(
            shot.shot["shot_id"], shot.shot.get("start_s"), shot.shot.get("end_s"), _escape(caption or "")
        )
        if cue is not None:
            cues.append(cue)
    return cues


def chapter_cues(record: AssetRecord) -> list[webvtt.Caption]:
    cues = []
    for number, shot in enumerate(record.shots, start=1):
        caption = (shot.caption or {}).get("caption")
        title = f"Shot {number}" + (f": {caption}" if caption else "")
        cue = _cue(f"shot-{number}", shot.shot.get("start_s"), shot.shot.get("end_s"), _escape(title))
        if cue is not None:
            cues.append(cue)
    return cues


CUES = {"transcript": transcript_cues, "captions": caption_cues, "chapters": chapter_cues}


def render(record: AssetRecord, kind: str) -> bytes:
    """The `kind` sidecar of the asset, as UTF-8 WebVTT (a header and no cues when there is nothing)."""
    if kind not in CUES:
        raise UnknownTrackError(f"no WebVTT track {kind!r}: the tracks are {', '.join(KINDS)}")
    document = webvtt.WebVTT(captions=CUES[kind](record))
    buffer = io.StringIO()
    document.write(buffer)
    return buffer.getvalue().encode("utf-8")
