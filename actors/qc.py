"""A preservation QC record per asset: what QCTools and MediaConch tell an archivist about a file.

The qc stage decodes each file once, whole: the video at a small analysis size (plus a few runs
of frames at full height for combing), every audio track, and keeps running figures only, so
memory is bounded whatever the length. The record (``catalog.schema.QC_RECORD``) says what the
file is, whether it decodes whole (declared against decoded frames, decode errors with their
positions, timestamp gaps and jumps), what its picture and sound do, and whether it meets the
job's policy: a list of rules such as ``{"field": "video_codec", "in": ["ffv1"]}``, like a
MediaConch policy. A file that cannot be read is a record with ``status='failed'`` and its
``error``, never an exception.

``inspect_file`` runs the whole check on one file without Ray (``archivist qc FILE``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import av
import av.logging
import pyarrow as pa
import pyarrow.compute as pc
from av.bitstream import BitStreamFilterContext
from pydantic import Field

from actors.demux import PacketReader
from actors.keyframes import append_columns
from actors.probe import MediaError, open_media
from actors.qc_audio import AudioMeter
from actors.qc_policy import PolicyRule, check_policy
from actors.qc_video import VideoMeter, stream_facts
from actors.stage import RUNTIME, Owned, Resources, Stage, StageParams
from catalog.rows import first_per_asset
from catalog.schema import QC, QC_COLUMN, QC_RECORD

log = logging.getLogger(__name__)

RECORD_FIELDS = [f.name for f in QC_RECORD]


class QCParams(StageParams):
    analysis_width: int = Field(160, ge=32, le=640, description="width frames are measured at")
    field_frames: int = Field(
        48, ge=0, le=2000, description="frames measured at full height for combing, in 4 runs over the file"
    )
    black_luma: float = Field(
        0.10, ge=0, le=1, description="darkest share of the luma range that counts as black (blackdetect)"
    )
    black_share: float = Field(0.98, gt=0, le=1, description="share of a frame that is black for it to be")
    black_min_s: float = Field(0.5, ge=0, description="shortest black span reported, seconds")
    freeze_diff: float = Field(
        0.26, ge=0, le=255, description="mean luma change (8-bit levels) under which a frame repeats the last"
    )
    freeze_min_s: float = Field(1.0, ge=0, description="shortest frozen span reported, seconds")
    silence_dbfs: float = Field(-60.0, ge=-120, le=0, description="level under which audio is silence")
    silence_min_s: float = Field(1.0, ge=0, description="shortest silence reported, seconds")
    clip_level: float = Field(
        0.999, gt=0.5, le=1, description="amplitude (1: full scale) that counts as clipped"
    )
    max_events: int = Field(
        50, ge=1, le=10_000, description="most errors, gaps and spans listed of each kind"
    )
    decode_threads: int = Field(0, ge=0, description="0: FFmpeg chooses", json_schema_extra=RUNTIME)
    policy: list[PolicyRule] = Field(
        default_factory=list, description="rules every file must meet, like a MediaConch policy"
    )


def empty_record() -> dict[str, Any]:
    return {name: None for name in RECORD_FIELDS}


def inspect_file(
    uri: str, params: QCParams | None = None, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The QC record of one file (``QC_RECORD`` fields); never raises for a bad file."""
    params = params or QCParams()
    started = time.perf_counter()
    record = empty_record()
    try:
        with open_media(uri, storage_options) as container:
            record.update(_measure(container, params))
    except Exception as exc:  # bad input is data: the record says what failed
        if not isinstance(exc, (MediaError, av.FFmpegError, OSError)):
            log.warning("qc: unexpected error on %s", uri, exc_info=True)
        record.update(status="failed", error=f"{type(exc).__name__}: {str(exc).strip() or repr(exc)}")
    failures = check_policy(record, params.policy)
    record.update(
        policy_passed=not failures,
        policy_failures=failures,
        qc_seconds=round(time.perf_counter() - started, 3),
    )
    return record


