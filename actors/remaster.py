"""The remaster stage: restore and upscale an asset at full resolution, write master and access copy.

Frames never leave this actor: it decodes, restores, upscales and encodes in
one streaming pass and hands back only URIs and figures (``REMASTER`` rows).
Memory is bounded by the restoration windows, the tile of the upscaler and
the encoders' lookahead, never by the length of the video.

For ``auto`` (or a list of operations whose parameters come from the shot)
the asset is decoded twice: a first pass measures it, at most
``measure_frames`` frames in full and every frame's brightness, so the plan
can be fixed before the first frame is restored. The second pass writes:

* the preservation master, FFV1 (level 3, intra-only, slice CRCs) in
  Matroska, in 8-bit RGB (``bgr0``, FFV1's 8-bit RGB layout): exactly the
  frames the process made, no colour-matrix rounding, no chroma subsampling;
* the access copy, H.264 (``crf``) in MP4, yuv420p BT.709 with the index up
  front (``+faststart``) for progressive playback. yuv420p needs even sides:
  an odd width or height is padded by repeating the last column or row
  (nothing of the picture is cropped); the row reports the padded size.

Both keep each source frame's timestamp (variable frame rate included; the
Matroska muxer rounds to its millisecond clock and, as Matroska cannot store
negative times, shifts every stream alike when the source's audio starts
before zero, e.g. AAC priming) and carry every audio stream over as packets,
byte for byte; other streams (subtitles, data) are not carried. The noise,
sharpness and flicker before and after are measured on the decoded source and
on the restored frames before upscaling, both at the source's size, so that
they compare like with like. Sources deeper than 8 bits are processed at 8
bits. Each output is written to a staging file and only then renamed into
place (local) or uploaded in one PUT (object store), and a sidecar manifest
beside it records the source hash, operations, model and output hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import fsspec
import numpy as np
import pyarrow as pa
from av.video.reformatter import ColorRange, Colorspace

from actors.fingerprint import sha256_of
from actors.probe import describe, open_media, video_stream
from actors.restore import Plan, Restorer, ShotMeter, check_params, make_plan, parse_ops
from catalog.storage import write_atomic
from actors.upscale import Upscaler
from catalog.schema import REMASTER

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "archivist.remaster.manifest/1"
_CHUNK = 8 << 20


class RemasterError(RuntimeError):
    """An asset that decodes but cannot be remastered as asked (timing, audio the MP4 cannot carry)."""


@dataclass
class _Output:
    """One output file being encoded: its container, video stream and audio streams by source index."""

    kind: str
    uri: str
    staging: str
    container: Any
    video: Any
    audio: dict[int, Any]
    codec: str
    pix_fmt: str
    width: int = 0
    height: int = 0
    frames: int = 0
    sha256: str = ""


def _is_local(uri: str) -> bool:
    fs, _ = fsspec.core.url_to_fs(uri)
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_packet(packet: av.Packet) -> av.Packet:
    """A stand-alone copy: muxing takes a packet's data, and each audio packet goes to two files."""
    clone = av.Packet(bytes(packet))
    clone.pts, clone.dts, clone.duration = packet.pts, packet.dts, packet.duration
    clone.time_base = packet.time_base
    clone.is_keyframe = packet.is_keyframe
    for side_data in packet.iter_sidedata():
        clone.set_sidedata(side_data)
    return clone


