"""Real codec damage with known ground truth: frames through PyAV's own encoders and back.

``damage.py`` imitates blocking with a JPEG round trip; real archive copies
went through video codecs, whose damage looks different: H.264's in-loop
filter turns blocks into blur and ringing, MPEG-2 and MPEG-4 ASP at low rates
leave blocks and mosquito noise that move with their motion compensation,
MJPEG leaves per-frame blocking. Copies were also resized between
generations (a master to SD, SD back up to HD) and carried the sensor noise
or film grain of the original into each encoder, which spent its bits on it.
Here the real encoders do that damage, so the restorer trains, and is
measured, on what it will meet.

Frames are encoded with explicit presentation timestamps and the encoder is
flushed; decoded frames are put back in presentation order (B-frames reorder
them in the bitstream) and checked to be exactly the frames sent, so the
damaged frame ``k`` always pairs with original frame ``k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np

from actors.restore.pixels import to_uint8


@dataclass(frozen=True)
class Codec:
    encoder: str
    decoder: str
    pix_fmt: str
    level: str
    """What ``Generation.level`` means for this codec."""


CODECS = {
    "h264": Codec("libx264", "h264", "yuv420p", "crf (18 good .. 45 ruined)"),
    "mpeg2": Codec("mpeg2video", "mpeg2video", "yuv420p", "bits per pixel (0.3 DVD-like .. 0.03 ruined)"),
    "mpeg4": Codec("mpeg4", "mpeg4", "yuv420p", "bits per pixel (0.3 .. 0.03)"),
    "mjpeg": Codec("mjpeg", "mjpeg", "yuvj420p", "quantiser (2 best .. 31 worst)"),
}
RATE = 25
GOP = 12
"""PAL rate and a DVD-like group of pictures: an I frame every half second, B-frames between."""


@dataclass(frozen=True)
class Generation:
    """One lossy copy: a codec at a damage ``level`` (see ``CODECS``), encoded ``width`` pixels wide."""

    codec: str
    level: float
    width: int | None = None
    """Picture width this copy was made at (height follows the aspect); ``None`` keeps the input's."""

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}; known: {', '.join(CODECS)}")
        if self.level <= 0:
            raise ValueError(f"codec level must be positive, not {self.level!r}")


