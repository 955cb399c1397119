"""Identity drift: is the person in a remastered frame still the person in the source frame?

Restoration and upscaling should change how a face looks, never who it is.
A face-swap, a face "enhancer" that hallucinates features, or a denoiser
that smears one face into another all move the face's identity embedding.
So the same frames are read from the source and from the output, faces are
found in both with ``FaceAnalyzer`` (the output shrunk to the source's
size), paired by where they are (greedy by overlap), and the dlib identity
vectors of each pair are compared.

The threshold is not dlib's usual 0.6 for "same person in two photos": here
both pictures are one exposure, so honest processing moves the vector far
less. ``DRIFT_THRESHOLD`` comes from ``calibrate_threshold`` over pairs made
by ``calibration_distances`` (tests/benchmarks/bench_audit.py reruns it and
prints the figures): the same face degraded and then honestly restored by
the project's own denoiser and x2 network, against the same degraded face
with its inner face swapped for another person's and restored alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from actors.probe import open_media, video_stream
from jobs.audit import synth

DRIFT_THRESHOLD = 0.28
"""Euclidean distance between identity vectors above which a face is taken to have changed person.

Calibrated on 31 people (lfw_subset faces 0-29 and the astronaut, seed 0; 56 honest and 56
swapped pairs): honest restorations (denoise; denoise + x2 network) moved identities at most
0.095, swaps at least 0.473; the threshold is the middle of that gap (0.284), so no pair was
misjudged. Whole remasters of H.264 clips move faces a little more (up to ~0.16 in the tests:
temporal denoising, two encodes), still well under it. The benchmark reruns the calibration,
and measures the constant on 30 other people."""

MIN_IOU = 0.3
"""Least overlap for a source face and an output face to be the same face."""


@dataclass
class FacePair:
    """One face seen in the same frame of the source and of the output."""

    frame: int
    source_box: list[float]
    output_box: list[float]
    source_crop: np.ndarray = field(repr=False)
    output_crop: np.ndarray = field(repr=False)
    source_identity: np.ndarray | None = field(repr=False)
    output_identity: np.ndarray | None = field(repr=False)

    @property
    def distance(self) -> float | None:
        if self.source_identity is None or self.output_identity is None:
            return None
        return float(np.linalg.norm(self.source_identity - self.output_identity))


@dataclass
class FrameComparison:
    """What one sampled frame showed: paired faces, and faces that appeared or vanished."""

    frame: int
    pairs: list[FacePair]
    lost: int
    gained: int


def sample_frames(frame_count: int, count: int, preferred: Sequence[int] = ()) -> list[int]:
    """Which frames to compare: the shots' keyframes first (faces were analysed there), then evenly spaced."""
    chosen = sorted({int(f) for f in preferred if 0 <= f < frame_count})[:count]
    spare = count - len(chosen)
    if spare > 0 and frame_count > 0:
        even = [int((k + 0.5) * frame_count / spare) for k in range(spare)]
        chosen = sorted(set(chosen) | {min(f, frame_count - 1) for f in even})
    return chosen


def read_frames(
    uri: str, indices: Sequence[int], storage_options: dict[str, Any] | None = None
) -> dict[int, np.ndarray]:
    """The frames at these positions (decode order), RGB; decoding stops after the last one wanted."""
    wanted = set(indices)
    found: dict[int, np.ndarray] = {}
    if not wanted:
        return found
    last = max(wanted)
    with open_media(uri, storage_options) as container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        for position, frame in enumerate(container.decode(stream)):
            if position in wanted:
                found[position] = frame.to_ndarray(format="rgb24")
            if position >= last:
                break
    return found


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_faces(
    source: Sequence[dict[str, Any]], output: Sequence[dict[str, Any]], min_iou: float = MIN_IOU
) -> list[tuple[int, int]]:
    """Pairs (source index, output index), greedily by overlap of boxes in the same pixels."""
    candidates = sorted(
        ((iou(s["box"], o["box"]), i, j) for i, s in enumerate(source) for j, o in enumerate(output)),
        reverse=True,
    )
    used_s: set[int] = set()
    used_o: set[int] = set()
    pairs = []
    for overlap, i, j in candidates:
        if overlap < min_iou:
            break
        if i not in used_s and j not in used_o:
            used_s.add(i)
            used_o.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def _vector(face: dict[str, Any]) -> np.ndarray | None:
    return None if face.get("identity") is None else np.asarray(face["identity"], np.float32)


