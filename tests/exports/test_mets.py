"""METS/PREMIS of a real (tiny) remastered master, read back by metsrw: the files with their
fixity against the bytes on disk, and the PREMIS events, agents and objects the manifests give."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import metsrw
import numpy as np
import pyarrow as pa
import pytest
from catalog_helpers import SAMPLE, asset_id, write_catalog
from lxml import etree

from catalog import schema
from catalog.iceberg import open_catalog, replace_assets
from catalog.settings import Settings
from exports import mets
from exports.record import load_records
from exports.run import export

REEL_A, REEL_C = asset_id("reel-a"), asset_id("reel-c")


def tiny_source(path: Path, frames: int = 6) -> Path:
    """48x32 H.264 with a stereo AAC track: enough for a real remaster in a few seconds."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        audio = container.add_stream("aac", rate=48000)
        yy, xx = np.mgrid[0:32, 0:48]
        for k in range(frames):
            image = np.stack([(xx * 7 + k * 9) % 256, (yy * 5 + k * 3) % 256, ((xx + yy) * 3) % 256], -1)
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24").reformat(
                format="yuv420p"
            )
            frame.pts = k
            container.mux(video.encode(frame))
        container.mux(video.encode())
        for block in range(6):
            t = (np.arange(1024) + block * 1024) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            samples = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            samples.sample_rate, samples.pts = 48000, block * 1024
            container.mux(audio.encode(samples))
        container.mux(audio.encode())
    return path


def remastered_archive(root: Path) -> Settings:
    """The sample catalog, reel-a remastered for real (master, frame checksums, access copy,
    manifests, by `actors.remaster`) and given a QC record; reel-c has an access copy only."""
    from actors.remaster import Remasterer

    settings = Settings(home=str(root / "home"), catalog_url=None)
    write_catalog(settings, SAMPLE, spaces=("visual",), access_copies=["reel-c"])
    source = tiny_source(root / "reel-a.mp4")
    rows = Remasterer(out_root=str(root / "remasters"), upscale=2, device="cpu").remaster(REEL_A, str(source))
    stamp = {"run_id": "r2", "pipeline_version": "p1"}
    catalog = open_catalog(settings)
    table = pa.Table.from_pylist([{**r, **stamp} for r in rows], schema=schema.REMASTERS)
    replace_assets(catalog, "remasters", table, [REEL_A], run_id="r2")
    qc = {
        "asset_id": REEL_A, "uri": "/footage/reel-a.mp4", "status": "ok", "container": "mov,mp4",
        "video_codec": "h264", "width": 48, "height": 32, "fps": 25.0, "policy_passed": False,
        "policy_failures": ["video_codec is h264, not one of ffv1"], **stamp,
    }  # fmt: skip
    replace_assets(catalog, "qc", pa.Table.from_pylist([qc], schema=schema.QC), [REEL_A], run_id="r2")
    return settings


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return remastered_archive(tmp_path_factory.mktemp("mets"))


@pytest.fixture(scope="module")
def parsed(archive: Settings) -> tuple[object, metsrw.METSDocument, bytes]:
    (record,) = load_records(open_catalog(archive), [REEL_A])
    data = mets.to_bytes(record, mets.read_stored(record, {}))
    return record, metsrw.METSDocument.fromstring(data), data


def by_label(document: metsrw.METSDocument) -> dict[str, metsrw.FSEntry]:
    return {f.label: f for f in document.all_files() if f.type == "Item"}


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_files_and_their_fixity_match_the_bytes_on_disk(parsed) -> None:
    record, document, _ = parsed
    files = by_label(document)
    assert set(files) == {
        "source",
        "master",
        "master.framemd5",
        "master.manifest",
        "access",
        "access.manifest",
    }
    master = record.remaster("master")
    assert files["master"].use == "preservation" and files["master"].path == master["output_uri"]
    assert files["master"].checksum == sha256(master["output_uri"]) == master["output_sha256"]
    assert files["master"].checksumtype == "SHA-256"
    (obj,) = files["master"].get_premis_objects()
    assert obj.message_digest == master["output_sha256"] and obj.format_name == "FFV1 (Matroska)"
    framemd5 = str(Path(master["output_uri"]).with_suffix(".framemd5"))
    assert files["master.framemd5"].path == framemd5
    (checksums,) = files["master.framemd5"].get_premis_objects()
    assert checksums.message_digest == sha256(framemd5)  # what the manifest recorded is what is there
    assert files["master.manifest"].checksum == sha256(master["manifest_uri"])
    assert files["source"].checksum == REEL_A  # identity is content