def _encoder(codec: Codec, level: float, width: int, height: int, name: str) -> av.VideoCodecContext:
    context = av.CodecContext.create(codec.encoder, "w")
    assert isinstance(context, av.VideoCodecContext)
    context.width, context.height, context.pix_fmt = width, height, codec.pix_fmt
    context.time_base, context.framerate = Fraction(1, RATE), Fraction(RATE)
    context.thread_count = 1  # deterministic, and polite on a shared machine
    if name == "h264":
        context.options = {"crf": f"{level:g}", "preset": "veryfast"}
    elif name == "mjpeg":
        context.qmin = context.qmax = round(min(max(level, 2), 31))
    else:
        # A target alone is not kept over a short clip; a capped rate with a half-second buffer is.
        rate = max(int(level * width * height * RATE), 20_000)
        context.bit_rate = rate
        context.options = {"maxrate": str(rate), "bufsize": str(rate // 2), "minrate": "0"}
        context.gop_size, context.max_b_frames = GOP, 2
    context.open()
    return context


def roundtrip(frames: Sequence[np.ndarray], codec: str, level: float) -> list[np.ndarray]:
    """RGB uint8 frames through one encode and decode; the same count, in the same order."""
    return _roundtrip(frames, codec, level)[0]


def _roundtrip(frames: Sequence[np.ndarray], codec: str, level: float) -> tuple[list[np.ndarray], float]:
    """The decoded frames and the bits per pixel the encoder spent on them.

    Odd sizes are padded by edge replication (4:2:0 needs even sides) and
    cropped back, so any frame size goes through.
    """
    spec = CODECS[Generation(codec, level).codec]
    if not frames:
        return [], 0.0
    height, width = frames[0].shape[:2]
    even_h, even_w = height + height % 2, width + width % 2
    encoder = _encoder(spec, level, even_w, even_h, codec)
    decoder = av.CodecContext.create(spec.decoder, "r")
    assert isinstance(decoder, av.VideoCodecContext)
    decoder.thread_count = 1
    decoded: dict[int, np.ndarray] = {}
    bits = 0

    def take(pictures: Sequence[av.VideoFrame]) -> None:
        for picture in pictures:
            if picture.pts is None or picture.pts in decoded:
                raise RuntimeError(f"{codec} round trip gave a frame without a fresh timestamp")
            decoded[int(picture.pts)] = picture.to_ndarray(format="rgb24")[:height, :width]

    for index, frame in enumerate(frames):
        rgb = frame if frame.ndim == 3 else np.dstack([frame] * 3)
        if (even_h, even_w) != (height, width):
            rgb = cv2.copyMakeBorder(rgb, 0, even_h - height, 0, even_w - width, cv2.BORDER_REPLICATE)
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
            format=spec.pix_fmt
        )
        picture.pts, picture.time_base = index, encoder.time_base
        for packet in encoder.encode(picture):
            bits += 8 * packet.size
            take(decoder.decode(packet))
    for packet in encoder.encode(None):
        bits += 8 * packet.size
        take(decoder.decode(packet))
    take(decoder.decode(None))
    if sorted(decoded) != list(range(len(frames))):
        raise RuntimeError(f"{codec} round trip returned frames {sorted(decoded)} for {len(frames)} sent")
    return [decoded[index] for index in range(len(frames))], bits / (even_w * even_h * len(frames))


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Down by area averaging, up by bicubic: what a transfer's scaler would do."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    shrink = width < frame.shape[1]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def add_sensor_noise(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Signal-dependent noise (shot noise grows with brightness) of about ``sigma`` levels, per channel."""
    image = frame.astype(np.float32)
    scale = np.sqrt(0.25 + 0.75 * image / 255.0) * sigma
    return to_uint8(image + rng.normal(0.0, 1.0, image.shape).astype(np.float32) * scale)


def add_grain(frame: np.ndarray, sigma: float, rng: np.random.Generator, size: float = 0.8) -> np.ndarray:
    """Film grain: blotches about ``size`` pixels across, mostly in luma, strongest in the mid-tones."""
    plane = np.asarray(cv2.GaussianBlur(rng.normal(0, 1, frame.shape[:2]).astype(np.float32), (0, 0), size))
    plane = plane * np.float32(sigma / max(float(plane.std()), 1e-6))
    image = frame.astype(np.float32)
    midtones = 1.0 - 0.6 * np.abs(image.mean(axis=2, keepdims=True) / 127.5 - 1.0)
    return to_uint8(image + plane[..., None] * midtones)


@dataclass(frozen=True)
class DamagedCopy:
    """A damaged clip and what a probe of its last generation's file would report."""

    frames: list[np.ndarray]
    codec: str | None
    """FFmpeg's name for the last generation's codec (``mpeg2video``, ``h264``...); ``None`` if none."""
    bits_per_pixel: float | None

    def source(self) -> dict[str, Any]:
        """The ``source_codec`` and ``source_bpp`` the restore planner reads: what a probe would say."""
        return {"source_codec": self.codec, "source_bpp": self.bits_per_pixel} if self.codec else {}


@dataclass
class CodecDamage:
    """A copy's history: optional soft focus, sensor noise and grain, then lossy generations in order.

    Each generation is made at its own width and the result is scaled back to
    the original size, so the output pairs pixel for pixel with the input.
    """

    generations: tuple[Generation, ...] = field(default_factory=tuple)
    noise: float = 0.0
    grain: float = 0.0
    blur: float = 0.0
    """Gaussian sigma in pixels of the optics before anything else; 0 for sharp."""
    seed: int = 0

    def apply(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The damaged copy of a short clip (held whole: a clip's worth of frames, as an encoder needs)."""
        return self.copy(frames).frames

    def copy(self, frames: Sequence[np.ndarray]) -> DamagedCopy:
        """The damaged clip with the codec and bits per pixel of its last generation."""
        if not frames:
            return DamagedCopy([], None, None)
        rng = np.random.default_rng(self.seed)
        height, width = frames[0].shape[:2]
        out = [np.ascontiguousarray(f if f.ndim == 3 else np.dstack([f] * 3)) for f in frames]
        if self.blur > 0:
            out = [cv2.GaussianBlur(f, (0, 0), self.blur) for f in out]
        if self.noise > 0:
            out = [add_sensor_noise(f, self.noise, rng) for f in out]
        if self.grain > 0:
            out = [add_grain(f, self.grain, rng) for f in out]
        bpp: float | None = None
        for generation in self.generations:
            size_w = generation.width or width
            size_h = max(2, round(height * size_w / width))
            out, bpp = _roundtrip(
                [resize(f, size_w, size_h) for f in out], generation.codec, generation.level
            )
        last = CODECS[self.generations[-1].codec].decoder if self.generations else None
        return DamagedCopy([resize(f, width, height) for f in out], last, bpp)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


LEVELS: dict[str, tuple[float, float]] = {
    "h264": (30.0, 44.0),
    "mpeg2": (0.03, 0.2),
    "mpeg4": (0.03, 0.2),
    "mjpeg": (8.0, 28.0),
}
"""Damage levels the training draws from, per codec: from visible to heavy artefacts."""


def random_damage(rng: np.random.Generator, width: int) -> CodecDamage:
    """One plausible copy history for a clip ``width`` pixels wide, drawn from the training distribution.

    One or two generations; a copy made smaller (SD from a larger master, or
    a web copy) is scaled back up; noise, grain and soft focus each on some
    copies only, so the network also sees codec damage alone.
    """
    count = 1 if rng.random() < 0.6 else 2
    generations = []
    for _ in range(count):
        codec = str(rng.choice(list(CODECS), p=[0.35, 0.3, 0.2, 0.15]))
        low, high = LEVELS[codec]
        level = float(rng.uniform(low, high)) if codec != "h264" else round(float(rng.uniform(low, high)))
        scale = float(rng.choice([1.0, 1.0, 0.75, 0.5]))
        copy_width = None if scale == 1.0 else max(16, round(width * scale / 2) * 2)
        generations.append(Generation(codec, round(level, 3), copy_width))
    return CodecDamage(
        generations=tuple(generations),
        noise=round(float(rng.uniform(2.0, 10.0)), 2) if rng.random() < 0.35 else 0.0,
        grain=round(float(rng.uniform(2.0, 8.0)), 2) if rng.random() < 0.25 else 0.0,
        blur=round(float(rng.uniform(0.4, 1.2)), 2) if rng.random() < 0.15 else 0.0,
        seed=int(rng.integers(2**31)),
    )
