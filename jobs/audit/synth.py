"""Faces and manipulations the project makes itself, because no deepfake data set or detector can be had.

Everything here is labelled by construction: a face we only degraded and
restored honestly is still its own person; a face whose inner part we
replaced with another patch is not. The identity threshold is calibrated,
and the manipulation detector trained and evaluated, on these.

The people are the 100 ``lfw_subset`` faces bundled with scikit-image
(25x25 grey, tight crops, some people appear more than once) and the
astronaut portrait (colour). ``face_canvas`` enlarges a patch onto a plain
background so that the face detector finds it at a known place.

The manipulations imitate what matters to the detectors rather than any one
tool: a swap replaces the inner face (eyes, nose, mouth) of one person by
another's through a feathered ellipse, with partial colour matching; a blend
(morph) averages two people; a generative upscale re-creates the face from
a quarter-size copy and adds the periodic high-frequency residue that
transposed convolutions leave. Honest restorations are the project's own:
its denoiser and its x2 network, applied to the whole frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import cv2
import numpy as np

from actors.restore.damage import jpeg_roundtrip

Box = tuple[int, int, int, int]

LFW_FACES = 100
"""``lfw_subset()`` holds 100 faces followed by 100 non-faces."""


@cache
def lfw_faces() -> np.ndarray:
    """The 100 bundled LFW faces as uint8 (100, 25, 25)."""
    from skimage import data

    return (data.lfw_subset()[:LFW_FACES] * 255).round().astype(np.uint8)


@cache
def astronaut_face() -> np.ndarray:
    """The astronaut's face cropped as LFW crops (brow to chin), RGB: the one colour portrait bundled."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[60:180, 166:286])


def to_rgb(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)


def tint(image: np.ndarray, gains: Sequence[float]) -> np.ndarray:
    """A colour cast (per-channel gains): grey faces become skin-coloured, and casts differ per shot."""
    return np.clip(to_rgb(image).astype(np.float32) * np.asarray(gains, np.float32), 0, 255).astype(np.uint8)


def skin_gains(rng: np.random.Generator) -> tuple[float, float, float]:
    """A warm cast of random strength: grey patches turn to plausible skin, each shot a little differently."""
    warmth = rng.uniform(0.0, 0.25)
    return (1.0 + warmth, 1.0 + 0.35 * warmth, 1.0 - 0.45 * warmth)


def face_canvas(
    face: np.ndarray,
    *,
    side: int = 200,
    canvas: tuple[int, int] = (400, 400),
    at: tuple[int, int] | None = None,
    background: int = 128,
) -> tuple[np.ndarray, Box]:
    """``face`` enlarged to ``side`` px on a plain canvas (RGB), and where it lies (x0, y0, x1, y1)."""
    height, width = canvas
    x0, y0 = at if at is not None else ((width - side) // 2, (height - side) // 2)
    image = np.full((height, width, 3), background, np.uint8)
    image[y0 : y0 + side, x0 : x0 + side] = to_rgb(
        cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    )
    return image, (x0, y0, x0 + side, y0 + side)


def degrade(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    noise: tuple[float, float] = (2.0, 8.0),
    blur: tuple[float, float] = (0.0, 1.2),
    jpeg: tuple[int, int] = (55, 95),
) -> np.ndarray:
    """Archive-like damage drawn at random: optical blur, sensor noise, JPEG blocking."""
    out = image.astype(np.float32)
    sigma = rng.uniform(*blur)
    if sigma > 0.3:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), sigma), np.float32)
    out += rng.normal(0.0, rng.uniform(*noise), out.shape[:2])[..., None]
    return jpeg_roundtrip(np.clip(out + 0.5, 0, 255).astype(np.uint8), int(rng.integers(*jpeg)))


