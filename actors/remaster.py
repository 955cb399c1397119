"""The remaster stage: restore and upscale an asset at full resolution, write master and access copy.

Frames never leave this actor: it decodes, restores, upscales and encodes in
one streaming pass and hands back only URIs and figures (``REMASTER`` rows).
Memory is bounded by the restoration windows, the tile of the upscaler and
the encoders' lookahead, never by the length of the video.

Before anything is written the asset is surveyed: its first frames are
decoded to learn its field order (declared and measured, ``actors.fields``)
and whether its timestamps can be trusted (``actors.av_timing``). For
``auto`` (or a list of operations whose parameters come from the shot) a
measuring pass follows, at most ``measure_frames`` frames in full and every
frame's brightness, so the plan is fixed before the first frame is restored.
The writing pass makes:

* the preservation master, FFV1 (level 3, intra-only, slice CRCs) in
  Matroska, in RGB at the source's bit depth (``bgr0`` for 8 bits,
  ``gbrp10le``/``gbrp12le``/``gbrp16le`` deeper): no chroma subsampling, and
  a 10-bit source keeps its 10 bits (restoration and upscaling work on 8 bits;
  the source's bits below those 8 are carried over, interpolated when
  upscaled). It keeps the source's sample aspect ratio and field order, and
  every audio track as the source's packets, byte for byte;
* the access copy, H.264 (``crf``, the default, for reach) or AV1 (SVT-AV1,
  ``av1_crf``/``av1_preset``, with film-grain synthesis at ``film_grain``;
  see ``actors.access_codecs``) in MP4, yuv420p BT.709 with the index up
  front (``+faststart``), the source's sample aspect ratio, and every audio
  track playable in a browser: AAC copied, anything else (PCM, MP2, AC-3, ...)
  transcoded to AAC (``actors.remaster_audio``). yuv420p needs even sides: an
  odd width or height is padded by repeating the last column or row.

Interlaced sources: an archivist expects the master to be the tape's picture,
fields and all, so the master stays at the source's size with its fields
woven as they were, restored per field (each field parity a half-height
stream of its own; deblocking, whose block grid is the frame's, is skipped),
and is never upscaled: upscaling woven fields smears them together, and
upscaling fields apart would put a new, made-up line structure into the
preservation copy. The access copy, a viewing copy, is deinterlaced with
bwdif (one frame per frame) and then upscaled. The decisions say so.

Both outputs keep each source frame's timestamp (variable frame rate
included; the Matroska muxer rounds to its millisecond clock). The noise,
sharpness and flicker before and after are measured at one size, the access
picture's: the source (deinterlaced if interlaced) brought to that size by
bicubic interpolation, what a player would show, against the output. The
access copy, decoded again once written, is scored against the source at that
size (VMAF, PSNR, SSIM: ``actors.remaster_quality``). Each
output is written to a staging file and only then renamed into place (local)
or uploaded in one PUT (object store), and a sidecar manifest beside it
records the source hash, operations, model, fields, timing, audio and output
hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np
import pyarrow as pa
from av.video.reformatter import ColorRange, Colorspace

from actors.access_codecs import AccessEncoding
from actors.av_aspect import set_stream_sar
from actors.av_timing import Timeline, frame_rate
from actors.fields import Deinterlacer, FieldMeter, FieldRestorer, decide, declared_order
from actors.fingerprint import sha256_of
from actors.fixity import MASTER_POLICY, FrameChecksums, check_master, checksums_uri, write_checksums
from actors.probe import open_media, probe_container, video_stream
from actors.qc_policy import PolicyRule
from actors.remaster_audio import add_tracks
from actors.remaster_outputs import (
    Output,
    RemasterError,
    audio_refused,
    bit_depth,
    close,
    file_sha256,
    is_local,
    master_pix_fmt,
    publish,
    ratio,
    staged_outputs,
    write_frame,
)
from actors.remaster_quality import access_against_source
from actors.remaster_retime import AccessTiming
from actors.restore import Plan, Restorer, ShotMeter, check_params, make_plan, parse_ops
from actors.upscale import Upscaler
from catalog.schema import REMASTER
from catalog.storage import write_atomic

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "archivist.remaster.manifest/1"
SURVEY_FRAMES = 24
"""Frames decoded before writing to learn the field order and whether the timestamps rise."""
_FIELD_ORDER_CODE = {"progressive": 1, "tff": 2, "bff": 3}  # AVFieldOrder


def _resized(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.shape[1] == size[0] and frame.shape[0] == size[1]:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC)


def _picture(frame: av.VideoFrame, deep: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The 8-bit RGB picture restoration works on and, for a deeper source, the bits below it.

    For a deep source the 8 bits are the 16-bit conversion rounded (not the decoder's dithered
    8-bit output), so that the residual is what lies between two 8-bit levels: at most half a level.
    """
    if not deep:
        return frame.to_ndarray(format="rgb24"), None
    wide = frame.to_ndarray(format="rgb48le").astype(np.int32)
    rgb = ((wide + 128) // 257).astype(np.uint8)
    return rgb, (wide - rgb.astype(np.int32) * 257).astype(np.float32)


_NOT_PER_FIELD = {
    "deblock": "a codec's block grid is the frame's, not a field's",
    "artefacts": "the network learned whole frames, not half-height fields",
}
"""Operations an interlaced asset, restored field by field, does without, and why."""


class Remasterer:
    """Ray Data stage: rows of ``asset_id``/``uri`` in, ``REMASTER`` rows (master and access) out.

    ``restore`` is ``"auto"``, ``"off"`` or operation names (``"deflicker,denoise"``);
    ``restore_params`` sets parameters per operation (``{"colorize": {"reference": uri}}``).
    The upscaler is loaded once here; a bad job spec or missing weights fail here, not per asset.
    """

    def __init__(
        self,
        *,
        out_root: str,
        storage_options: dict[str, Any] | None = None,
        restore: str | Sequence[str] = "auto",
        restore_params: Mapping[str, Mapping[str, Any]] | None = None,
        upscale: int = 2,
        upscale_method: str = "network",
        weights: str | None = None,
        device: str | None = None,
        crf: int = 18,
        preset: str = "medium",
        access_codec: str = "h264",
        film_grain: int = 0,
        av1_crf: int | None = None,
        av1_preset: int | None = None,
        quality_frames: int = 16,
        retime_fps: float | None = None,
        source_fps: Mapping[str, float] | None = None,
        measure_frames: int = 48,
        tile: int | None = None,
        work_dir: str | None = None,
        master_policy: Sequence[PolicyRule] = MASTER_POLICY,
    ) -> None:
        self.out_root = out_root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.selection = parse_ops(restore)
        self.restore_params = check_params(restore_params)
        self.upscaler = Upscaler(upscale, method=upscale_method, weights=weights, device=device, tile=tile)
        self.access = AccessEncoding.of(
            access_codec,
            crf=crf,
            preset=preset,
            film_grain=film_grain,
            av1_crf=av1_crf,
            av1_preset=av1_preset,
        )
        self.quality_frames = max(0, int(quality_frames))
        self.retime_fps = retime_fps
        self.source_fps = dict(source_fps or {})
        self.measure_frames = max(1, int(measure_frames))
        self.work_dir = work_dir
        self.master_policy = list(master_policy)
        self.local_output = is_local(self.out_root)

    def __call__(self, batch: pa.Table | Mapping[str, Any]) -> pa.Table:
        table = batch if isinstance(batch, pa.Table) else pa.table(dict(batch))
        rows: list[dict[str, Any]] = []
        # Rows may come one per shot; an asset is remastered once, whole.
        assets = dict.fromkeys(
            zip(table.column("asset_id").to_pylist(), table.column("uri").to_pylist(), strict=True)
        )
        for asset_id, uri in assets:
            started = time.monotonic()
            try:
                rows.extend(self.remaster(asset_id, uri))
            except Exception as exc:  # one bad asset is a failed row, never a failed batch
                log.warning("remaster of %s failed: %s", uri, exc)
                rows.append(
                    {
                        "asset_id": asset_id,
                        "source_uri": uri,
                        "status": "failed",
                        "error": f"{type(exc).__name__}: {exc}",
                        "seconds": time.monotonic() - started,
                    }
                )
        return pa.Table.from_pylist(rows, schema=REMASTER)

    # -- one asset -------------------------------------------------------------------------------

    def remaster(self, asset_id: str, uri: str) -> list[dict[str, Any]]:
        """Both outputs of one asset, published with their manifests; raises on any failure."""
        started = time.monotonic()
        source_sha256 = sha256_of(uri, self.storage_options)
        survey = self._survey(uri)
        info = survey["info"]
        survey["retime"] = AccessTiming.of(
            uri,
            container_fps=survey["rate"],
            sample_pts=survey["sample_pts"],
            audio_streams=info["audio_streams"],
            retime_fps=self.retime_fps,
            source_fps=self.source_fps,
        )
        frames = info["frame_count"] or round((info["duration_s"] or 0) * survey["rate"])
        stride = max(1, frames // self.measure_frames)
        plan = self._plan(uri, stride, survey["fields"]["interlaced"], survey["bit_depth"] > 8)
        with staged_outputs(
            self.out_root,
            asset_id,
            master_pix_fmt(survey["bit_depth"]),
            local=self.local_output,
            work_dir=self.work_dir,
            access_codec=self.access.codec,
        ) as outputs:
            figures = self._encode(uri, plan, stride, outputs, survey)
            if figures["frames"] == 0:
                raise RemasterError("the video stream decoded to no frames")
            fields = survey["fields"]
            figures["access_vs_source"] = access_against_source(
                uri,
                next(o for o in outputs if o.kind == "access").staging,
                storage_options=self.storage_options,
                size=figures["size"],
                interlaced_order=fields["field_order"] if fields["interlaced"] else None,
                frames=figures["frames"],
                # a retimed copy's frames are not the source's, one for one: nothing to pair
                quality_frames=0 if survey["retime"] else self.quality_frames,
            )
            for output in outputs:
                output.sha256 = file_sha256(output.staging)
            checksums, check = self._check_master(next(o for o in outputs if o.kind == "master"))
            for output in outputs:
                publish(output.staging, output.uri, self.storage_options, local=self.local_output)
        seconds = time.monotonic() - started
        rows = []
        for output in outputs:
            manifest_uri = self._manifest_uri(output.uri)
            manifest = self._manifest(asset_id, uri, source_sha256, survey, plan, output, figures, seconds)
            if output.kind == "access" and survey["retime"]:
                manifest["retime"] = survey["retime"].manifest()
            if output.kind == "master":
                manifest["fixity"] = self._publish_checksums(output.uri, checksums)
                manifest["policy"] = {"rules": len(self.master_policy), "passed": check["policy_passed"]}
            write_atomic(manifest_uri, (json.dumps(manifest, indent=2) + "\n").encode(), self.storage_options)
            rows.append(self._row(asset_id, uri, survey, plan, output, manifest_uri, figures, seconds))
        log.info("remastered %s in %.1f s (%d frames)", uri, seconds, figures["frames"])
        return rows

    def _check_master(self, master: Output) -> tuple[FrameChecksums, dict[str, Any]]:
        """The written master against the policy, before anything is published: a master that
        fails it (not FFV1 v3 with slice CRCs, a frame not a keyframe, a decode error) is an
        error, and no output of the asset is published."""
        checksums, record = check_master(master.staging, self.master_policy)
        if not record["policy_passed"]:
            raise RemasterError("the master fails its policy: " + "; ".join(record["policy_failures"]))
        if len(checksums.frames) != master.frames:
            raise RemasterError(f"the master decodes to {len(checksums.frames)} frames, not {master.frames}")
        return checksums, record

    def _publish_checksums(self, master_uri: str, checksums: FrameChecksums) -> dict[str, Any]:
        """The master's frame checksums beside it; the manifest's record of them."""
        uri = checksums_uri(master_uri)
        write_checksums(uri, checksums, self.storage_options)
        digest = hashlib.sha256(checksums.text().encode()).hexdigest()
        return {
            "frame_checksums_uri": uri,
            "algorithm": "md5",
            "frames": len(checksums.frames),
            "sha256": digest,
        }

    def _survey(self, uri: str) -> dict[str, Any]:
        """What must be known before writing: the description, fields, timestamps, aspect and depth."""
        meter, flags, sample_pts = FieldMeter(), [], []
        with open_media(uri, self.storage_options) as container:
            info = probe_container(container)
            stream = video_stream(container)
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                flags.append(bool(frame.interlaced_frame))
                sample_pts.append(frame.pts)
                meter.add(frame.to_ndarray(format="gray"))
                if len(sample_pts) >= SURVEY_FRAMES:
                    break
            declared = declared_order(stream, flags)
            sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
            rate = frame_rate(stream)
        measured = meter.result()
        order, why = decide(declared, measured["measured"])
        fields = {
            "field_order": order,
            "interlaced": order in ("tff", "bff"),
            "declared": declared,
            "why": why,
            **measured,
        }
        sar = Fraction(sar) if sar and Fraction(sar) > 0 else None
        return {
            "info": info,
            "fields": fields,
            "sample_pts": sample_pts,
            "sar": sar,
            "rate": rate,
            "bit_depth": bit_depth(info["pix_fmt"]),
        }

    def _plan(self, uri: str, stride: int, interlaced: bool, deep: bool) -> Plan:
        """The restoration plan, from a measuring pass over the asset unless restoration is off.

        An interlaced asset is measured on its top fields, the pictures its restoration will see.
        """
        if not (self.selection.auto or self.selection.ops):
            return make_plan({}, self.selection)
        meter = ShotMeter(stride)
        with open_media(uri, self.storage_options) as container:
            stream = video_stream(container)
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                rgb, _ = _picture(frame, deep)  # the picture restoration will see
                meter.add(np.ascontiguousarray(rgb[0::2]) if interlaced else rgb)
        plan = make_plan(meter.result(), self.selection, self.restore_params)
        if interlaced:
            for decision in plan.decisions:
                if decision["op"] in _NOT_PER_FIELD and decision["apply"]:
                    decision["apply"] = False
                    decision["why"] += (
                        "; skipped: interlaced, restored per field, and " + _NOT_PER_FIELD[decision["op"]]
                    )
            plan.ops = [step for step in plan.ops if step["op"] not in _NOT_PER_FIELD]
        return plan

    def _encode(
        self, uri: str, plan: Plan, stride: int, outputs: list[Output], survey: dict[str, Any]
    ) -> dict[str, Any]:
        """The streaming pass: demux, decode, restore, upscale, encode both outputs, carry the audio."""
        fields = survey["fields"]
        interlaced, order = fields["interlaced"], fields["field_order"]
        master, access = outputs
        retime: AccessTiming | None = survey["retime"]
        deep = master.pix_fmt != "bgr0"
        before, after = ShotMeter(stride), ShotMeter(stride)
        if interlaced:
            restorer: Any = FieldRestorer(lambda: Restorer(plan, self.storage_options))
        else:
            restorer = Restorer(plan, self.storage_options)
        pending: deque[tuple[int, np.ndarray | None]] = deque()  # frames inside the restorer
        access_pts: deque[int] = deque()  # frames inside the access copy's deinterlacer
        decoded = 0
        with open_media(uri, self.storage_options) as container:
            stream = video_stream(container)
            stream.thread_type = "AUTO"
            audio = list(container.streams.audio)
            timeline = Timeline(stream, survey["sample_pts"])
            self._open_streams(outputs, stream, audio, survey)
            width, height = stream.codec_context.width, stream.codec_context.height
            size = (width * self.upscaler.factor, height * self.upscaler.factor)  # where figures are taken
            time_base = timeline.time_base
            rate = frame_rate(stream)  # read now: the stream is gone once its container closes
            deinterlace_access = Deinterlacer(width, height, order) if interlaced else None
            deinterlace_source = Deinterlacer(width, height, order) if interlaced else None

            def write_access(upscaled: np.ndarray, pts: int) -> None:
                if retime is None:
                    write_frame(access, upscaled, pts, time_base)
                    return
                for image, ticks in retime.push(upscaled, float(pts * time_base)):
                    write_frame(access, image, ticks, retime.time_base)

            def to_access(picture: np.ndarray, pts: int) -> None:
                upscaled = self.upscaler(picture)
                after.add(upscaled)
                write_access(upscaled, pts)

            def emit(restored: np.ndarray) -> None:
                pts, residual = pending.popleft()
                if deinterlace_access is not None:  # the master keeps its fields, at the source's size
                    write_frame(master, restored, pts, time_base, residual)
                    access_pts.append(pts)
                    for picture in deinterlace_access.push(restored):
                        to_access(picture, access_pts.popleft())
                    return
                upscaled = self.upscaler(restored)
                after.add(upscaled)
                write_frame(master, upscaled, pts, time_base, residual)
                write_access(upscaled, pts)

            for packet in container.demux([stream, *audio]):
                if packet.stream.type == "audio":
                    index = packet.stream.index
                    transcoding = any(output.audio[index].transcode for output in outputs)
                    # decoded once for every output
                    frames = (
                        [f for f in packet.decode() if isinstance(f, av.AudioFrame)] if transcoding else None
                    )
                    for output in outputs:
                        output.audio[index].mux(output.container, packet, frames)
                    continue
                for frame in packet.decode():
                    assert isinstance(frame, av.VideoFrame)  # the only other stream demuxed is audio
                    pts = timeline.stamp(frame.pts)
                    decoded += 1
                    rgb, residual = _picture(frame, deep)
                    for picture in deinterlace_source.push(rgb) if deinterlace_source else [rgb]:
                        before.add(_resized(picture, size))
                    pending.append((pts, residual))
                    for restored in restorer.push(rgb):
                        emit(restored)
            for restored in restorer.flush():
                emit(restored)
            if deinterlace_access is not None and deinterlace_source is not None:
                for picture in deinterlace_access.flush():
                    to_access(picture, access_pts.popleft())
                for picture in deinterlace_source.flush():
                    before.add(_resized(picture, size))
            if retime is not None:
                for image, ticks in retime.flush():
                    write_frame(access, image, ticks, retime.time_base)
            for output in outputs:
                output.container.mux(output.video.encode())
                for track in output.audio.values():
                    track.close(output.container)
                close(output, audio)
        wanted = {"master": decoded, "access": retime.frames if retime else decoded}
        if any(output.frames != wanted[output.kind] for output in outputs):
            raise RemasterError(f"made {wanted} frames but wrote {[o.frames for o in outputs]}")
        return {
            "frames": decoded,
            "fps": float(rate),
            "time_base": str(time_base),
            "timing": timeline.manifest(),
            "measured_at": f"{size[0]}x{size[1]}",
            "size": size,
            "before": before.result(),
            "after": after.result(),
        }

    # -- outputs ---------------------------------------------------------------------------------

    def _open_streams(
        self, outputs: list[Output], source: Any, audio: list[Any], survey: dict[str, Any]
    ) -> None:
        """The video encoder and audio tracks of each output, matching the source's shape and timing."""
        interlaced = survey["fields"]["interlaced"]
        sar = survey["sar"]
        for output in outputs:
            # Upscaling never runs on woven fields: an interlaced master stays at the source's size.
            output.upscale = 1 if (interlaced and output.kind == "master") else self.upscaler.factor
            width = source.codec_context.width * output.upscale
            height = source.codec_context.height * output.upscale
            output.width, output.height = width, height
            if output.kind == "access":
                output.width, output.height = width + width % 2, height + height % 2
            output.field_order = survey["fields"]["field_order"] if output.kind == "master" else "progressive"
            encoder = "ffv1" if output.kind == "master" else self.access.encoder
            retime = survey["retime"] if output.kind == "access" else None
            video = output.container.add_stream(
                encoder, rate=retime.target_fps if retime else frame_rate(source)
            )
            video.width, video.height, video.pix_fmt = output.width, output.height, output.pix_fmt
            video.codec_context.time_base = retime.time_base if retime else source.time_base
            video.codec_context.field_order = _FIELD_ORDER_CODE[output.field_order]
            if sar:  # both axes scale alike, so the sample aspect ratio is the source's at any size
                video.codec_context.sample_aspect_ratio = sar  # MP4 and the H.264 stream take it from here
                if output.kind == "master" and not set_stream_sar(video, sar):  # Matroska from the stream
                    log.warning("the master %s carries its aspect ratio in the manifest only", output.uri)
            if output.kind == "master":
                video.codec_context.gop_size = 1
                video.codec_context.options = {"level": "3", "slicecrc": "1"}
            else:
                video.codec_context.options = self.access.options()
                video.codec_context.colorspace = Colorspace.ITU709
                video.codec_context.color_range = ColorRange.MPEG
            output.video = video
            output.audio = add_tracks(output.container, audio, transcode_unplayable=output.kind == "access")
            try:
                output.container.start_encoding()
            except av.FFmpegError as exc:
                raise audio_refused("start", output, audio, exc) from exc

    @staticmethod
    def _fps(survey: dict[str, Any], output: Output, figures: dict[str, Any]) -> float:
        """The output's frame rate: the source's, or the retimed access copy's."""
        retime = survey["retime"] if output.kind == "access" else None
        return float(retime.target_fps) if retime else figures["fps"]

    @staticmethod
    def _manifest_uri(output_uri: str) -> str:
        return output_uri.rsplit(".", 1)[0] + ".manifest.json"

    def _decisions(self, survey: dict[str, Any], plan: Plan, output: Output) -> dict[str, Any]:
        fields = dict(survey["fields"])
        if fields["interlaced"]:
            fields["restoration"] = (
                "per field: top and bottom fields restored as two half-height streams, "
                "woven back; deblock skipped"
            )
            fields["upscale"] = (
                "master kept at the source's size with its fields; the access copy is "
                f"deinterlaced (bwdif) and then upscaled x{self.upscaler.factor}"
            )
        return {
            "mode": plan.mode,
            "decisions": plan.decisions,
            "measurements": plan.measurements,
            "fields": fields,
            "output_upscale": output.upscale,
        }

    def _manifest(
        self,
        asset_id: str,
        uri: str,
        source_sha256: str,
        survey: dict[str, Any],
        plan: Plan,
        output: Output,
        figures: dict[str, Any],
        seconds: float,
    ) -> dict[str, Any]:
        info = survey["info"]
        return {
            "schema": MANIFEST_SCHEMA,
            "asset_id": asset_id,
            "source": {
                "uri": uri,
                "sha256": source_sha256,
                "video_codec": info["video_codec"],
                "pix_fmt": info["pix_fmt"],
                "bit_depth": survey["bit_depth"],
                "width": info["width"],
                "height": info["height"],
                "sample_aspect_ratio": ratio(survey["sar"]),
                "field_order": survey["fields"]["field_order"],
                "audio_streams": info["audio_streams"],
            },
            "output": {
                "uri": output.uri,
                "kind": output.kind,
                "sha256": output.sha256,
                "codec": output.codec,
                "pix_fmt": output.pix_fmt,
                "bit_depth": bit_depth(output.pix_fmt),
                "width": output.width,
                "height": output.height,
                "sample_aspect_ratio": ratio(survey["sar"]),
                "field_order": output.field_order,
                "frame_count": output.frames,
                "fps": self._fps(survey, output, figures),
                "time_base": figures["time_base"],
                "timing": figures["timing"],
                "audio": [track.manifest() for track in output.audio.values()],
                "encoder": self.access.manifest()
                if output.kind == "access"
                else {"level": 3, "gop": 1, "slicecrc": True},
            },
            "restoration": plan.as_dict(),
            "fields": self._decisions(survey, plan, output)["fields"],
            "upscale": {**self.upscaler.manifest(), "applied": output.upscale},
            "metrics": {
                "measured_at": figures["measured_at"],
                "before": figures["before"],
                "after": figures["after"],
                "access_vs_source": figures["access_vs_source"] if output.kind == "access" else None,
            },
            "seconds": round(seconds, 3),
        }

    def _row(
        self,
        asset_id: str,
        uri: str,
        survey: dict[str, Any],
        plan: Plan,
        output: Output,
        manifest_uri: str,
        figures: dict[str, Any],
        seconds: float,
    ) -> dict[str, Any]:
        before, after = figures["before"], figures["after"]
        fidelity = (figures["access_vs_source"] if output.kind == "access" else None) or {}
        return {
            "asset_id": asset_id,
            "source_uri": uri,
            "kind": output.kind,
            "output_uri": output.uri,
            "output_sha256": output.sha256,
            "manifest_uri": manifest_uri,
            "codec": output.codec,
            "width": output.width,
            "height": output.height,
            "frame_count": output.frames,
            "fps": self._fps(survey, output, figures),
            "upscale": output.upscale,
            "operations": json.dumps(plan.ops),
            "decisions": json.dumps(self._decisions(survey, plan, output)),
            "model": self.upscaler.model,
            "model_version": self.upscaler.version,
            "noise_before": before["noise"],
            "noise_after": after["noise"],
            "sharpness_before": before["sharpness"],
            "sharpness_after": after["sharpness"],
            "flicker_before": before["flicker"],
            "flicker_after": after["flicker"],
            "seconds": seconds,
            "status": "ok",
            "error": None,
            "pix_fmt": output.pix_fmt,
            "bit_depth": bit_depth(output.pix_fmt),
            "field_order": output.field_order,
            "sample_aspect_ratio": ratio(survey["sar"]),
            "audio_tracks": len(output.audio),
            "audio": json.dumps([track.manifest() for track in output.audio.values()]),
            "vmaf_vs_source": fidelity.get("vmaf"),
            "psnr_vs_source": fidelity.get("psnr"),
            "ssim_vs_source": fidelity.get("ssim"),
        }
