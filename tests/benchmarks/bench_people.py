"""People benchmark: do the faces of one person, across clips that were re-encoded and resized, end up
as one person, and only theirs, and do the ids stay put when a second run adds material?

Run ``python tests/benchmarks/bench_people.py`` (``--json`` for machine-readable output; ``--quick``
for a smaller set).

The set. Identities: the astronaut (``skimage.data.astronaut``), the cameraman (``camera``) and
frontal faces of ``skimage.data.lfw_subset`` (25 px grey, enlarged as the faces tests do). LFW holds
some people more than once and the subset has no names, so a subset face is kept as an identity only
when its descriptor is more than 0.45 from every identity kept before it (likely a repeat of one
person below that); how many were dropped is printed. Each identity gets several clips, each made
from its one picture with parameters from a seeded generator: face 110-230 px, anywhere on a 480x320
background of a random colour, mirrored or not, turned up to 8 degrees, brightness and contrast
moved, blurred or not, then encoded with H.264 at CRF 26-38 and decoded at 60-100 % of its size
(what an access copy of a digitised tape does to a face). The keyframe (the clip's middle frame)
goes through the real faces stage (CenterFace, dlib landmarks and descriptor:
``actors.faces.FaceAnalyzer``), its rows are committed to a real catalog and the people step
(``jobs.people.refresh_people``) makes the tracks and people. A detection whose centre is not on the
pasted picture is counted as a false detection and left out of the pairs.

Two runs: the first has the first half of the identities with 3 clips each; the second adds a 4th
clip of each of them and the other half of the identities with 4 clips each. Measured after each:
pairwise precision and recall over the tracks (a pair is positive when both are of one identity;
precision = same-person pairs that are one identity / same-person pairs; recall = one-identity pairs
in one person / one-identity pairs), and after the second: how many of the first run's tracks
changed person id (the promise: none), and how many of the new clips of known identities joined the
identity's old id.

Calibration and measurement, honestly: the first try (0.5 to a person's centroid, on descriptors
scaled to length 1) gave pairwise precision 0.59 then 0.21 on 12 identities (seed 0): these small
grey faces' descriptors crowd. The raw distances of seed 0's clips (one person's 90 % under 0.37,
all under 0.43; different people's 1 % quantile 0.53, 2 pairs in 9,527 under 0.42) set
`catalog.people_clusters.JOIN_DISTANCE` and `GROUP_DISTANCE` to 0.42. A run at seed 1 then showed
precision 0.71 / 0.28: the thresholds were of raw distances but applied to descriptors scaled to
length 1 (which shrinks them by the descriptors' 1.2-1.5 lengths); that bug was fixed (no scaling,
as dlib measures), no threshold moved. So seed 1's clips were seen once before the figures below
were taken; the identities' source pictures are the same at every seed (there are no more here).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pyarrow as pa
import skimage.data

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.faces import FaceAnalyzer
from actors.stage import registry
from catalog import schema
from catalog.iceberg import open_catalog
from catalog.people import roster
from catalog.settings import Settings
from jobs.commit import commit_tables
from jobs.people import refresh_people

WIDTH, HEIGHT = 480, 320
DISTINCT = 0.45
STAGES = [registry()[n] for n in ("segment", "faces")]


def pictures() -> list[np.ndarray]:
    """Each identity's one picture (RGB, face roughly centred)."""
    found = [
        skimage.data.astronaut()[10:250, 130:330],
        cv2.cvtColor(skimage.data.camera()[30:230, 170:330], cv2.COLOR_GRAY2RGB),
    ]
    for patch in skimage.data.lfw_subset()[:100]:
        face = cv2.resize((patch * 255).astype(np.uint8), (200, 200), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((260, 240), 128, np.uint8)
        canvas[30:230, 20:220] = face
        found.append(cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB))
    return found


