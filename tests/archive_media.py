"""A corpus of archive-format files, written on the spot with PyAV's own encoders.

An archive's footage is DV tape transfers, interlaced MPEG-2, DivX AVIs,
capture-station ProRes and v210, DNxHR in MXF and so on, nearly always with
PCM audio, often anamorphic or interlaced. ``make(kind, folder)`` writes one
small file of each kind (about a second, small frames where the format
allows) with the properties listed in ``KINDS``, so tests can check that what
comes out of archivist still has them.

The picture moves (a drifting gradient, a bar sweeping across, a little
noise); interlaced kinds are made of real fields, each rendered half a frame
period after the other in the declared order, so a combing measure sees what
it would see on tape. Audio is a tone per track at a different pitch.

Packed B-frames ("DivX packed bitstream"): FFmpeg's mpeg4 encoder never packs,
so ``mpeg4_packed_avi`` packs its output the way DivX 5 did: the VOP of a
B-frame rides in the same AVI chunk as the P-frame before it, the following
chunk holds a one-byte-aligned not-coded VOP (N-VOP) as placeholder, and a
``DivX503b1393p`` user data string (what FFmpeg's decoder looks for) tells
decoders the stream is packed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import cast

import av
import numpy as np


@dataclass(frozen=True)
class Audio:
    """One audio track: the encoder, its rate, layout and sample format."""

    codec: str
    rate: int = 48000
    layout: str = "stereo"
    format: str | None = None  # the encoder's sample format; None lets PyAV pick


@dataclass(frozen=True)
class Kind:
    """One archive format and what a file of it must read back as."""

    ext: str
    container: str  # the muxer's name
    codec: str  # the encoder
    pix_fmt: str
    size: tuple[int, int]
    rate: Fraction = Fraction(25)
    frames: int = 25
    audio: tuple[Audio, ...] = ()
    sar: Fraction | None = None  # the sample aspect ratio a reader must see (None: square or unset)
    field_order: str = "progressive"  # 'progressive', 'tff' or 'bff': how the fields were made
    bit_depth: int = 8
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)
    decoded_codec: str = ""  # the decoder's name when it differs from the encoder's
    bframes: int = 0
    steps: tuple[int, ...] = ()  # milliseconds between frames, cycled: a variable frame rate
    note: str = ""

    @property
    def video_codec(self) -> str:
        return self.decoded_codec or self.codec

    @property
    def audio_codecs(self) -> list[str]:
        return [_DECODED_AUDIO.get(a.codec, a.codec) for a in self.audio]


_FIELD_ORDER = {"tff": 2, "bff": 3}  # AVFieldOrder: AV_FIELD_TT, AV_FIELD_BB
_DECODED_AUDIO = {"libopus": "opus", "libmp3lame": "mp3"}
PCM16 = Audio("pcm_s16le")
PCM24 = Audio("pcm_s24le")
NTSC = Fraction(30000, 1001)

KINDS: dict[str, Kind] = {
    "dv_pal": Kind(
        "dv",
        "dv",
        "dvvideo",
        "yuv420p",
        (720, 576),
        audio=(PCM16,),
        sar=Fraction(16, 15),
        field_order="bff",
        note="DV25 PAL 4:3, raw DV, 48 kHz PCM",
    ),
    "dv_ntsc": Kind(
        "dv",
        "dv",
        "dvvideo",
        "yuv411p",
        (720, 480),
        NTSC,
        30,
        audio=(PCM16,),
        sar=Fraction(8, 9),
        field_order="bff",
        note="DV25 NTSC 4:3, raw DV",
    ),
    "dv_pal_wide_avi": Kind(
        "avi",
        "avi",
        "dvvideo",
        "yuv420p",
        (720, 576),
        audio=(PCM16,),
        sar=Fraction(64, 45),
        field_order="bff",
        note="DV25 PAL 16:9 in AVI",
    ),
    "mpeg2_ps": Kind(
        "mpg",
        "dvd",
        "mpeg2video",
        "yuv420p",
        (352, 288),
        audio=(Audio("mp2"),),
        sar=Fraction(12, 11),
        field_order="tff",
        bframes=2,
        options={"flags": "+ildct+ilme", "g": "12", "b": "2500k", "top": "1"},
        note="interlaced MPEG-2 program stream (DVD-like), B-frames, MP2",
    ),
    "mpeg2_ts": Kind(
        "ts",
        "mpegts",
        "mpeg2video",
        "yuv420p",
        (352, 288),
        audio=(Audio("ac3"), Audio("mp2")),
        sar=Fraction(16, 11),
        field_order="bff",
        bframes=2,
        options={"flags": "+ildct+ilme", "g": "12", "b": "2500k", "top": "0"},
        note="interlaced MPEG-2 transport stream (broadcast), B-frames, AC-3 + MP2",
    ),
    "mpeg1_ps": Kind(
        "mpg",
        "mpeg",
        "mpeg1video",
        "yuv420p",
        (352, 288),
        audio=(Audio("mp2", 44100),),
        bframes=2,
        options={"g": "12", "b": "1150k"},
        note="MPEG-1 (VCD-like)",
    ),
    "mpeg4_packed_avi": Kind(
        "avi",
        "avi",
        "mpeg4",
        "yuv420p",
        (320, 240),
        audio=(Audio("libmp3lame", 44100),),
        bframes=1,
        options={"g": "12", "qscale": "4"},
        note="MPEG-4 ASP, DivX-style packed B-frames, MP3",
    ),
    "mpeg4_bframes_avi": Kind(
        "avi",
        "avi",
        "mpeg4",
        "yuv420p",
        (320, 240),
        audio=(PCM16,),
        bframes=2,
        options={"g": "12", "qscale": "4"},
        note="MPEG-4 ASP, unpacked B-frames, PCM",
    ),
    "mjpeg_avi": Kind(
        "avi",
        "avi",
        "mjpeg",
        "yuvj422p",
        (320, 240),
        audio=(PCM16,),
        options={"qscale": "4"},
        note="camera MJPEG, PCM",
    ),
    "huffyuv_avi": Kind("avi", "avi", "huffyuv", "yuv422p", (320, 240), audio=(PCM16,)),
    "v210_mov": Kind(
        "mov",
        "mov",
        "v210",
        "yuv422p10le",
        (320, 240),
        audio=(PCM24,),
        bit_depth=10,
        note="uncompressed 10-bit 4:2:2, 24-bit PCM",
    ),
    "rawvideo_mov": Kind("mov", "mov", "rawvideo", "uyvy422", (320, 240), audio=(PCM24,)),
    "prores_mov": Kind(
        "mov",
        "mov",
        "prores_ks",
        "yuv422p10le",
        (320, 240),
        audio=(PCM24,),
        bit_depth=10,
        options={"profile": "2"},
        decoded_codec="prores",
    ),
    "dnxhr_mxf": Kind(
        "mxf",
        "mxf",
        "dnxhd",
        "yuv422p",
        (320, 240),
        audio=(PCM16, PCM16),
        options={"profile": "dnxhr_sq", "b": "0"},
        note="DNxHR SQ in MXF OP1a, two PCM tracks",
    ),
    "ffv1_mkv": Kind(
        "mkv",
        "matroska",
        "ffv1",
        "yuv422p10le",
        (320, 240),
        audio=(Audio("flac"),),
        bit_depth=10,
        options={"level": "3"},
    ),
    "hevc_main10_mkv": Kind(
        "mkv",
        "matroska",
        "libx265",
        "yuv420p10le",
        (320, 240),
        audio=(Audio("aac"),),
        bit_depth=10,
        bframes=3,
        decoded_codec="hevc",
        options={"preset": "ultrafast", "x265-params": "log-level=error"},
    ),
    "vp9_webm": Kind(
        "webm",
        "webm",
        "libvpx-vp9",
        "yuv420p",
        (320, 240),
        audio=(Audio("libopus"),),
        decoded_codec="vp9",
        options={"deadline": "realtime", "cpu-used": "8", "b": "500k"},
    ),
    "av1_mkv": Kind(
        "mkv",
        "matroska",
        "libsvtav1",
        "yuv420p10le",
        (320, 240),
        audio=(Audio("libopus"),),
        bit_depth=10,
        decoded_codec="libdav1d",
        options={"preset": "12", "crf": "40"},
        note="AV1 (SVT-AV1), 10-bit, Opus; read back with libdav1d",
    ),
    "vfr_mkv": Kind(
        "mkv",
        "matroska",
        "libx264",
        "yuv420p",
        (320, 240),
        audio=(Audio("aac"),),
        decoded_codec="h264",
        options={"preset": "ultrafast"},
        steps=(40, 40, 20, 80, 33),
        note="variable frame rate (a phone's), millisecond timestamps",
    ),
    "flv": Kind(
        "flv",
        "flv",
        "flv",
        "yuv420p",
        (320, 240),
        audio=(Audio("libmp3lame", 44100),),
        options={"qscale": "4"},
        note="Sorenson Spark (FLV1), MP3",
    ),
    "wmv2_asf": Kind(
        "wmv", "asf", "wmv2", "yuv420p", (320, 240), audio=(Audio("wmav2", 44100),), options={"qscale": "4"}
    ),
    "cinepak_mov": Kind(
        "mov",
        "mov",
        "cinepak",
        "rgb24",
        (160, 120),
        frames=12,
        audio=(Audio("pcm_s16be", 22050),),
        note="Cinepak (slow to encode: half a second)",
    ),
    "qtrle_mov": Kind("mov", "mov", "qtrle", "rgb24", (160, 120), audio=(Audio("pcm_s16be"),)),
    "grey_avi": Kind(
        "avi",
        "avi",
        "ffvhuff",
        "gray",
        (320, 240),
        audio=(PCM16,),
        note="greyscale (a film scan's luma only), lossless",
    ),
    "odd_size_mp4": Kind(
        "mp4",
        "mp4",
        "libx264",
        "yuv444p",
        (322, 178),
        audio=(Audio("aac"),),
        decoded_codec="h264",
        options={"preset": "ultrafast"},
        note="odd frame size",
    ),
    "anamorphic_pal_mkv": Kind(
        "mkv",
        "matroska",
        "mpeg2video",
        "yuv420p",
        (720, 576),
        audio=(Audio("aac"),),
        sar=Fraction(64, 45),
        field_order="tff",
        bframes=2,
        options={"flags": "+ildct+ilme", "g": "12", "b": "6000k", "top": "1"},
        note="PAL 16:9 anamorphic interlaced MPEG-2 with AAC (a DVB capture)",
    ),
    "anamorphic_mp4": Kind(
        "mp4",
        "mp4",
        "libx264",
        "yuv420p",
        (360, 288),
        audio=(Audio("aac"),),
        sar=Fraction(64, 45),
        decoded_codec="h264",
        options={"preset": "ultrafast"},
        note="progressive 16:9 anamorphic at half PAL size (64:45)",
    ),
    "multi_audio_mov": Kind(
        "mov",
        "mov",
        "mjpeg",
        "yuvj420p",
        (320, 240),
        audio=(PCM24, Audio("pcm_s16le", 48000, "mono"), Audio("aac", 48000, "5.1")),
        options={"qscale": "5"},
        note="three audio tracks: stereo, mono, 5.1",
    ),
}
"""Every kind the corpus holds."""


@lru_cache(maxsize=8)
def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return yy, xx


@lru_cache(maxsize=8)
def _noise_bank(width: int, height: int) -> np.ndarray:
    """A few frames of grain, drawn once per size: drawing it per frame would dominate the time."""
    return np.random.default_rng(1).normal(0, 3.0, (4, height, width, 3)).astype(np.float32)


def _picture(width: int, height: int, t: float, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 at time ``t`` (in frames): a drifting gradient, a sweeping bar, a disc and a little grain."""
    yy, xx = _grid(width, height)
    image = np.empty((height, width, 3), np.float32)
    image[..., 0] = ((xx[0] * (255 / max(width - 1, 1)) + 6 * t) % 256)[None, :]
    image[..., 1] = (128 + 90 * np.sin((yy[:, 0] + 3 * t) / 9.0))[:, None]
    image[..., 2] = ((xx + yy) * 2 + 4 * t) % 256
    bar = xx[0] - (t * width / 12.0) % width
    image[:, (bar >= 0) & (bar < max(width // 10, 4))] = (240, 240, 230)
    cx = width / 2 + width / 4 * np.cos(t / 4)
    disc = ((xx[0] - cx) ** 2)[None, :] + ((yy[:, 0] - height / 2) ** 2)[:, None] < (height / 6) ** 2
    image[disc] = (20, 30, 200)
    image += _noise_bank(width, height)[int(rng.integers(4))]
    return np.clip(image, 0, 255).astype(np.uint8)


def frame_image(kind: Kind, index: int, rng: np.random.Generator) -> np.ndarray:
    """Frame ``index`` of ``kind``: woven from two moments for interlaced kinds."""
    width, height = kind.size
    if kind.field_order == "progressive":
        return _picture(width, height, float(index), rng)
    first, second = _picture(width, height, float(index), rng), _picture(width, height, index + 0.5, rng)
    woven = first.copy()
    # The field shown first holds the earlier moment: top lines (even rows) for tff, bottom for bff.
    if kind.field_order == "tff":
        woven[1::2] = second[1::2]
    else:
        woven[0::2] = second[0::2]
    return woven


def _tone(track: int, start: int, count: int, rate: int) -> np.ndarray:
    t = (np.arange(count) + start) / rate
    return (0.25 * np.sin(2 * np.pi * 330 * (track + 1) * t)).astype(np.float32)


def _add_audio(container: av.container.OutputContainer, audio: Audio) -> av.audio.stream.AudioStream:
    stream = cast(
        av.audio.stream.AudioStream, container.add_stream(audio.codec, rate=audio.rate, layout=audio.layout)
    )
    if audio.format:
        stream.format = audio.format
    if audio.codec in ("aac", "libmp3lame", "mp2", "ac3", "wmav2", "libopus"):
        stream.bit_rate = 128000 if audio.layout != "5.1" else 384000
    return stream


def _write_audio(
    container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, track: int, seconds: float
) -> None:
    rate = stream.rate
    channels = stream.codec_context.layout.nb_channels
    total = round(seconds * rate)
    block = 1024
    for start in range(0, total, block):
        count = min(block, total - start)
        tone = _tone(track, start, count, rate)
        samples = np.tile(tone, (channels, 1))
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=stream.codec_context.layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


# -- packing DivX-style B-frames ---------------------------------------------------------------

_VOP = b"\x00\x00\x01\xb6"
_DIVX_PACKED = b"\x00\x00\x01\xb2DivX503b1393p"


def _time_increment_bits(resolution: int) -> int:
    return max(1, (resolution - 1).bit_length())


def _nvop(bits: int) -> bytes:
    """A not-coded P-VOP: what DivX wrote into the chunk after a packed P+B pair."""
    code = "01" + "0" + "1" + "0" * bits + "1" + "0"  # type P, modulo 0, marker, increment, marker, not coded
    code += "0" + "1" * ((8 - (len(code) + 1) % 8) % 8)  # next_start_code stuffing
    return _VOP + int(code, 2).to_bytes(len(code) // 8, "big")


def _packed(packets: list[av.Packet], resolution: int) -> list[bytes]:
    """Chunks in decode order, each B-VOP moved into the chunk of the reference before it."""
    chunks: list[bytes] = []
    nvop = _nvop(_time_increment_bits(resolution))
    pending: bytes | None = None  # a reference frame waiting for the B-frame that follows it
    for packet in packets:
        data = bytes(packet)
        if b"\x00\x00\x01\xb0" in data or b"\x00\x00\x01\x20" in data:  # headers: say it is packed
            at = data.find(_VOP)
            data = data[:at] + _DIVX_PACKED + data[at:]
        coding_type = data[data.find(_VOP) + 4] >> 6  # 0 I, 1 P, 2 B
        if coding_type == 2 and pending is not None:
            chunks.extend([pending + data, nvop])
            pending = None
            continue
        if pending is not None:
            chunks.append(pending)
        pending = data
    if pending is not None:
        chunks.append(pending)
    return chunks


class _FieldFlags:
    """Marks frames interlaced in the kind's field order (PyAV cannot set the flags; a filter can)."""

    def __init__(self, kind: Kind, time_base: Fraction) -> None:
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(
            width=kind.size[0], height=kind.size[1], format=av.VideoFormat(kind.pix_fmt), time_base=time_base
        )
        flags = self.graph.add("setparams", f"field_mode={kind.field_order}")
        source.link_to(flags)
        flags.link_to(self.graph.add("buffersink"))
        self.graph.configure()

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        self.graph.push(frame)
        return self.graph.vpull()


# -- writing -----------------------------------------------------------------------------------


def make(kind_name: str, folder: Path, *, seed: int = 0) -> Path:
    """Writes one file of ``kind_name`` into ``folder`` and returns its path."""
    kind = KINDS[kind_name]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind_name}.{kind.ext}"
    rng = np.random.default_rng(seed)
    width, height = kind.size
    packed = kind_name == "mpeg4_packed_avi"
    with av.open(str(path), "w", format=kind.container, options=dict(kind.container_options)) as container:
        video = cast(av.video.stream.VideoStream, container.add_stream(kind.codec, rate=kind.rate))
        video.width, video.height, video.pix_fmt = width, height, kind.pix_fmt
        ctx = video.codec_context
        ctx.time_base = Fraction(1, 1000) if kind.steps else 1 / kind.rate
        if kind.sar:
            ctx.sample_aspect_ratio = kind.sar
            video.sample_aspect_ratio = kind.sar
        if kind.bframes:
            ctx.max_b_frames = kind.bframes
        options = dict(kind.options)
        if kind.field_order != "progressive":
            ctx.field_order = _FIELD_ORDER[kind.field_order]
        options.pop("top", None)
        ctx.options = options
        audio = [_add_audio(container, a) for a in kind.audio]
        packets: list[av.Packet] = []
        fields = _FieldFlags(kind, ctx.time_base) if kind.field_order != "progressive" else None
        for index in range(kind.frames):
            image = frame_image(kind, index, rng)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=kind.pix_fmt)
            frame.pts = sum(kind.steps[k % len(kind.steps)] for k in range(index)) if kind.steps else index
            frame.time_base = ctx.time_base
            if fields is not None:
                frame = fields(frame)
            encoded = video.encode(frame)
            packets.extend(encoded) if packed else container.mux(encoded)
        if packed:
            packets.extend(video.encode())
            for number, data in enumerate(_packed(packets, int(kind.rate.numerator))):
                chunk = av.Packet(data)
                chunk.stream = video
                chunk.pts = chunk.dts = number
                chunk.time_base = ctx.time_base
                chunk.is_keyframe = data.find(_VOP) >= 0 and data[data.find(_VOP) + 4] >> 6 == 0
                container.mux(chunk)
        else:
            container.mux(video.encode())
        for track, stream in enumerate(audio):
            _write_audio(container, stream, track, kind.frames / float(kind.rate))
    return path


def make_all(folder: Path, kinds: list[str] | None = None) -> dict[str, Path]:
    """Every kind (or those named), written into ``folder``."""
    return {name: make(name, folder) for name in (kinds or list(KINDS))}