def test_premis_events_carry_the_manifests_operations_decisions_and_models(parsed) -> None:
    record, document, _ = parsed
    files = by_label(document)
    events = {e.event_type: e for e in files["master"].get_premis_events()}
    assert set(events) == {"restoration", "upscaling", "message digest calculation", "fixity check"}
    restoration = events["restoration"]
    detail = restoration.event_detail_information__event_detail
    assert detail.startswith("mode auto; operations: [") and '"op": "deblock"' in detail
    notes = [
        n.text
        for n in etree.fromstring(restoration.tostring()).iter(f"{{{mets.PREMIS}}}eventOutcomeDetailNote")
    ]
    assert "deblock: applied: blockiness" in " ".join(notes) and any(
        n.startswith("denoise: not applied: noise") for n in notes
    )
    master = record.remaster("master")
    upscaling = events["upscaling"].event_detail_information__event_detail
    assert upscaling.startswith(f"x2 by archivist-upscaler-x2 {master['model_version']}")
    assert events["fixity check"].event_outcome_information__event_outcome == "pass"
    agents = {a.agent_name: a for a in files["master"].get_premis_agents()}
    assert set(agents) == {"archivist", "archivist-upscaler-x2"}
    assert agents["archivist-upscaler-x2"].agent_type == "software"
    source_events = {e.event_type: e for e in files["source"].get_premis_events()}
    assert set(source_events) == {"ingestion", "validation", "metadata extraction"}
    assert source_events["validation"].event_outcome_information__event_outcome == "ok, policy failed"
    assert "composed/v1" in {a.agent_name for a in files["source"].get_premis_agents()}


def test_the_document_is_premis_3_and_its_ids_are_stable(parsed, archive: Settings) -> None:
    record, _, data = parsed
    root = etree.fromstring(data)
    assert root.get("OBJID") == REEL_A
    (creator,) = metsrw.METSDocument.fromstring(data).agents
    assert (creator.role, creator.type, creator.name) == ("CREATOR", "SOFTWARE", "archivist p1")
    events = root.findall(f".//{{{mets.PREMIS}}}event")
    assert events and {e.get("version") for e in events} == {"3.0"}
    objects = root.findall(f".//{{{mets.PREMIS}}}object")
    assert {o.get(f"{{{mets.XSI}}}type") for o in objects} == {"premis:file"}
    again = etree.fromstring(mets.to_bytes(record, mets.read_stored(record, {})))
    ids = sorted(e.text for e in root.iter(f"{{{mets.PREMIS}}}eventIdentifierValue"))
    assert len(set(ids)) == len(ids) == 10  # 3 of the source, 4 of the master, 3 of the access copy
    assert ids == sorted(e.text for e in again.iter(f"{{{mets.PREMIS}}}eventIdentifierValue"))


def test_export_writes_mets_per_asset_and_an_access_only_asset_has_no_master(
    archive: Settings, tmp_path: Path
) -> None:
    done = export(archive, out=str(tmp_path), formats=["mets"], asset_ids=[REEL_A, REEL_C])
    assert [e["files"] for e in done["exported"]] == [[f"{REEL_A}/mets.xml"], [f"{REEL_C}/mets.xml"]]
    access_only = by_label(metsrw.METSDocument.fromfile(str(tmp_path / REEL_C / "mets.xml")))
    assert set(access_only) == {"source", "access"}