def _measure(container: Any, params: QCParams) -> dict[str, Any]:
    cover = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not (s.disposition & cover)]
    tracks = list(container.streams.audio)
    record: dict[str, Any] = {"container": container.format.name, "audio_track_count": len(tracks)}
    if container.duration is not None:
        record["duration_s"] = container.duration / av.time_base
    if not videos and not tracks:
        raise MediaError("no video or audio stream to check")
    video = videos[0] if videos else None
    meter = None
    if video is not None:
        facts = stream_facts(container, video)
        record.update({k: v for k, v in facts.items() if v is not None or k not in record})
        video.thread_type = "AUTO"
        if params.decode_threads:
            video.thread_count = params.decode_threads
        meter = VideoMeter(video, facts, params)
    audio = {s.index: AudioMeter(s, params) for s in tracks}
    errors: list[dict[str, Any]] = []
    count = _decode(container, [s for s in (video, *tracks) if s is not None], meter, audio, errors, params)
    if meter is not None:
        record.update(meter.result())
        if meter.placeholders and record.get("frames_declared"):
            record["frames_declared"] -= meter.placeholders  # pictures, not the AVI's chunks
        declared, decoded = record.get("frames_declared"), meter.frames
        if declared and decoded < declared - _tolerance(video, declared) and not _longer_sound(video, audio):
            count += 1
            if len(errors) < params.max_events:
                errors.append(
                    _event(
                        meter.stream.index,
                        decoded,
                        meter.end_s,
                        f"the video ends after {decoded} of {declared} declared frames",
                    )
                )
        if decoded == 0:
            record.update(status="failed", error="no video frame could be decoded")
    record["audio_tracks"] = [a.result() for a in audio.values()]
    record.update(decode_error_count=count, decode_errors=errors)
    if record.get("status") is None:
        record["status"] = "damaged" if count else "ok"
        record["error"] = errors[0]["message"] if errors else None
    return record


def _longer_sound(video: Any, audio: dict[int, AudioMeter]) -> bool:
    """Whether a count estimated from the container's duration is the sound's, not the
    picture's: the container lasts as long as its longest stream, and a capture's sound often
    runs on after the picture (Matroska keeps no per-stream duration to tell them apart)."""
    if video.frames or video.duration is not None:
        return False
    heard = max((a.decoded / a.rate for a in audio.values() if a.rate), default=0.0)
    duration = video.container.duration
    return duration is not None and heard >= 0.98 * duration / av.time_base


def _tolerance(stream: Any, declared: int) -> int:
    """Frames a count may lack before it is damage: none where the container counts them, a
    little where the count is estimated from a duration."""
    return 0 if stream.frames else max(2, round(0.05 * declared))


def _event(stream: int, frame: int, seconds: float, message: str) -> dict[str, Any]:
    return {"stream": stream, "frame": frame, "seconds": round(seconds, 4), "message": message.strip()}


def _decode(
    container: Any,
    streams: list[Any],
    meter: VideoMeter | None,
    audio: dict[int, AudioMeter],
    errors: list[dict[str, Any]],
    params: QCParams,
) -> int:
    """Decode every packet of these streams once (``actors.demux.PacketReader``, FFmpeg's error
    messages counted as errors), feeding the meters; returns how many decode errors there were
    (``errors`` gets the first ``max_events``, with their positions)."""
    unpack = _AviVideo(meter.stream, container) if meter is not None else None
    unpack = unpack if unpack is not None and unpack.active else None
    reader = PacketReader(
        container,
        streams,
        video=meter.stream if meter is not None else None,
        max_bad_packets=None,  # QC reads to the end: every damaged stretch is counted
        max_errors=params.max_events,
        decoders={unpack.index: unpack.decode} if unpack is not None else {},
        capture_logs=True,
        clock=(lambda: meter.end_s) if meter is not None else (lambda: 0.0),
    )
    for index, frame in reader:
        if meter is not None and index == meter.stream.index:
            if meter.add(frame):
                reader.note(index, float(frame.time or 0.0), "frame decoded damaged (concealed)")
        elif index in audio:
            audio[index].add(frame)
    errors.extend(e.as_dict() for e in reader.errors)
    if unpack is not None and meter is not None:
        meter.placeholders = unpack.placeholders
    return reader.error_count


class _AviVideo:
    """An AVI's video as players read it. DivX packed B-frames are unpacked before decoding
    (``mpeg4_unpack_bframes``), and the index entries the demuxer skips (empty chunks: a
    capture's dropped frame, or a packer's placeholder) are counted, since the AVI's frame
    count includes them though they hold no picture; a dropped frame still shows as a gap in
    the timestamps, which count chunks."""

    def __init__(self, stream: Any, container: Any) -> None:
        self.stream, self.index = stream, stream.index
        self.active = "avi" in container.format.name
        self.placeholders = 0
        self.last_dts: int | None = None
        self.filter = None
        if self.active and stream.codec_context.name == "mpeg4":
            self.filter = BitStreamFilterContext("mpeg4_unpack_bframes", stream)

    def decode(self, packet: Any) -> list[Any]:
        flushing = not packet.size
        if packet.dts is not None:
            if self.last_dts is not None and packet.dts > self.last_dts + 1:
                self.placeholders += packet.dts - self.last_dts - 1
            self.last_dts = packet.dts
        if self.filter is None:
            return list(packet.decode())
        ctx = self.stream.codec_context
        frames = [f for q in self.filter.filter(None if flushing else packet) for f in ctx.decode(q)]
        frames += list(ctx.decode(None)) if flushing else []
        for frame in frames:  # frames from the codec context carry no time base of their own
            frame.time_base = frame.time_base or self.stream.time_base
        return frames


