"""Media and catalogs with planted truth for the audit tests: honest remasters, swaps, skewed faces."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa

from actors.remaster import Remasterer
from catalog.iceberg import append, open_catalog
from catalog.schema import FACES, REMASTERS, SHOTS, shot_id
from catalog.settings import Settings
from jobs.audit import synth

DONOR = 12
"""The lfw_subset face pasted over the astronaut's: a different person (identity distance ~0.8)."""


def face_clip(folder: Path, frames: int = 10) -> tuple[Path, list[synth.Box]]:
    """The astronaut drifting across a 320x240 H.264 clip, and her face box in each frame."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "astronaut.mp4"
    return path, synth.write_face_clip(str(path), synth.astronaut_face(), frames=frames)


def remaster(
    source: Path, out_root: Path, *, asset_id: str | None = None, restore: str = "denoise", upscale: int = 2
) -> list[dict[str, Any]]:
    """The remaster stage run honestly over one source: its master and access rows."""
    asset_id = asset_id or hashlib.sha256(source.read_bytes()).hexdigest()
    table = Remasterer(out_root=str(out_root), restore=restore, upscale=upscale)(
        pa.table({"asset_id": [asset_id], "uri": [str(source)]})
    )
    rows = table.to_pylist()
    assert [r["status"] for r in rows] == ["ok", "ok"], [r["error"] for r in rows]
    return rows


def rewrite_master(source: str, target: str, change: Callable[[int, np.ndarray], np.ndarray]) -> None:
    """A Matroska/FFV1 file with every frame of ``source`` passed through ``change`` (index, RGB)."""
    with av.open(source) as inp:
        stream = inp.streams.video[0]
        frames = [change(k, f.to_ndarray(format="rgb24")) for k, f in enumerate(inp.decode(stream))]
        rate = stream.average_rate
    with av.open(target, "w", format="matroska") as out:
        video = out.add_stream("ffv1", rate=rate)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
        for frame in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="bgr0")))
        out.mux(video.encode())


def swapper(
    boxes: list[synth.Box], scale: int, donor: int = DONOR, seed: int = 1
) -> Callable[[int, np.ndarray], np.ndarray]:
    """Pastes another person's inner face over the face of each frame (boxes in source pixels)."""
    rng = np.random.default_rng(seed)
    face = synth.lfw_faces()[donor]

    def change(index: int, image: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = (scale * v for v in boxes[index])
        return synth.swap_face(image, (x0, y0, x1, y1), face, rng, colour_strength=1.0)

    return change


def face_rows(
    groups: dict[str, list[str]],
    *,
    shots: int,
    faces_per_shot: int = 2,
    asset_count: int = 5,
    seed: int = 0,
    run_id: str = "run-faces",
) -> pa.Table:
    """A FACES table: ``groups`` maps an attribute to the value of each face, drawn in order."""
    total = shots * faces_per_shot
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(total):
        shot = k // faces_per_shot
        asset = f"asset{shot % asset_count}"
        row = {
            "shot_id": shot_id(asset, shot, shot + 1),
            "asset_id": asset,
            "face_index": k % faces_per_shot,
            "box": [0.0, 0.0, 50.0, 50.0],
            "score": 0.9,  # the perceptions are left null unless `groups` sets them
            "identity": rng.normal(size=128).tolist(),
            "model": "test",
            "run_id": run_id,
            "pipeline_version": "test",
        }
        for attribute, values in groups.items():
            row[attribute] = values[k]
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=FACES)


def skewed(total: int, share_male: float, seed: int = 0) -> list[str]:
    """Perceived genders with exactly this share of 'male', shuffled."""
    males = round(total * share_male)
    values = ["male"] * males + ["female"] * (total - males)
    np.random.default_rng(seed).shuffle(values)
    return values


def catalog_of(
    settings: Settings,
    run_id: str,
    remasters: list[dict[str, Any]],
    faces: pa.Table | None = None,
    keyframes: dict[str, list[int]] | None = None,
) -> None:
    """Commits a run's remaster rows, one shot per keyframe, and faces, as the run would have."""
    catalog = open_catalog(settings)
    bookkeeping = {"run_id": run_id, "pipeline_version": "test"}
    append(
        catalog,
        "remasters",
        pa.Table.from_pylist([{**r, **bookkeeping} for r in remasters], schema=REMASTERS),
        run_id=run_id,
    )
    shots = []
    for asset_id, frames in (keyframes or {}).items():
        for index, frame in enumerate(frames):
            shots.append(
                {
                    "asset_id": asset_id,
                    "shot_id": shot_id(asset_id, frame, frame + 1),
                    "shot_index": index,
                    "start_frame": frame,
                    "end_frame": frame + 1,
                    "keyframe_frame": frame,
                    **bookkeeping,
                }
            )
    if shots:
        append(catalog, "shots", pa.Table.from_pylist(shots, schema=SHOTS), run_id=run_id)
    if faces is not None:
        append(catalog, "faces", faces, run_id=run_id)
