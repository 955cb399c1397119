"""A small catalog written straight into the tables, with every embedding space indexed.

Shots are about topics; each topic has a fixed direction in each space, and a
shot's vectors lie near its topic's, so which shots a query should find is
known without any model. `FakeText` stands in for MiniLM: a query's vector
is the sum of the directions of the topics it names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from PIL import Image

from catalog import schema
from catalog.iceberg import open_catalog, replace_all, replace_assets
from catalog.settings import Settings
from indexes.build import build_index

DIMS = {"visual": 48, "text": 32, "concept": 32}
TOPICS = ("dog", "car", "beach", "city", "forest")


@dataclass
class ShotSpec:
    asset: str
    topic: str
    duration: float = 2.0
    tags: Sequence[str] = ()
    objects: Sequence[str] = ()
    faces: int = 0
    nsfw: float | None = None
    monochrome: bool = False
    copy_of: int | None = None
    """Index (in the list of specs) of the shot this one is a near-duplicate of."""
    spread: float = 0.15
    keyframe_uri: str | None = field(default=None)
    """Where the keyframe is, when not the usual place in the warehouse."""
    later: Sequence[str] = ()
    """Topics of a long take's further keyframes (keyframe_index 1, 2, …), each embedded."""


SAMPLE = [
    ShotSpec("reel-a", "dog", tags=["golden retriever"], faces=1, nsfw=0.01),  # 0
    ShotSpec("reel-a", "dog", duration=6, tags=["golden retriever"], nsfw=0.05),  # 1
    ShotSpec("reel-a", "dog", tags=["beagle"], nsfw=0.9),  # 2
    ShotSpec("reel-b", "dog", copy_of=0, tags=["golden retriever"], nsfw=0.01),  # 3: a copy of 0
    ShotSpec("reel-b", "dog", copy_of=0, nsfw=0.01),  # 4: another
    ShotSpec("reel-c", "car", objects=["car"], monochrome=True, nsfw=0.02),  # 5
    ShotSpec("reel-c", "car", objects=["car", "person"], faces=2, nsfw=0.02),  # 6
    ShotSpec("reel-c", "car", duration=8, objects=["car"]),  # 7
    ShotSpec("reel-d", "beach", tags=["seashore"], nsfw=0.1),  # 8
    ShotSpec("reel-d", "beach", tags=["seashore"], monochrome=True),  # 9
    ShotSpec("reel-e", "city", objects=["person"]),  # 10
    ShotSpec("reel-e", "city"),  # 11
    ShotSpec("reel-e", "forest"),  # 12
]
"""Thirteen shots of five reels: three copies of one dog shot, tags, objects, faces, safety scores."""


def asset_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def direction(topic: str, space: str) -> np.ndarray:
    """The topic's direction in a space ("dog+car": between the two); `concept` is the text
    space (images placed among words)."""
    key = "text" if space == "concept" else space
    total = np.zeros(DIMS[space])
    for part in topic.split("+"):
        rng = np.random.default_rng(int(hashlib.sha256(f"{part}/{key}".encode()).hexdigest()[:8], 16))
        vector = rng.normal(size=DIMS[space])
        total += vector / np.linalg.norm(vector)
    return (total / np.linalg.norm(total)).astype(np.float32)