def shrink_to(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``image`` at the height and width of ``shape`` (area-averaged), or itself when it has them."""
    height, width = shape[:2]
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def compare_frames(
    source: np.ndarray, output: np.ndarray, analyzer: Any, *, frame: int = 0, min_iou: float = MIN_IOU
) -> FrameComparison:
    """Faces of one source frame and the same output frame, paired.

    The output is looked at shrunk to the source's size: the detector and the
    identity network then see both at one scale (an upscaled face is not a
    different face, and CenterFace misses very smooth large faces that it
    finds at their original size). Crops for the manipulation detector come
    from the full-size output, where its artefacts are.
    """
    from jobs.audit.manipulation import face_crop

    height, width = source.shape[:2]
    shrunk = shrink_to(output, source.shape)
    sx, sy = output.shape[1] / width, output.shape[0] / height
    source_faces, output_faces = analyzer.analyse(source), analyzer.analyse(shrunk)
    pairs = []
    for i, j in match_faces(source_faces, output_faces, min_iou):
        x0, y0, x1, y1 = output_faces[j]["box"]
        box = [x0 * sx, y0 * sy, x1 * sx, y1 * sy]
        pairs.append(
            FacePair(
                frame,
                source_faces[i]["box"],
                box,
                face_crop(source, source_faces[i]["box"]),
                face_crop(output, box),
                _vector(source_faces[i]),
                _vector(output_faces[j]),
            )
        )
    return FrameComparison(frame, pairs, len(source_faces) - len(pairs), len(output_faces) - len(pairs))


def compare_outputs(
    source_uri: str,
    output_uri: str,
    analyzer: Any,
    frames: Sequence[int],
    *,
    storage_options: dict[str, Any] | None = None,
    min_iou: float = MIN_IOU,
) -> list[FrameComparison]:
    """The sampled frames of a source and its output, compared face by face.

    Outputs keep every source frame in order (the remaster stage checks it),
    so frame positions match; a frame missing from either side is skipped.
    """
    source_frames = read_frames(source_uri, frames, storage_options)
    output_frames = read_frames(output_uri, frames, storage_options)
    return [
        compare_frames(source_frames[k], output_frames[k], analyzer, frame=k, min_iou=min_iou)
        for k in frames
        if k in source_frames and k in output_frames
    ]


def drift(comparisons: Sequence[FrameComparison], threshold: float = DRIFT_THRESHOLD) -> dict[str, Any]:
    """The output's finding: its largest identity distance, flagged above the threshold."""
    pairs = [p for c in comparisons for p in c.pairs if p.distance is not None]
    worst = max(pairs, key=lambda p: p.distance or 0.0, default=None)
    value = None if worst is None else worst.distance
    return {
        "value": value,
        "flagged": value is not None and value > threshold,
        "worst": worst,
        "detail": {
            "frames": [c.frame for c in comparisons],
            "faces_compared": len(pairs),
            "distances": [round(p.distance or 0.0, 4) for p in pairs],
            "faces_lost": sum(c.lost for c in comparisons),
            "faces_gained": sum(c.gained for c in comparisons),
            "worst_frame": None if worst is None else worst.frame,
        },
    }


# -- calibration ----------------------------------------------------------------------------------


def calibration_distances(
    analyzer: Any,
    upscale: Callable[[np.ndarray], np.ndarray],
    *,
    faces: Sequence[int] = range(30),
    astronaut: bool = True,
    swaps_per_face: int = 2,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Identity distances of labelled pairs: ``same`` (honest restorations) and ``different`` (swaps).

    Each person is degraded as an archive would be (the source); the same
    picture denoised, and denoised then upscaled x2, are honest outputs;
    the source with its inner face swapped for another person's and then
    denoised and upscaled is a dishonest one. Outputs are looked at shrunk
    to the source's size, as ``compare_frames`` does. Faces the detector
    misses or cannot embed are left out.
    """
    rng = np.random.default_rng(seed)
    lfw = synth.lfw_faces()
    people: list[np.ndarray] = [synth.tint(lfw[i], synth.skin_gains(rng)) for i in faces]
    if astronaut:
        people.append(synth.astronaut_face())
    same: list[float] = []
    different: list[float] = []

    def identity(image: np.ndarray) -> np.ndarray | None:
        found = [f for f in analyzer.analyse(image) if f["identity"] is not None]
        return _vector(found[0]) if found else None

    for index, person in enumerate(people):
        image, box = synth.face_canvas(person, side=160, canvas=(320, 320))
        source = synth.degrade(image, rng)
        reference = identity(source)
        if reference is None:
            continue
        denoised = synth.denoise(source)
        for honest in (denoised, upscale(denoised)):
            vector = identity(shrink_to(honest, source.shape))
            if vector is not None:
                same.append(float(np.linalg.norm(vector - reference)))
        own = faces[index] if index < len(faces) else -1
        for _ in range(swaps_per_face):
            donor = lfw[int(rng.choice([k for k in range(len(lfw)) if k != own]))]
            swapped = synth.swap_face(source, box, donor, rng)
            vector = identity(shrink_to(upscale(synth.denoise(swapped)), source.shape))
            if vector is not None:
                different.append(float(np.linalg.norm(vector - reference)))
    return {"same": same, "different": different}


def calibrate_threshold(same: Sequence[float], different: Sequence[float]) -> dict[str, Any]:
    """The threshold with the fewest errors on labelled pairs (ties: the widest margin), and its error rates.

    A false accept is a swap whose distance stays at or under the threshold
    (it passes as the same person); a false reject is an honest restoration
    above it (flagged for nothing).
    """
    if not same or not different:
        raise ValueError("calibration needs both same-person and different-person pairs")
    same_a, diff_a = np.asarray(same), np.asarray(different)
    values = np.unique(np.concatenate([same_a, diff_a]))
    candidates = (values[:-1] + values[1:]) / 2 if len(values) > 1 else values

    def errors(t: float) -> int:
        return int((same_a > t).sum() + (diff_a <= t).sum())

    def margin(t: float) -> float:
        return float(np.min(np.abs(values - t)))

    best = min(candidates, key=lambda t: (errors(t), -margin(t)))
    return {
        "threshold": round(float(best), 4),
        "false_accept_rate": round(float((diff_a <= best).mean()), 4),
        "false_reject_rate": round(float((same_a > best).mean()), 4),
        "pairs": {"same": len(same_a), "different": len(diff_a)},
        "same_max": round(float(same_a.max()), 4),
        "different_min": round(float(diff_a.min()), 4),
    }
