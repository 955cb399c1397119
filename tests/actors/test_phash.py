"""Perceptual hashes: a copy of a picture hashes alike, a different picture does not."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pyarrow as pa
from keyframe_helpers import BAD_KEYFRAMES, keyframe_batch, still
from PIL import Image

from actors.keyframes import KeyframeSuite
from actors.phash import PerceptualHasher, hamming, phash
from actors.technical import TechnicalTagger
from catalog.schema import PHASH, TECHNICAL

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def _recompressed(image: np.ndarray, scale: float, quality: int) -> np.ndarray:
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out = io.BytesIO()
    Image.fromarray(small).save(out, format="JPEG", quality=quality)
    return np.asarray(Image.open(out).convert("RGB"))


def test_copies_hash_alike_and_different_pictures_far_apart() -> None:
    hashes = {name: phash(still(name)) for name in PHOTOS}
    for name in PHOTOS:
        image = still(name)
        assert hamming(hashes[name], phash(_recompressed(image, 0.5, 60))) <= 4, name
        assert hamming(hashes[name], phash(_recompressed(image, 1.7, 30))) <= 4, name
        brighter = np.clip(image.astype(np.int16) + 25, 0, 255).astype(np.uint8)
        assert hamming(hashes[name], phash(brighter)) <= 4, name
        assert hamming(hashes[name], phash(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))) <= 2, name
    for i, a in enumerate(PHOTOS):
        for b in PHOTOS[i + 1 :]:
            assert hamming(hashes[a], hashes[b]) >= 20, (a, b)


def test_hamming() -> None:
    a = phash(still("coffee"))
    assert 0 <= a < 2**64
    assert hamming(a, a) == 0 and hamming(a, a ^ (2**64 - 1)) == 64 and hamming(0, 0b1011) == 3
    assert hamming(a, phash(still("chelsea"))) == hamming(phash(still("chelsea")), a)


def test_stage_fills_good_rows_and_nulls_bad_ones() -> None:
    coffee = still("coffee")
    batch = keyframe_batch([coffee, *BAD_KEYFRAMES, np.zeros((90, 160, 3), np.uint8)])
    out = PerceptualHasher()(batch)
    assert out.schema.field("phash").type == pa.uint64()
    values = out.column("phash").to_pylist()
    assert values[1:3] == [None, None]
    assert hamming(values[0], phash(coffee)) <= 2
    assert values[3] == 0  # a flat frame has no structure; all blank frames group together
    assert PerceptualHasher()(out).schema == out.schema


def test_suite_shares_one_decode_with_other_stages() -> None:
    batch = keyframe_batch([still("camera"), None])
    out = KeyframeSuite({"technical": TechnicalTagger(), "phash": PerceptualHasher()})(batch)
    assert out.schema.names == ["shot_id", "keyframe_jpeg", *TECHNICAL.names, *PHASH.names]
    assert out.column("phash").to_pylist()[1] is None and out.column("technical").to_pylist()[1] is None
    assert "monochrome" in [tag["label"] for tag in out.column("technical").to_pylist()[0]]