class FakeText:
    """Stands in for `TextEmbedder().encode`."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = []
        for text in texts:
            found = [direction(t, "text") for t in TOPICS if t in text.lower()]
            vector = (
                np.sum(found, axis=0) if found else np.random.default_rng(len(text)).normal(size=DIMS["text"])
            )
            rows.append(vector / np.linalg.norm(vector))
        return np.asarray(rows, np.float32)


def fake_image(topic: str):
    """Stands in for the visual model: every picture looks like `topic`."""
    return lambda image: direction(topic, "visual")


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_catalog(
    settings: Settings,
    specs: Sequence[ShotSpec],
    *,
    spaces: Sequence[str] = ("visual", "text", "concept"),
    access_copies: Sequence[str] = (),
    seed: int = 0,
) -> list[str]:
    """Commit the shots (and their assets, captions, tags, faces, duplicate groups, keyframes and
    embeddings), build an index per space, and return the shot ids in the order of `specs`."""
    rng = np.random.default_rng(seed)
    catalog = open_catalog(settings)
    ids, per_asset = [], {}
    for spec in specs:
        index = per_asset.get(spec.asset, 0)
        per_asset[spec.asset] = index + 1
        ids.append(schema.shot_id(asset_id(spec.asset), index, index + 1))
    stamp = {"run_id": "r1", "pipeline_version": "p1"}
    rows: dict[str, list[dict]] = {
        name: [] for name in ("shots", "keyframes", "embeddings", "captions", "tags", "faces")
    }
    vectors: dict[tuple[int, str], np.ndarray] = {}
    for i, (spec, shot) in enumerate(zip(specs, ids, strict=True)):
        aid = asset_id(spec.asset)
        start = float(i)
        keyframe = spec.keyframe_uri
        if keyframe is None:
            keyframe = settings.location("keyframes", aid[:2], aid, f"{shot}.jpg")
            _write(keyframe, jpeg((40 * i % 255, 80, 120)))
        rows["shots"].append(
            {
                "asset_id": aid,
                "shot_id": shot,
                "shot_index": i,
                "start_frame": i,
                "end_frame": i + 1,
                "start_s": start,
                "end_s": start + spec.duration,
                "keyframe_uri": keyframe,
                "is_monochrome": spec.monochrome,
                "nsfw_score": spec.nsfw,
                **stamp,
            }
        )
        rows["captions"].append(
            {
                "shot_id": shot,
                "asset_id": aid,
                "caption": f"A shot of a {spec.topic}.",
                "method": "composed/v1",
                "description": spec.topic,
                **stamp,
            }
        )
        for rank, label in enumerate(spec.tags, start=1):
            rows["tags"].append(
                {
                    "shot_id": shot,
                    "asset_id": aid,
                    "kind": "imagenet",
                    "label": label,
                    "score": 0.5,
                    "rank": rank,
                    "model": "test",
                    **stamp,
                }
            )
        for label in spec.objects:
            rows["tags"].append(
                {
                    "shot_id": shot,
                    "asset_id": aid,
                    "kind": "object",
                    "label": label,
                    "score": 0.9,
                    "model": "test",
                    **stamp,
                }
            )
        for face in range(spec.faces):
            rows["faces"].append(
                {"shot_id": shot, "asset_id": aid, "face_index": face, "score": 0.9, "model": "test", **stamp}
            )
        for k, topic in enumerate([spec.topic, *spec.later]):
            uri = keyframe
            if k:
                uri = settings.location("keyframes", aid[:2], aid, f"{shot}-{k}.jpg")
                _write(uri, jpeg((200, 40 * k % 255, 20)))
            rows["keyframes"].append(
                {"shot_id": shot, "asset_id": aid, "keyframe_index": k, "keyframe_uri": uri, **stamp}
            )
            for space in spaces:
                if spec.copy_of is not None:
                    vector = vectors[(spec.copy_of, space)] + 0.001 * rng.normal(size=DIMS[space])
                else:
                    vector = direction(topic, space) + spec.spread * rng.normal(size=DIMS[space])
                if k == 0:
                    vectors[(i, space)] = vector
                rows["embeddings"].append(
                    {
                        "shot_id": shot,
                        "asset_id": aid,
                        "space": space,
                        "model": "test",
                        "dim": DIMS[space],
                        "vector": vector.astype(np.float32).tolist(),
                        "keyframe_index": k,
                        **stamp,
                    }
                )
    assets = sorted({asset_id(spec.asset): spec.asset for spec in specs}.items())
    now = dt.datetime.now(dt.UTC)
    asset_rows = [
        {
            "asset_id": aid,
            "uri": f"/footage/{name}.mp4",
            "size_bytes": 1,
            "status": "ok",
            "duration_s": 60.0,
            "shot_count": per_asset[name],
            "processed_at": now,
            **stamp,
        }
        for aid, name in assets
    ]
    remasters = []
    for name in access_copies:
        aid = asset_id(name)
        uri = settings.location("remasters", aid, "access.mp4")
        _write(uri, bytes(range(256)) * 400)
        remasters.append(
            {
                "asset_id": aid,
                "source_uri": f"/footage/{name}.mp4",
                "kind": "access",
                "output_uri": uri,
                "status": "ok",
                **stamp,
            }
        )
    all_assets = [aid for aid, _ in assets]
    tables = {
        "assets": (schema.ASSETS, asset_rows),
        "remasters": (schema.REMASTERS, remasters),
        **{name: (schema.TABLES[name], rows[name]) for name in rows},
    }
    for name, (table_schema, table_rows) in tables.items():
        replace_assets(
            catalog, name, pa.Table.from_pylist(table_rows, schema=table_schema), all_assets, run_id="r1"
        )
    groups = {}
    for i in range(len(specs)):
        root = i
        while specs[root].copy_of is not None:
            root = specs[root].copy_of
        groups.setdefault(root, []).append(ids[i])
    dup_rows = [
        {"shot_id": shot, "dup_group": min(members), "group_size": len(members), "run_id": "r1"}
        for members in groups.values()
        for shot in members
    ]
    replace_all(catalog, "dup_groups", pa.Table.from_pylist(dup_rows, schema=schema.DUP_GROUPS), run_id="r1")
    for space in spaces:
        build_index(catalog, settings, space=space)
    return ids


def _write(path: str, data: bytes) -> None:
    from catalog.storage import write_atomic

    write_atomic(path, data)
