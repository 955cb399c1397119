"""Near-duplicate groups: copies of a shot together, different shots apart, names stable."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import cv2
import numpy as np
import pyarrow as pa
import pytest
import skimage.data
from PIL import Image

from actors.duplicates import group_duplicates
from actors.keyframes import KeyframeSuite
from actors.phash import PerceptualHasher
from actors.visual import VisualTagger
from jobs.samples import sample_file


@pytest.fixture(scope="module")
def suite() -> KeyframeSuite:
    return KeyframeSuite({"phash": PerceptualHasher(), "visual": VisualTagger(device="cpu")})


def _jpeg(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _h264(image: np.ndarray, crf: int = 34) -> np.ndarray:
    """The picture after an H.264 round trip, as a broadcast copy would have it."""
    height, width = (side - side % 2 for side in image.shape[:2])
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 25)
        for _ in range(3):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image[:height, :width], format="rgb24")))
        out.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)][-1]


def _archive_copy(image: np.ndarray) -> np.ndarray:
    """Cropped 3 % a side, resized to 60 %, 20 levels brighter, re-encoded at CRF 30."""
    h, w = image.shape[:2]
    cropped = image[int(h * 0.03) : h - int(h * 0.03), int(w * 0.03) : w - int(w * 0.03)]
    small = cv2.resize(cropped, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    return _h264(np.clip(small.astype(np.int16) + 20, 0, 255).astype(np.uint8), crf=30)


def _bikes_shots() -> list[np.ndarray]:
    """Middle frames of four different shots of one clip: same street, different pictures."""
    wanted = {53, 106, 162, 214}
    with av.open(str(sample_file("bikes.mp4"))) as container:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in wanted]


def test_archive_copies_group_with_their_originals(suite: KeyframeSuite) -> None:
    originals = {
        "astronaut": skimage.data.astronaut(),
        "coffee": skimage.data.coffee(),
        "chelsea": skimage.data.chelsea(),
        "rocket": skimage.data.rocket(),
        "camera": np.dstack([skimage.data.camera()] * 3),
        **{f"bikes-{i}": frame for i, frame in enumerate(_bikes_shots())},
    }
    shots = {f"{name}/original": image for name, image in originals.items()}
    for name in ("astronaut", "chelsea", "bikes-1", "bikes-3"):
        shots[f"{name}/copy"] = _archive_copy(originals[name])
    ids = sorted(shots)
    out = suite(pa.table({"keyframe_jpeg": pa.array([_jpeg(shots[i]) for i in ids], pa.binary())}))
    groups = group_duplicates(
        ids, out.column("phash").to_pylist(), np.array(out.column("visual_embedding").to_pylist(), np.float32)
    )
    for name in originals:
        members = sorted(i for i in ids if groups[i] == groups[f"{name}/original"])
        expected = [f"{name}/copy", f"{name}/original"] if f"{name}/copy" in shots else [f"{name}/original"]
        assert members == expected, (name, members)
    assert groups["astronaut/original"] == "astronaut/copy", "a group is named by its smallest shot_id"


def _random_unit(rng: np.random.Generator, n: int, d: int = 64) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_rules_names_and_missing_signals() -> None:
    rng = np.random.default_rng(1)
    vectors = _random_unit(rng, 7)
    base = 0x0123456789ABCDEF
    hashes: list[int | None] = [int(h) for h in rng.integers(0, 2**63, 7, dtype=np.int64)]
    # d, b: same picture by hash (3 bits) though far apart in the embedding.
    hashes[1], hashes[3] = base, base ^ 0b111
    # e, g: a crop: 20 bits apart, nearly the same embedding.
    hashes[6] = (hashes[4] or 0) ^ 0xFFFFF
    vectors[6] = vectors[4] * 0.98 + vectors[0] * 0.02
    vectors[6] /= np.linalg.norm(vectors[6])
    # c, f: same embedding but 32 bits apart: two pictures that merely embed alike.
    vectors[5] = vectors[2]
    hashes[5] = (hashes[2] or 0) ^ 0xFFFFFFFF
    ids = ["a", "d", "c", "b", "e", "f", "g"]
    groups = group_duplicates(ids, hashes, vectors)
    assert groups == {"a": "a", "d": "b", "b": "b", "c": "c", "f": "f", "e": "e", "g": "e"}

    # A shot without a hash cannot be matched: the embedding rule needs the hash too.
    without_g = [None if i == "g" else h for i, h in zip(ids, hashes, strict=True)]
    no_hash = group_duplicates(ids, without_g, vectors)
    assert no_hash["g"] == "g" and no_hash["d"] == "b"
    missing_vector = [None if i == "d" else v for i, v in zip(ids, vectors, strict=True)]
    assert group_duplicates(ids, hashes, missing_vector)["d"] == "b", "the hash alone still matches"
    excluded = group_duplicates(ids, hashes, vectors, exclude=[i == "b" for i in ids])
    assert excluded["d"] == "d" and excluded["b"] == "b"

    order = rng.permutation(len(ids))
    shuffled = group_duplicates([ids[i] for i in order], [hashes[i] for i in order], vectors[order])
    assert shuffled == groups, "group names do not depend on input order"
    assert group_duplicates([], [], np.zeros((0, 64), np.float32)) == {}
    with pytest.raises(ValueError, match="one entry per shot"):
        group_duplicates(["a"], [], vectors[:1])


def test_scalable_indexes_find_the_same_groups() -> None:
    """Past EXACT_LIMIT the search switches to multi-index hashing and HNSW: same answer here."""
    rng = np.random.default_rng(7)
    n, copies = 400, 3
    vectors = _random_unit(rng, n)
    hashes = [int(h) for h in rng.integers(0, 2**63, n, dtype=np.int64)]
    ids = [f"shot-{i:04d}" for i in range(n)]
    for k in range(0, 60, copies):  # twenty materials of three copies each, one rule or the other
        for j in range(1, copies):
            flips = rng.choice(64, size=int(rng.integers(0, 9 if k % 2 else 20)), replace=False)
            hashes[k + j] = hashes[k] ^ int(sum(1 << int(f) for f in flips))
            if k % 2 == 0:
                vectors[k + j] = vectors[k] + rng.normal(scale=0.03, size=vectors.shape[1])
                vectors[k + j] /= np.linalg.norm(vectors[k + j])
    exact = group_duplicates(ids, hashes, vectors)
    scaled = group_duplicates(ids, hashes, vectors, exact_limit=10)
    assert scaled == exact
    assert len(set(exact.values())) == n - 40