class QualityControl(Stage):
    """A preservation QC record per asset (QCTools/MediaConch-like), checked against a policy.

    Adds `qc` (the record) to asset rows; `catalog_rows` makes it the asset's `qc` row."""

    name = "qc"
    Params = QCParams
    level = "asset"
    reads = ("asset_id", "uri")
    writes = QC_COLUMN
    owns = (Owned("qc"),)
    resources = Resources(batch_size=1)
    context = ("storage_options",)
    enabled_by_default = False  # a second whole decode of every file: asked for, not assumed

    def setup(self, *, storage_options: dict[str, Any] | None = None, **_params: Any) -> None:
        self.storage_options = dict(storage_options or {})

    def inspect(self, uri: str) -> dict[str, Any]:
        return inspect_file(uri, self.params, self.storage_options)  # type: ignore[arg-type]

    def __call__(self, batch: pa.Table) -> pa.Table:
        records = [self.inspect(str(uri)) for uri in batch["uri"].to_pylist()]
        return append_columns(batch, QC_COLUMN, {"qc": records})

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        """One `qc` row per asset: its record, beside its id and URI."""
        per_asset = first_per_asset(rows)
        per_asset = per_asset.filter(pc.is_valid(per_asset["qc"]))
        records = pa.Table.from_struct_array(per_asset["qc"].combine_chunks())
        table = pa.table({"asset_id": per_asset["asset_id"], "uri": per_asset["uri"]})
        for name in records.column_names:
            table = table.append_column(records.schema.field(name), records[name])
        names = [f.name for f in QC if f.name not in ("run_id", "pipeline_version")]
        return {"qc": table.select(names).cast(pa.schema([QC.field(n) for n in names]))}


def record_lines(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The record as (what, value) lines a person reads, the audio tracks one line each."""

    def spans(items: list[dict[str, float]] | None) -> str:
        return ", ".join(f"{s['start_s']:.2f}–{s['end_s']:.2f} s" for s in items or []) or "none"

    video = f"{record.get('video_codec')} ({record.get('video_profile') or 'no profile'})"
    picture = (
        f"{record.get('width')}x{record.get('height')} @ {record.get('fps') or 0:.3f} fps, "
        f"{record.get('pix_fmt')} {record.get('bit_depth')}-bit {record.get('chroma_subsampling')}"
    )
    lines = [
        ("status", f"{record.get('status')}" + (f": {record['error']}" if record.get("error") else "")),
        ("container", f"{record.get('container')}, {record.get('duration_s') or 0:.2f} s"),
        ("video", video),
        ("picture", picture),
        (
            "field order",
            f"{record.get('field_order')} (declared {record.get('field_order_declared')}, "
            f"measured {record.get('field_order_measured')}, combing {record.get('combing') or 0:.4f})",
        ),
        (
            "aspect",
            f"SAR {record.get('sample_aspect_ratio') or 'unset'}, DAR {record.get('display_aspect_ratio')}",
        ),
        (
            "colour",
            f"primaries {record.get('color_primaries')}, transfer {record.get('color_transfer')}, "
            f"matrix {record.get('color_matrix')}, range {record.get('color_range')}",
        ),
        ("timecode", str(record.get("timecode") or "none")),
        ("frames", f"{record.get('frames_decoded')} decoded of {record.get('frames_declared')} declared"),
        (
            "decode errors",
            str(record.get("decode_error_count") or 0)
            + "".join(
                f"\n  frame {e['frame']} ({e['seconds']:.2f} s): {e['message']}"
                for e in record.get("decode_errors") or []
            ),
        ),
        (
            "timestamps",
            f"{record.get('timestamp_gap_count') or 0} gaps, {record.get('timestamp_jump_count') or 0} jumps",
        ),
        ("black", spans(record.get("black_spans"))),
        ("frozen", spans(record.get("frozen_spans"))),
        (
            "luma",
            f"{record.get('luma_min')}–{record.get('luma_max')}, outside {record.get('broadcast_range')}: "
            + (
                f"{100 * record['luma_out_of_range']:.2f}%"
                if record.get("luma_out_of_range") is not None
                else "not checked (full range or RGB)"
            ),
        ),
    ]
    for track in record.get("audio_tracks") or []:
        lines.append(
            (
                f"audio {track['stream']}",
                f"{track['codec']} {track['channels']} ch {track['sample_rate']} Hz, "
                f"peak {track['peak_dbfs']} dBFS, RMS {track['rms_dbfs']} dBFS, "
                f"{track['clipped_samples']} clipped, silence {spans(track['silence_spans'])}",
            )
        )
    policy = (
        "passed"
        if record.get("policy_passed")
        else "FAILED: " + "; ".join(record.get("policy_failures") or [])
    )
    lines += [("policy", policy), ("qc seconds", f"{record.get('qc_seconds')}")]
    return lines
