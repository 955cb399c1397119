"""Audit benchmark: how well the audits' detectors separate what they should, and what an audit costs.

Run ``python tests/benchmarks/bench_audit.py`` (``--json`` for machine-readable output,
``--retrain`` to rerun the manipulation detector's whole recipe first, ``--report-to PATH`` to
copy the demo catalog's HTML report somewhere to look at).

Manipulation detector. The committed JSON's held-out ROC AUC (people never trained on: lfw_subset
faces 70-99 and the astronaut), and the same detector on a fresh draw of those people's real and
manipulated faces (seed 1), overall and per manipulation kind.

Identity threshold. ``calibration_distances`` over lfw_subset faces 0-29 and the astronaut (seed 0)
is what ``DRIFT_THRESHOLD`` was set from: the calibrated threshold and its false-accept (a swap
passing as the same person) and false-reject (an honest restoration flagged) rates. Then the
committed constant on people it was not calibrated on (faces 30-59, seed 1).

Audit time. A small catalog built the way a run would leave it, without Ray: four face clips
(the astronaut and three lfw faces, 320x240, 8 frames) remastered by the real stage (denoise + x2
network); one master then has its face swapped in place and one access copy's manifest edited
(the planted findings); and a "photo collection" of the 100 lfw faces as 10 assets of 10 stills,
with faces found by ``FaceAnalyzer`` and visual embeddings by ``VisualTagger`` indexed for search.
The audit is timed twice: the first measures quality parity on the labelled set, the second finds
it cached (as every later audit with the same face model does).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

REPO = Path(__file__).resolve().parents[2]
for path in (REPO, REPO / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from audit_helpers import catalog_of, remaster, rewrite_master, swapper  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from actors.faces import FaceAnalyzer  # noqa: E402
from actors.upscale import Upscaler  # noqa: E402
from actors.visual import VisualTagger  # noqa: E402
from catalog.iceberg import append, open_catalog  # noqa: E402
from catalog.schema import EMBEDDINGS, FACES, SHOTS, shot_id  # noqa: E402
from catalog.settings import Settings  # noqa: E402
from indexes.build import build_index  # noqa: E402
from jobs.audit import synth  # noqa: E402
from jobs.audit.config import AuditConfig  # noqa: E402
from jobs.audit.identity import DRIFT_THRESHOLD, calibrate_threshold, calibration_distances  # noqa: E402
from jobs.audit.manipulation import (  # noqa: E402
    DEFAULT_WEIGHTS,
    HELD_OUT_FACES,
    KINDS,
    ManipulationDetector,
    make_samples,
    train_manipulation_detector,
)
from jobs.audit.run import audit_run  # noqa: E402

RUN_ID = "bench-audit"
CLIP_FACES = (None, 3, 18, 45)
"""The astronaut (None) and three lfw_subset faces, one clip each."""


def detector_figures(retrain: bool) -> dict[str, Any]:
    if retrain:
        train_manipulation_detector(DEFAULT_WEIGHTS)
    committed = json.loads(DEFAULT_WEIGHTS.read_text())
    detector = ManipulationDetector.load()
    faces = synth.lfw_faces()
    people = [faces[i] for i in HELD_OUT_FACES] + [synth.astronaut_face()]
    features, labels, kinds = make_samples(people, 4, np.random.default_rng(1), Upscaler(2, device="cpu"))
    scores = detector.score_features(features)
    fresh = {"all": round(float(roc_auc_score(labels, scores)), 4)}
    for kind in KINDS:
        keep = (kinds == "real") | (kinds == kind)
        fresh[kind] = round(float(roc_auc_score(labels[keep], scores[keep])), 4)
    flagged = scores > detector.threshold
    return {
        "committed_held_out": committed["held_out"],
        "fresh_held_out_auc": fresh,
        "fresh_false_positive_rate": round(float(flagged[labels == 0].mean()), 4),
        "threshold": detector.threshold,
        "samples": len(labels),
    }


def identity_figures(analyzer: FaceAnalyzer, upscaler: Upscaler) -> dict[str, Any]:
    calibration = calibration_distances(analyzer, upscaler)
    fitted = calibrate_threshold(calibration["same"], calibration["different"])
    other = calibration_distances(analyzer, upscaler, faces=range(30, 60), astronaut=False, seed=1)
    same, different = np.asarray(other["same"]), np.asarray(other["different"])
    return {
        "calibration": fitted,
        "committed_threshold": DRIFT_THRESHOLD,
        "unseen_people": {
            "false_accept_rate": round(float((different <= DRIFT_THRESHOLD).mean()), 4),
            "false_reject_rate": round(float((same > DRIFT_THRESHOLD).mean()), 4),
            "pairs": {"same": len(same), "different": len(different)},
            "same_max": round(float(same.max()), 4),
            "different_min": round(float(different.min()), 4),
        },
    }


def demo_catalog(settings: Settings, folder: Path, analyzer: FaceAnalyzer) -> dict[str, Any]:
    """The small catalog described above; returns what was planted."""
    rng = np.random.default_rng(0)
    remasters = []
    keyframes: dict[str, list[int]] = {}
    planted: dict[str, str] = {}
    for number, face_index in enumerate(CLIP_FACES):
        face = (
            synth.astronaut_face()
            if face_index is None
            else synth.tint(synth.lfw_faces()[face_index], synth.skin_gains(rng))
        )
        path = folder / f"clip{number}.mp4"
        boxes = synth.write_face_clip(str(path), face, frames=8, seed=number)
        rows = remaster(path, Path(settings.location("masters")))
        keyframes[rows[0]["asset_id"]] = [4]
        if number == 1:
            master = rows[0]["output_uri"]
            rewrite_master(master, master + ".swap.mkv", swapper(boxes, scale=2))
            Path(master + ".swap.mkv").replace(master)
            planted["face swapped into"] = master
        if number == 2:
            manifest = Path(rows[1]["manifest_uri"])
            edited = json.loads(manifest.read_text())
            edited["restoration"]["ops"] = []
            manifest.write_text(json.dumps(edited))
            planted["manifest edited"] = str(manifest)
        remasters.extend(rows)
    catalog_of(settings, RUN_ID, remasters, keyframes=keyframes)

    tagger = VisualTagger(device="cpu")
    shots, faces, embeddings = [], [], []
    bookkeeping = {"run_id": RUN_ID, "pipeline_version": "bench"}
    for index, patch in enumerate(synth.lfw_faces()):
        asset = f"stills-{index // 10}"
        image, _ = synth.face_canvas(patch)
        shot = shot_id(asset, index % 10, index % 10 + 1)
        shots.append(
            {
                "asset_id": asset,
                "shot_id": shot,
                "shot_index": index % 10,
                "start_frame": index % 10,
                "end_frame": index % 10 + 1,
                "keyframe_frame": 0,
                **bookkeeping,
            }
        )
        for k, face in enumerate(analyzer.analyse(image)):
            faces.append(
                {
                    "shot_id": shot,
                    "asset_id": asset,
                    "face_index": k,
                    **face,
                    "model": analyzer.faces_model,
                    **bookkeeping,
                }
            )
        vector = tagger.annotate([image])["visual_embedding"][0]
        embeddings.append(
            {
                "shot_id": shot,
                "asset_id": asset,
                "space": "visual",
                "model": tagger.visual_model,
                "dim": len(vector),
                "vector": vector,
                **bookkeeping,
            }
        )
    catalog = open_catalog(settings)
    append(catalog, "shots", pa.Table.from_pylist(shots, schema=SHOTS), run_id=RUN_ID)
    append(catalog, "faces", pa.Table.from_pylist(faces, schema=FACES), run_id=RUN_ID)
    append(catalog, "embeddings", pa.Table.from_pylist(embeddings, schema=EMBEDDINGS), run_id=RUN_ID)
    build_index(catalog, settings, space="visual")
    return {"outputs": len(remasters), "still_faces": len(faces), "planted": planted}


def audit_times(settings: Settings, analyzer: FaceAnalyzer) -> dict[str, Any]:
    config = AuditConfig()
    first = audit_run(settings, RUN_ID, config, analyzer=analyzer)
    second = audit_run(settings, RUN_ID, config, analyzer=analyzer)
    return {
        "first": first["seconds"],
        "cached_quality_parity": second["seconds"],
        "audits": second["audits"],
        "flagged": second["flagged"],
        "report": second["report"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--report-to", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    analyzer = FaceAnalyzer(device="cpu", threads=1)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    results["manipulation"] = detector_figures(args.retrain)
    results["identity"] = identity_figures(analyzer, Upscaler(2, device="cpu"))
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        settings = Settings(home=str(Path(folder) / "archive"), catalog_url=None)
        results["catalog"] = demo_catalog(settings, Path(folder), analyzer)
        results["audit"] = audit_times(settings, analyzer)
        if args.report_to:
            shutil.copy(results["audit"]["report"], args.report_to)
    results["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    m, i, a = results["manipulation"], results["identity"], results["audit"]
    print("manipulation detector (held-out people: lfw 70-99 + astronaut)")
    print(f"  ROC AUC, committed recipe's held-out set: {m['committed_held_out']['roc_auc']}")
    print(f"  ROC AUC, fresh draw of the same people ({m['samples']} crops): {m['fresh_held_out_auc']}")
    print(f"  real faces flagged at threshold {m['threshold']:.3f}: {m['fresh_false_positive_rate']:.1%}")
    c, u = i["calibration"], i["unseen_people"]
    print("identity drift threshold")
    print(
        f"  calibrated: {c['threshold']} (honest <= {c['same_max']}, swaps >= {c['different_min']}; "
        f"{c['pairs']['same']} + {c['pairs']['different']} pairs): "
        f"false accept {c['false_accept_rate']:.1%}, "
        f"false reject {c['false_reject_rate']:.1%}"
    )
    print(
        f"  committed {i['committed_threshold']} on unseen people (lfw 30-59): false accept "
        f"{u['false_accept_rate']:.1%}, false reject {u['false_reject_rate']:.1%} "
        f"(honest <= {u['same_max']}, swaps >= {u['different_min']})"
    )
    print(
        f"audit of the small catalog ({results['catalog']['outputs']} outputs, "
        f"{results['catalog']['still_faces']} faces in stills)"
    )
    print(f"  first audit: {a['first']}")
    print(f"  later audit: {a['cached_quality_parity']}")
    print(f"  checks: {a['audits']}")
    for finding in a["flagged"]:
        print(
            f"  flagged {finding['audit']}: {finding['subject']} ({finding['metric']} = {finding['value']})"
        )
    print(f"benchmark: {results['benchmark_seconds']} s")


if __name__ == "__main__":
    main()
