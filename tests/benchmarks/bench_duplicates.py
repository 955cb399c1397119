"""Near-duplicate benchmark: does ``group_duplicates`` put copies of a shot together, and only them?

Run ``python tests/benchmarks/bench_duplicates.py`` (``--json`` for machine-readable output).

The set. Every named keyframe of ``media.py`` (7 shots of the bundled clips, 21 skimage stills) is an
original; each gets copies an archive really holds, with parameters drawn from a seeded generator:

- ``reencode``: H.264 at CRF 32-38 (the frames around the keyframe for clips, so it is a P-frame)
- ``resize``: 35-60 % of the size
- ``crop``: 3-8 % off each side, independently
- ``brightness``: luma shifted by 20-40 levels up or down
- ``combined``: 2-6 % crop, 50-75 % size, 15-30 levels, H.264 CRF 30-36, all at once
- ``offset`` (clips): the keyframe picked 3-6 frames away, re-encoded at CRF 28-34: a copy trimmed
  differently, whose segmenter chose another frame of the same shot

plus the one real-world pair in the bundle: ``carphone_distorted.mp4``, a damaged copy of
``carphone_pristine.mp4``. Every keyframe goes through the pipeline's path: stored as a JPEG (quality
90), decoded, hashed by ``actors.phash`` and embedded by ``actors.visual``.

Look-alikes, the distinct pictures that make precision mean something (without them every
threshold scores 1.0): the left and right halves of seven texture-like stills (brick, gravel,
grass, the Hubble field, the page, the handwriting, the coins: same stuff, different pictures,
visual cosine up to 0.96) and 24 small frontal faces of different people from
``skimage.data.lfw_subset``, 25 px scaled to 100 (centred faces: cosine up to 0.92, hashes 12-24
bits apart). Each look-alike is an original with its own copies.

Left out on purpose: two moments far apart in one continuous shot (is that "the same material"?
it depends on the archivist).

Scoring is pairwise over all keyframes: a pair is positive when both come from the same original;
precision = true grouped pairs / grouped pairs, recall = true grouped pairs / positive pairs. Per copy
kind, recall is the share of copies grouped with their original.

Calibration. The originals are split in two halves by family (both halves of a still on one side).
A grid over (max_hamming, min_cosine, loose_hamming) runs on half A's copies (seed 0) and is ranked
by F0.5 (precision counts double: a false merge hides distinct material, a missed copy only costs
storage); the module constants are the top of that ranking. They are then scored on half B's copies
made with another seed (1): pictures the constants never saw. The full set (seed 1) and the
single-signal baselines are reported beside it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np
import pyarrow as pa
from media import h264_roundtrip, jpeg, keyframes, still, video_frames

from actors import duplicates
from actors.duplicates import group_duplicates
from actors.keyframes import KeyframeSuite
from actors.phash import PerceptualHasher
from actors.visual import VisualTagger

KINDS = ("reencode", "resize", "crop", "brightness", "combined", "offset")


@dataclass
class Item:
    original: str
    kind: str
    image: np.ndarray


def _scale(image: np.ndarray, factor: float) -> np.ndarray:
    size = tuple(max(2, round(side * factor)) for side in image.shape[1::-1])
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _crop(image: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    top, bottom, left, right = fractions
    return image[int(h * top) : h - int(h * bottom), int(w * left) : w - int(w * right)]


def _shift(image: np.ndarray, levels: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) + levels, 0, 255).astype(np.uint8)


def copies(image: np.ndarray, around: list[np.ndarray], rng: np.random.Generator,
           neighbours: list[np.ndarray] | None) -> dict[str, np.ndarray]:
    """The copies of one keyframe; ``neighbours`` are frames 3-6 away (clips only)."""
    sign = rng.choice([-1, 1])
    made = {
        "reencode": h264_roundtrip(around, int(rng.integers(32, 39))),
        "resize": _scale(image, rng.uniform(0.35, 0.6)),
        "crop": _crop(image, rng.uniform(0.03, 0.08, 4)),
        "brightness": _shift(image, sign * rng.uniform(20, 40)),
    }
    small = _scale(_crop(image, rng.uniform(0.02, 0.06, 4)), rng.uniform(0.5, 0.75))
    shifted = _shift(small, -sign * rng.uniform(15, 30))
    made["combined"] = h264_roundtrip([shifted] * 5, int(rng.integers(30, 37)))
    if neighbours:
        made["offset"] = h264_roundtrip(neighbours, int(rng.integers(28, 35)))
    return made


def build(names: list[str], seed: int, frames: dict) -> list[Item]:
    rng = np.random.default_rng(seed)
    items = []
    for name in names:
        image, around, neighbours = frames[name]
        items.append(Item(name, "original", image))
        for kind, copy in copies(image, around, rng, neighbours(rng) if neighbours else None).items():
            items.append(Item(name, kind, copy))
    return items


HALVED = ("brick", "gravel", "grass", "hubble_deep_field", "page", "text", "coins")
FACES = 24


def look_alikes() -> dict[str, np.ndarray]:
    """Distinct pictures made to look alike: hard negatives that the easy set lacks.

    The left and right halves of the texture-like stills (same material to the eye of an
    embedding, different pictures), and small frontal faces of different people from
    ``skimage.data.lfw_subset`` (4x up to 100 px: centred faces hash alike).
    """
    import skimage.data

    made = {}
    for name in HALVED:
        image = still(name)
        half = image.shape[1] // 2
        made[f"left-half:{name}"], made[f"right-half:{name}"] = image[:, :half], image[:, half:]
    for i, face in enumerate(skimage.data.lfw_subset()[:FACES]):
        grey = cv2.resize((face * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        made[f"lfw-face:{i}"] = np.dstack([grey] * 3)
    return made


def load_frames() -> tuple[dict, list[str]]:
    """Keyframes with, for clips, a way to draw a window of frames 3-6 away from the keyframe."""
    frames: dict = {name: (image, [image] * 5, None) for name, image in look_alikes().items()}
    clips: dict[str, list[np.ndarray]] = {}
    for name, (image, around) in keyframes().items():
        neighbours = None
        if not name.startswith("still:"):
            clip, span = name.split(":")
            start, end = map(int, span.split("-"))
            all_frames = clips.setdefault(clip, video_frames(clip))
            middle = (start + end) // 2

            def neighbours(rng: np.random.Generator, f=all_frames, m=middle) -> list[np.ndarray]:
                at = m + int(rng.choice([-1, 1]) * rng.integers(3, 7))
                return f[at - 2 : at + 3]

        frames[name] = (image, around, neighbours)
    return frames, list(frames)


def embed(items: list[Item], suite: KeyframeSuite) -> tuple[list[int], np.ndarray]:
    out = suite(pa.table({"keyframe_jpeg": pa.array([jpeg(item.image) for item in items], pa.binary())}))
    return out.column("phash").to_pylist(), np.array(out.column("visual_embedding").to_pylist(), np.float32)


def score(items: list[Item], groups: dict[str, str]) -> dict[str, float]:
    ids = [f"{i:05d}" for i in range(len(items))]
    truth_pos = grouped = hit = 0
    for a, b in itertools.combinations(range(len(items)), 2):
        same = items[a].original == items[b].original
        together = groups[ids[a]] == groups[ids[b]]
        truth_pos += same
        grouped += together
        hit += same and together
    precision, recall = hit / grouped if grouped else 1.0, hit / truth_pos if truth_pos else 1.0
    result = {"precision": precision, "recall": recall}
    result["f1"] = _f(result, 1.0)
    original_of = {item.original: ids[i] for i, item in enumerate(items) if item.kind == "original"}
    per_kind: dict[str, list[bool]] = defaultdict(list)
    for i, item in enumerate(items):
        if item.kind != "original":
            per_kind[item.kind].append(groups[ids[i]] == groups[original_of[item.original]])
    for kind, found in per_kind.items():
        result[f"recall_{kind}"] = sum(found) / len(found)
    return result


def run(items: list[Item], hashes: list[int], vectors: np.ndarray, **thresholds) -> dict[str, float]:
    ids = [f"{i:05d}" for i in range(len(items))]
    return score(items, group_duplicates(ids, hashes, vectors, **thresholds))


def _f(result: dict[str, float], beta: float) -> float:
    p, r = result["precision"], result["recall"]
    return (1 + beta**2) * p * r / max(beta**2 * p + r, 1e-9)


def split(names: list[str]) -> tuple[list[str], list[str]]:
    """Two halves by family, so both halves of a still (a look-alike pair) land on the same side."""
    families = sorted({name.split(":", 1)[1] if "half:" in name else name for name in names})
    side_a = set(families[0::2])
    in_a = [name for name in names if (name.split(":", 1)[1] if "half:" in name else name) in side_a]
    return in_a, [name for name in names if name not in set(in_a)]


def margins(items: list[Item], hashes: list[int], vectors: np.ndarray) -> dict[str, float]:
    """The gaps the thresholds must fall in: how far copies stray, how close distinct pictures come."""
    from actors.phash import hamming

    copies_h: dict[str, int] = defaultdict(int)
    copies_c: dict[str, float] = defaultdict(lambda: 1.0)
    closest_h, closest_c = 64, -1.0
    for a, b in itertools.combinations(range(len(items)), 2):
        h, c = hamming(hashes[a], hashes[b]), float(vectors[a] @ vectors[b])
        if items[a].original == items[b].original:
            if "original" in (items[a].kind, items[b].kind):
                kind = items[b].kind if items[a].kind == "original" else items[a].kind
                copies_h[kind], copies_c[kind] = max(copies_h[kind], h), min(copies_c[kind], c)
        else:
            closest_h, closest_c = min(closest_h, h), max(closest_c, c)
    found = {f"max_hamming_{k}": v for k, v in copies_h.items()}
    found |= {f"min_cosine_{k}": round(v, 3) for k, v in copies_c.items()}
    return found | {"distinct_min_hamming": closest_h, "distinct_max_cosine": round(closest_c, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    frames, names = load_frames()
    half_a, half_b = split(names)
    suite = KeyframeSuite({"phash": PerceptualHasher(), "visual": VisualTagger(device="cpu")})
    constants = {"max_hamming": duplicates.MAX_HAMMING, "min_cosine": duplicates.MIN_COSINE,
                 "loose_hamming": duplicates.LOOSE_HAMMING}

    calibration = build(half_a, 0, frames)
    cal_hashes, cal_vectors = embed(calibration, suite)
    sweep = []
    for max_hamming, min_cosine, loose in itertools.product(
        range(6, 15, 2), (0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96), range(12, 33, 4)
    ):
        thresholds = {"max_hamming": max_hamming, "min_cosine": min_cosine, "loose_hamming": loose}
        result = run(calibration, cal_hashes, cal_vectors, **thresholds)
        sweep.append({**thresholds, **result, "f05": _f(result, 0.5)})
    sweep.sort(key=lambda r: (-r["f05"], -r["recall"]))

    full = build(names, 1, frames)
    # The real damaged copy in the bundle joins the carphone group.
    distorted = video_frames("carphone_distorted.mp4")[60]
    full.append(Item("carphone_pristine.mp4:0-120", "distorted-source", distorted))
    hashes, vectors = embed(full, suite)
    held_out = [i for i, item in enumerate(full) if item.original in set(half_b)]
    held = [full[i] for i in held_out]
    report = {
        "constants": constants,
        "items": len(full),
        "originals": len(names),
        "held_out_half_b": run(held, [hashes[i] for i in held_out], vectors[held_out]),
        "full_set": run(full, hashes, vectors),
        "hash_only": run(full, hashes, vectors, min_cosine=1.01),
        "visual_only": run(full, hashes, vectors, max_hamming=-1, loose_hamming=64),
        "calibration_half_a": run(calibration, cal_hashes, cal_vectors),
        "margins_half_a": margins(calibration, cal_hashes, cal_vectors),
        "best_on_half_a": sweep[:6],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['items']} keyframes from {report['originals']} originals; constants {constants}")
    for key in ("held_out_half_b", "full_set", "hash_only", "visual_only", "calibration_half_a"):
        row = report[key]
        kinds = "  ".join(f"{k}={row[f'recall_{k}']:.2f}" for k in (*KINDS, "distorted-source")
                          if f"recall_{k}" in row)
        print(f"{key:20s} P={row['precision']:.3f} R={row['recall']:.3f} F1={row['f1']:.3f}   {kinds}")
    print("margins on half A:", report["margins_half_a"])
    print("best on half A by F0.5 (precision weighs double: a false merge hides distinct material):")
    for r in report["best_on_half_a"]:
        print(f"  max_hamming={r['max_hamming']:2d} min_cosine={r['min_cosine']:.2f} "
              f"loose_hamming={r['loose_hamming']:2d}  P={r['precision']:.3f} R={r['recall']:.3f} "
              f"F0.5={r['f05']:.3f}")
    print(f"{report['seconds']} s")


if __name__ == "__main__":
    main()