def inner_mask(shape: tuple[int, int], box: Box, rng: np.random.Generator | None = None) -> np.ndarray:
    """A feathered ellipse over eyes, nose and mouth of the face in ``box``: where swaps paste."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    jitter = (lambda scale: rng.uniform(-scale, scale)) if rng is not None else (lambda scale: 0.0)
    centre = (x0 + w * (0.5 + jitter(0.03)), y0 + h * (0.56 + jitter(0.03)))
    axes = (w * (0.34 + jitter(0.04)), h * (0.40 + jitter(0.04)))
    mask = np.zeros(shape, np.float32)
    cv2.ellipse(
        mask, (round(centre[0]), round(centre[1])), (round(axes[0]), round(axes[1])), 0, 0, 360, 1.0, -1
    )
    feather = max(1.0, w * (rng.uniform(0.02, 0.08) if rng is not None else 0.05))
    return cv2.GaussianBlur(mask, (0, 0), feather)


def match_colour(donor: np.ndarray, host: np.ndarray, mask: np.ndarray, strength: float) -> np.ndarray:
    """The donor's Lab mean and spread moved toward the host's under the mask, by ``strength`` (0..1)."""
    weights = mask > 0.5
    if weights.sum() < 16:
        return donor
    d = cv2.cvtColor(donor, cv2.COLOR_RGB2LAB).astype(np.float32)
    h = cv2.cvtColor(host, cv2.COLOR_RGB2LAB).astype(np.float32)
    dm, ds = d[weights].mean(0), d[weights].std(0) + 1e-3
    hm, hs = h[weights].mean(0), h[weights].std(0) + 1e-3
    matched = (d - dm) / ds * hs + hm
    out = d + strength * (matched - d)
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def swap_face(
    host: np.ndarray,
    box: Box,
    donor_face: np.ndarray,
    rng: np.random.Generator,
    *,
    colour_strength: float | None = None,
) -> np.ndarray:
    """``host`` with the inner face in ``box`` replaced by ``donor_face`` (any size, grey or RGB)."""
    x0, y0, x1, y1 = box
    donor = np.array(host)
    donor[y0:y1, x0:x1] = to_rgb(cv2.resize(donor_face, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC))
    mask = inner_mask(host.shape[:2], box, rng)
    strength = rng.uniform(0.3, 1.0) if colour_strength is None else colour_strength
    donor = match_colour(donor, host, mask, strength)
    out = host.astype(np.float32) * (1 - mask[..., None]) + donor.astype(np.float32) * mask[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def blend_faces(host: np.ndarray, box: Box, donor_face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A morph: the face in ``box`` averaged with another person's, the surround left as it was."""
    x0, y0, x1, y1 = box
    donor = np.array(host)
    donor[y0:y1, x0:x1] = to_rgb(cv2.resize(donor_face, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC))
    mask = inner_mask(host.shape[:2], box, rng)
    donor = match_colour(donor, host, mask, 1.0)
    mask *= rng.uniform(0.35, 0.65)
    out = host.astype(np.float32) * (1 - mask[..., None]) + donor.astype(np.float32) * mask[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def generative_upscale(
    host: np.ndarray,
    box: Box,
    rng: np.random.Generator,
    upscale: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """The face in ``box`` re-created from a quarter-size copy, with a transposed convolution's residue.

    A face "enhancer" works on the face alone and pastes it back: the face
    ends up with a different spectrum (and periodic upsampling artefacts)
    from its surround. ``upscale`` is a x2 upscaler applied twice (default:
    bicubic); the residue is a random 4x4 kernel on a zero-inserted grid,
    which is what a GAN's last up-convolution leaves when it is not perfect.
    """
    x0, y0, x1, y1 = box
    face = host[y0:y1, x0:x1]
    small = cv2.resize(face, (max(4, (x1 - x0) // 4), max(4, (y1 - y0) // 4)), interpolation=cv2.INTER_AREA)
    twice = upscale or (
        lambda im: cv2.resize(im, (im.shape[1] * 2, im.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    )
    big = cv2.resize(twice(twice(small)), (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC).astype(
        np.float32
    )
    grid = np.zeros(big.shape[:2], np.float32)
    grid[::2, ::2] = rng.normal(0.0, 1.0, grid[::2, ::2].shape)
    kernel = rng.normal(0.0, 1.0, (4, 4)).astype(np.float32)
    residue = cv2.filter2D(grid, -1, kernel)
    residue *= rng.uniform(2.0, 6.0) / (residue.std() + 1e-6)
    big += residue[..., None]
    out = host.astype(np.float32)
    mask = inner_mask(host.shape[:2], box, rng)[y0:y1, x0:x1, None]
    out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - mask) + big * mask
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def denoise(image: np.ndarray) -> np.ndarray:
    """The remaster stage's denoiser on one frame (no neighbours: the spatial part of it)."""
    from actors.restore import Restorer

    (restored,) = Restorer([{"op": "denoise", "params": {}}]).run([image])
    return restored


def write_face_clip(
    path: str,
    face: np.ndarray,
    *,
    frames: int = 10,
    size: tuple[int, int] = (320, 240),
    side: int = 150,
    step: int = 2,
    noise: float = 4.0,
    seed: int = 0,
) -> list[Box]:
    """An H.264 clip of ``face`` drifting right over a textured background; returns its box per frame."""
    import av

    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([60 + xx * 0.3, 90 + yy * 0.2, 120 + 0 * xx], axis=-1).astype(np.float32)
    patch = to_rgb(cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)).astype(np.float32)
    boxes = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"crf": "16"}
        for k in range(frames):
            x0, y0 = (width - side) // 2 - step * frames // 2 + step * k, (height - side) // 2
            image = background.copy()
            image[y0 : y0 + side, x0 : x0 + side] = patch
            image += rng.normal(0.0, noise, image.shape[:2])[..., None]
            frame = av.VideoFrame.from_ndarray(np.clip(image + 0.5, 0, 255).astype(np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
            boxes.append((x0, y0, x0 + side, y0 + side))
        container.mux(stream.encode())
    return boxes