def clip_frame(picture: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, ...]]:
    """A frame with the picture pasted as a face would be filmed, and where it went."""
    size = int(rng.integers(110, 231))
    scale = size / max(picture.shape[:2])
    face = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        face = face[:, ::-1]
    h, w = face.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-8, 8)), 1.0)
    face = cv2.warpAffine(np.ascontiguousarray(face), turn, (w, h), borderMode=cv2.BORDER_REFLECT)
    face = np.clip(face.astype(np.float32) * rng.uniform(0.75, 1.25) + rng.uniform(-25, 25), 0, 255).astype(
        np.uint8
    )
    if rng.random() < 0.5:
        face = cv2.GaussianBlur(face, (0, 0), float(rng.uniform(0.6, 1.4)))
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = rng.integers(0, 256, 3)
    x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
    frame[y : y + h, x : x + w] = face
    return frame, (float(x), float(y), float(x + w), float(y + h))


def encoded(frame: np.ndarray, rng: np.random.Generator, frames: int = 9) -> np.ndarray:
    """The frame through H.264 (a few frames, the middle one kept) at a random CRF, then resized."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": str(int(rng.integers(26, 39)))})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer, "r") as source:
        decoded = [f.to_ndarray(format="rgb24") for f in source.decode(video=0)]
    return decoded[len(decoded) // 2]


def _inside(box: list[float], pasted: tuple[float, ...]) -> bool:
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return pasted[0] <= x <= pasted[2] and pasted[1] <= y <= pasted[3]


def run_rows(clips: list[dict[str, Any]], run_id: str) -> dict[str, pa.Table]:
    stamp = {"run_id": run_id, "pipeline_version": "bench"}
    assets, shots, faces = [], [], []
    for clip in clips:
        aid = clip["asset_id"]
        shot = schema.shot_id(aid, 0, 9)
        assets.append(
            {
                "asset_id": aid,
                "uri": f"/bench/{aid}.mp4",
                "size_bytes": 1,
                "status": "ok",
                "shot_count": 1,
                **stamp,
            }
        )
        shots.append(
            {
                "asset_id": aid,
                "shot_id": shot,
                "shot_index": 0,
                "start_frame": 0,
                "end_frame": 9,
                "start_s": 0.0,
                "end_s": 0.36,
                **stamp,
            }
        )
        for i, face in enumerate(clip["faces"]):
            faces.append(
                {"shot_id": shot, "asset_id": aid, "face_index": i, **face, "model": "bench", **stamp}
            )
    return {
        "assets": pa.Table.from_pylist(assets, schema=schema.ASSETS),
        "shots": pa.Table.from_pylist(shots, schema=schema.SHOTS),
        "faces": pa.Table.from_pylist(faces, schema=schema.FACES),
    }


def pairwise(labels: dict[str, tuple[str, str]]) -> tuple[float, float]:
    """Pairwise precision and recall of (truth, person) per track."""
    tp = fp = fn = 0
    for (t1, p1), (t2, p2) in itertools.combinations(labels.values(), 2):
        if p1 == p2 and t1 == t2:
            tp += 1
        elif p1 == p2:
            fp += 1
        elif t1 == t2:
            fn += 1
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="12 identities rather than 24")
    parser.add_argument("--seed", type=int, default=1, help="seed 0 calibrated the thresholds")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    analyzer = FaceAnalyzer(device="cpu")
    started = time.perf_counter()

    wanted = 12 if args.quick else 24
    identities: list[tuple[np.ndarray, np.ndarray]] = []
    dropped = undetected = 0
    for picture in pictures():
        if len(identities) == wanted:
            break
        found = [f for f in analyzer.analyse(picture) if f["identity"] is not None]
        if not found:
            undetected += 1
            continue
        vector = np.asarray(found[0]["identity"], np.float32)
        if any(np.linalg.norm(vector - v) <= DISTINCT for _, v in identities):
            dropped += 1
            continue
        identities.append((picture, vector))
    half = len(identities) // 2

    def clips_of(who: int, numbers: range) -> list[dict[str, Any]]:
        made = []
        for n in numbers:
            frame, box = clip_frame(identities[who][0], rng)
            picture = encoded(frame, rng)
            shrink = float(rng.uniform(0.6, 1.0))
            small = cv2.resize(picture, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
            scaled = tuple(v * shrink for v in box)
            faces = analyzer.analyse(small)
            truths = [f"id{who}" if _inside(f["box"], scaled) else "false" for f in faces]
            made.append({"asset_id": f"id{who}-clip{n}", "faces": faces, "truths": truths})
        return made

    first = [c for who in range(half) for c in clips_of(who, range(3))]
    second = [c for who in range(half) for c in clips_of(who, range(3, 4))]
    second += [c for who in range(half, len(identities)) for c in clips_of(who, range(4))]
    made_s = time.perf_counter() - started

    results: dict[str, Any] = {
        "identities": len(identities),
        "lfw_dropped_as_repeats": dropped,
        "undetected_pictures": undetected,
    }
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=home, catalog_url=None)
        catalog = open_catalog(settings)
        truth: dict[str, str] = {}
        previous: dict[str, str] = {}
        for run, clips in (("run1", first), ("run2", second)):
            tables = run_rows(clips, run)
            commit_tables(catalog, tables, STAGES, [c["asset_id"] for c in clips], run_id=run)
            clock = time.perf_counter()
            summary = refresh_people(catalog, run_id=run)
            seconds = time.perf_counter() - clock
            cast = roster(catalog)
            for clip in clips:
                shot = schema.shot_id(clip["asset_id"], 0, 9)
                for i, who in enumerate(clip["truths"]):
                    for track, row in cast.tracks.items():
                        if row["shot_id"] == shot and i in row["face_indexes"]:
                            truth[track] = who
            labels = {
                t: (truth[t], cast.person_of[t]) for t in cast.tracks if truth.get(t, "false") != "false"
            }
            precision, recall = pairwise(labels)
            faces = sum(len(c["faces"]) for c in clips)
            results[run] = {
                "clips": len(clips),
                "faces_detected": faces,
                "false_detections": sum(t == "false" for c in clips for t in c["truths"]),
                "clips_without_face": sum(not any(t != "false" for t in c["truths"]) for c in clips),
                "tracks_scored": len(labels),
                "people": len({p for _, p in labels.values()}),
                "pairwise_precision": round(precision, 4),
                "pairwise_recall": round(recall, 4),
                "people_step_s": round(seconds, 3),
                "step": summary,
            }
            if run == "run2":
                results[run]["first_run_tracks_renumbered"] = sum(
                    cast.person_of.get(t) != p for t, p in previous.items()
                )
                old_ids = {truth[t]: p for t, p in previous.items() if truth.get(t, "false") != "false"}
                joining = [
                    (truth[t], cast.person_of[t])
                    for t in cast.tracks
                    if t not in previous and truth.get(t, "false") in old_ids
                ]
                results[run]["new_clips_of_known_people"] = len(joining)
                results[run]["joined_their_old_id"] = sum(old_ids[w] == p for w, p in joining)
            previous = dict(cast.person_of)
    results["seconds_to_make_and_detect"] = round(made_s, 1)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"identities: {results['identities']} (lfw faces dropped as likely repeats: {dropped}; "
        f"pictures with no face found: {undetected})"
    )
    for run in ("run1", "run2"):
        r = results[run]
        print(
            f"{run}: {r['clips']} clips, {r['faces_detected']} faces ({r['false_detections']} false, "
            f"{r['clips_without_face']} clips missed), {r['tracks_scored']} tracks scored into "
            f"{r['people']} people: pairwise precision {r['pairwise_precision']:.3f}, "
            f"recall {r['pairwise_recall']:.3f}; people step {r['people_step_s']} s"
        )
    r = results["run2"]
    print(
        f"run2: first-run tracks whose person id changed: {r['first_run_tracks_renumbered']}; new clips "
        f"of known people: {r['new_clips_of_known_people']}, joined their old id: {r['joined_their_old_id']}"
    )
    print(f"making and detecting the set: {results['seconds_to_make_and_detect']} s")


if __name__ == "__main__":
    main()