def _even(frame: np.ndarray) -> np.ndarray:
    """Pads an odd width or height by one repeated column or row, as yuv420p requires even sides."""
    pad_rows, pad_cols = frame.shape[0] % 2, frame.shape[1] % 2
    if not (pad_rows or pad_cols):
        return frame
    return np.pad(frame, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")


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
        measure_frames: int = 48,
        tile: int | None = None,
        work_dir: str | None = None,
    ) -> None:
        self.out_root = out_root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.selection = parse_ops(restore)
        self.restore_params = check_params(restore_params)
        self.upscaler = Upscaler(upscale, method=upscale_method, weights=weights, device=device, tile=tile)
        self.crf = int(crf)
        self.preset = preset
        self.measure_frames = max(1, int(measure_frames))
        self.work_dir = work_dir
        self.local_output = _is_local(self.out_root)

    def __call__(self, batch: pa.Table | Mapping[str, Any]) -> pa.Table:
        table = batch if isinstance(batch, pa.Table) else pa.table(dict(batch))
        rows: list[dict[str, Any]] = []
        # Rows may come one per shot; an asset is remastered once, whole.
        assets = dict.fromkeys(zip(table.column("asset_id").to_pylist(), table.column("uri").to_pylist(),
                                   strict=True))
        for asset_id, uri in assets:
            started = time.monotonic()
            try:
                rows.extend(self.remaster(asset_id, uri))
            except Exception as exc:  # one bad asset is a failed row, never a failed batch
                log.warning("remaster of %s failed: %s", uri, exc)
                rows.append({"asset_id": asset_id, "source_uri": uri, "status": "failed",
                             "error": f"{type(exc).__name__}: {exc}", "seconds": time.monotonic() - started})
        return pa.Table.from_pylist(rows, schema=REMASTER)

    # -- one asset -------------------------------------------------------------------------------

    def remaster(self, asset_id: str, uri: str) -> list[dict[str, Any]]:
        """Both outputs of one asset, published with their manifests; raises on any failure."""
        started = time.monotonic()
        source_sha256 = sha256_of(uri, self.storage_options)
        with open_media(uri, self.storage_options) as container:
            info = describe(container)
        stride = max(1, (info["frame_count"] or 0) // self.measure_frames)
        plan = self._plan(uri, stride)
        with self._staged_outputs(asset_id) as outputs:
            figures = self._encode(uri, plan, stride, outputs)
            if figures["frames"] == 0:
                raise RemasterError("the video stream decoded to no frames")
            for output in outputs:
                output.sha256 = _file_sha256(output.staging)
            for output in outputs:
                self._publish(output.staging, output.uri)
        seconds = time.monotonic() - started
        rows = []
        for output in outputs:
            manifest_uri = self._manifest_uri(output.uri)
            manifest = self._manifest(asset_id, uri, source_sha256, info, plan, output, figures, seconds)
            write_atomic(manifest_uri, (json.dumps(manifest, indent=2) + "\n").encode(), self.storage_options)
            rows.append(self._row(asset_id, uri, plan, output, manifest_uri, figures, seconds))
        log.info("remastered %s in %.1f s (%d frames)", uri, seconds, figures["frames"])
        return rows

    def _plan(self, uri: str, stride: int) -> Plan:
        """The restoration plan, from a measuring pass over the asset unless restoration is off."""
        if not (self.selection.auto or self.selection.ops):
            return make_plan({}, self.selection)
        meter = ShotMeter(stride)
        with open_media(uri, self.storage_options) as container:
            stream = video_stream(container)
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                meter.add(frame.to_ndarray(format="rgb24"))
        return make_plan(meter.result(), self.selection, self.restore_params)

    def _encode(self, uri: str, plan: Plan, stride: int, outputs: list[_Output]) -> dict[str, Any]:
        """The streaming pass: demux, decode, restore, upscale, encode both outputs, copy audio."""
        before, after = ShotMeter(stride), ShotMeter(stride)
        restorer = Restorer(plan, self.storage_options)
        timestamps: deque[int] = deque()  # pts of frames inside the restorer, at most its latency + 1
        decoded = 0
        last_pts: int | None = None
        with open_media(uri, self.storage_options) as container:
            stream = video_stream(container)
            stream.thread_type = "AUTO"
            audio = list(container.streams.audio)
            self._open_streams(outputs, stream, audio)

            def emit(restored: np.ndarray) -> None:
                after.add(restored)
                self._write_frame(outputs, self.upscaler(restored), timestamps.popleft(), stream.time_base)

            for packet in container.demux([stream, *audio]):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        for output in outputs:
                            copy = _copy_packet(packet)
                            copy.stream = output.audio[packet.stream.index]
                            output.container.mux(copy)
                    continue
                for frame in packet.decode():
                    pts = self._checked_pts(frame, last_pts, decoded, stream)
                    last_pts = pts
                    decoded += 1
                    rgb = frame.to_ndarray(format="rgb24")
                    before.add(rgb)
                    timestamps.append(pts)
                    for restored in restorer.push(rgb):
                        emit(restored)
            for restored in restorer.flush():
                emit(restored)
            for output in outputs:
                output.container.mux(output.video.encode())
                self._close(output, audio)
        if any(output.frames != decoded for output in outputs):
            raise RemasterError(f"decoded {decoded} frames but wrote {[o.frames for o in outputs]}")
        return {"frames": decoded, "fps": float(stream.average_rate or 0) or None,
                "time_base": str(stream.time_base), "before": before.result(), "after": after.result()}

    @staticmethod
    def _checked_pts(frame: av.VideoFrame, last: int | None, index: int, stream: Any) -> int:
        """The frame's own timestamp; one is made up only for a frame that has none."""
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            step = max(1, round(1 / (rate * stream.time_base)))
            pts = (last + step) if last is not None else index * step
        if last is not None and pts <= last:
            raise RemasterError(f"frame {index} has timestamp {pts}, not after the previous one ({last}): "
                                "the source's timing is broken")
        return int(pts)

    def _write_frame(self, outputs: list[_Output], frame: np.ndarray, pts: int, time_base: Fraction) -> None:
        for output in outputs:
            if output.kind == "master":
                video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="bgr0")
            else:
                video_frame = av.VideoFrame.from_ndarray(_even(frame), format="rgb24").reformat(
                    format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
            video_frame.pts, video_frame.time_base = pts, time_base
            output.container.mux(output.video.encode(video_frame))
            output.frames += 1

    # -- outputs ---------------------------------------------------------------------------------

    @contextmanager
    def _staged_outputs(self, asset_id: str) -> Iterator[list[_Output]]:
        """Staging files for both outputs, removed whatever happens (published ones were moved away)."""
        with ExitStack() as stack:
            directory = None if self.local_output else stack.enter_context(
                tempfile.TemporaryDirectory(prefix="remaster-", dir=self.work_dir))
            outputs = []
            for kind, name, fmt, codec, pix_fmt in (("master", "master.mkv", "matroska", "ffv1", "bgr0"),
                                                    ("access", "access.mp4", "mp4", "h264", "yuv420p")):
                uri = f"{self.out_root}/{asset_id}/{name}"
                if directory is None:
                    _, path = fsspec.core.url_to_fs(uri)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    staging = os.path.join(os.path.dirname(path), f".{name}.{uuid.uuid4().hex}.part")
                else:
                    staging = os.path.join(directory, name)
                stack.callback(lambda p=staging: os.path.exists(p) and os.remove(p))
                options = {"movflags": "+faststart"} if fmt == "mp4" else {}
                container = av.open(staging, "w", format=fmt, options=options)
                stack.callback(container.close)
                outputs.append(_Output(kind, uri, staging, container, None, {}, codec, pix_fmt))
            yield outputs

    def _open_streams(self, outputs: list[_Output], source: Any, audio: list[Any]) -> None:
        """The video encoder and the audio stream copies of each output, matching the source."""
        factor = self.upscaler.factor
        width, height = source.codec_context.width * factor, source.codec_context.height * factor
        for output in outputs:
            output.width, output.height = width, height
            if output.kind == "access":
                output.width, output.height = width + width % 2, height + height % 2
            encoder = "ffv1" if output.kind == "master" else "libx264"
            video = output.container.add_stream(encoder, rate=source.average_rate or source.guessed_rate)
            video.width, video.height, video.pix_fmt = output.width, output.height, output.pix_fmt
            video.codec_context.time_base = source.time_base
            if source.sample_aspect_ratio:
                video.codec_context.sample_aspect_ratio = source.sample_aspect_ratio
            if output.kind == "master":
                video.codec_context.gop_size = 1
                video.codec_context.options = {"level": "3", "slicecrc": "1"}
            else:
                video.codec_context.options = {"crf": str(self.crf), "preset": self.preset}
                video.codec_context.colorspace = Colorspace.ITU709
                video.codec_context.color_range = ColorRange.MPEG
            output.video = video
            for stream in audio:
                output.audio[stream.index] = output.container.add_stream_from_template(stream)
            try:
                output.container.start_encoding()
            except av.FFmpegError as exc:
                codecs = ", ".join(f"#{s.index} {s.codec_context.name}" for s in audio) or "none"
                raise RemasterError(f"cannot start the {output.kind} file ({output.codec}) with the source's "
                                    f"audio copied untouched (audio {codecs}): {exc}") from exc

    @staticmethod
    def _close(output: _Output, audio: list[Any]) -> None:
        """Writes the trailer, where a muxer finally refuses what it cannot store (PCM layouts in MP4)."""
        try:
            output.container.close()
        except av.FFmpegError as exc:
            codecs = ", ".join(f"#{s.index} {s.codec_context.name}" for s in audio) or "none"
            raise RemasterError(f"cannot finish the {output.kind} file ({output.codec}) with the source's "
                                f"audio copied untouched (audio {codecs}): {exc}") from exc

    def _publish(self, staging: str, uri: str) -> None:
        """Into place in one step: a rename beside the target, or a single upload to the store."""
        fs, path = fsspec.core.url_to_fs(uri, **self.storage_options)
        if self.local_output:
            with open(staging, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(staging, path)
        else:
            fs.put_file(staging, path)

    @staticmethod
    def _manifest_uri(output_uri: str) -> str:
        return output_uri.rsplit(".", 1)[0] + ".manifest.json"

    def _manifest(self, asset_id: str, uri: str, source_sha256: str, info: dict[str, Any], plan: Plan,
                  output: _Output, figures: dict[str, Any], seconds: float) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "asset_id": asset_id,
            "source": {"uri": uri, "sha256": source_sha256, "video_codec": info["video_codec"],
                       "pix_fmt": info["pix_fmt"], "width": info["width"], "height": info["height"],
                       "audio_streams": info["audio_streams"]},
            "output": {"uri": output.uri, "kind": output.kind, "sha256": output.sha256, "codec": output.codec,
                       "pix_fmt": output.pix_fmt, "width": output.width, "height": output.height,
                       "frame_count": output.frames, "fps": figures["fps"], "time_base": figures["time_base"],
                       "audio": "copied untouched" if info["audio_streams"] else "none in source",
                       "encoder": {"crf": self.crf, "preset": self.preset} if output.kind == "access"
                       else {"level": 3, "gop": 1, "slicecrc": True}},
            "restoration": plan.as_dict(),
            "upscale": self.upscaler.describe(),
            "metrics": {"before": figures["before"], "after": figures["after"]},
            "seconds": round(seconds, 3),
        }

    def _row(self, asset_id: str, uri: str, plan: Plan, output: _Output, manifest_uri: str,
             figures: dict[str, Any], seconds: float) -> dict[str, Any]:
        before, after = figures["before"], figures["after"]
        return {
            "asset_id": asset_id, "source_uri": uri, "kind": output.kind, "output_uri": output.uri,
            "output_sha256": output.sha256, "manifest_uri": manifest_uri, "codec": output.codec,
            "width": output.width, "height": output.height, "frame_count": output.frames,
            "fps": figures["fps"],
            "upscale": self.upscaler.factor, "operations": json.dumps(plan.ops),
            "decisions": json.dumps({"mode": plan.mode, "decisions": plan.decisions,
                                     "measurements": plan.measurements}),
            "model": self.upscaler.model, "model_version": self.upscaler.version,
            "noise_before": before["noise"], "noise_after": after["noise"],
            "sharpness_before": before["sharpness"], "sharpness_after": after["sharpness"],
            "flicker_before": before["flicker"], "flicker_after": after["flicker"],
            "seconds": seconds, "status": "ok", "error": None,
        }
