"""EBUCore 1.10 per asset, parsed with lxml and checked against the element rules exports.ebucore
keeps (no EBUCore XSD is shipped: no package on the registries this project reaches has it)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from catalog_helpers import SAMPLE, asset_id, write_catalog
from lxml import etree

from catalog import schema
from catalog.iceberg import open_catalog, replace_assets
from catalog.settings import Settings
from exports import ebucore, pbcore
from exports.record import load_records

NS = {"e": ebucore.NS, "dc": ebucore.DC}
REEL_A, REEL_C = asset_id("reel-a"), asset_id("reel-c")
MASTER_SHA = "ab" * 32


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(home=str(tmp_path_factory.mktemp("ebucore") / "home"), catalog_url=None)
    write_catalog(settings, SAMPLE, spaces=("visual",), access_copies=["reel-c"])
    catalog = open_catalog(settings)
    stamp = {"run_id": "r1", "pipeline_version": "p1"}
    track = {"stream": 1, "codec": "pcm_s24le", "channels": 2, "sample_rate": 48000, "layout": "stereo"}
    qc = {
        "asset_id": REEL_A, "uri": "/footage/reel-a.mp4", "status": "ok", "container": "mov,mp4",
        "width": 720, "height": 576, "fps": 25.0, "duration_s": 65.04, "video_codec": "mpeg2video",
        "bit_depth": 8, "field_order": "tff", "sample_aspect_ratio": "16:15",
        "display_aspect_ratio": "4:3", "audio_tracks": [track], **stamp,
    }  # fmt: skip
    replace_assets(catalog, "qc", pa.Table.from_pylist([qc], schema=schema.QC), [REEL_A], run_id="r1")
    master = {
        "asset_id": REEL_A, "source_uri": "/footage/reel-a.mp4", "kind": "master",
        "output_uri": "/remasters/reel-a/master.mkv", "output_sha256": MASTER_SHA, "codec": "ffv1",
        "width": 720, "height": 576, "fps": 25.0, "field_order": "tff", "sample_aspect_ratio": "16:15",
        "model": "archivist-upscaler-x2", "model_version": "ed78c9e113ea", "upscale": 1, "status": "ok",
        **stamp,
    }  # fmt: skip
    rows = pa.Table.from_pylist([master], schema=schema.REMASTERS)
    replace_assets(catalog, "remasters", rows, [REEL_A], run_id="r1")
    (record,) = load_records(catalog, [REEL_A])
    shot = record.shots[0].shot
    text = {
        "shot_id": shot["shot_id"],
        "asset_id": REEL_A,
        "kind": "text",
        "label": "GOAL!",
        "model": "ocr-t",
    }
    existing = [t for s in record.shots for t in s.tags]
    tags = pa.Table.from_pylist([*existing, {**text, **stamp}], schema=schema.TAGS)
    replace_assets(catalog, "tags", tags, [REEL_A], run_id="r1")
    segment = {
        "asset_id": REEL_A, "segment_index": 0, "start_s": 0.2, "end_s": 1.5, "text": "Good dog.",
        "language": "en", "model": "whisper-test", "shot_ids": None, **stamp,
    }  # fmt: skip
    segments = pa.Table.from_pylist([segment], schema=schema.TRANSCRIPTS)
    replace_assets(catalog, "transcripts", segments, [REEL_A], run_id="r1")
    return load_records(catalog, [REEL_A, REEL_C])


def local(element) -> str:
    return etree.QName(element).localname


def in_order(names: list[str], order: tuple[str, ...]) -> bool:
    return all(n in order for n in names) and [order.index(n) for n in names] == sorted(
        order.index(n) for n in names
    )


def test_core_metadata_follows_the_schema_sequence_with_dublin_core_values(records) -> None:
    for record in records:
        root = etree.fromstring(ebucore.to_bytes(record))
        assert etree.QName(root).namespace == ebucore.NS and local(root) == "ebuCoreMain"
        assert root.get("version") == "1.10"
        (core,) = root
        assert local(core) == "coreMetadata"
        names = [local(c) for c in core]
        assert in_order(names, ebucore.ORDER), names
        ids = core.findall("e:identifier", NS)
        assert ids[0].findtext("dc:identifier", namespaces=NS) == record.asset_id
        assert ids[0].get("formatLabel") == "SHA-256"
        assert core.findtext("e:title/dc:title", namespaces=NS) == record.asset["uri"].rsplit("/", 1)[1]
        for part in core.findall("e:part", NS):
            inner = [local(c) for c in part]
            assert inner[-2:] == ["partStartTime", "partDuration"], inner
            assert in_order(inner[:-2], ebucore.ORDER), inner


def test_technical_metadata_of_the_source_comes_from_the_qc_record(records) -> None:
    core = etree.fromstring(ebucore.to_bytes(records[0]))[0]
    source, master = core.findall("e:format", NS)
    assert source.get("formatName") == "original" and master.get("formatName") == "preservation master"
    for fmt in (source, master):
        assert in_order([local(c) for c in fmt], ebucore.FORMAT_ORDER)
        assert in_order([local(c) for c in fmt.find("e:videoFormat", NS)], ebucore.VIDEO_ORDER)
    video = source.find("e:videoFormat", NS)
    assert (video.findtext("e:width", namespaces=NS), video.findtext("e:height", namespaces=NS)) == (
        "720",
        "576",
    )
    assert video.find("e:frameRate", NS).text == "25"
    aspects = {
        a.get("typeLabel"): (
            a.findtext("e:factorNumerator", namespaces=NS),
            a.findtext("e:factorDenominator", namespaces=NS),
        )
        for a in video.findall("e:aspectRatio", NS)
    }
    assert aspects == {"display": ("4", "3"), "sample": ("16", "15")}
    assert video.find("e:videoEncoding", NS).get("typeLabel") == "mpeg2video"
    assert video.findtext("e:scanningFormat", namespaces=NS) == "interlaced"
    assert video.findtext("e:scanningOrder", namespaces=NS) == "top"
    audio = source.find("e:audioFormat", NS)
    assert in_order([local(c) for c in audio], ebucore.AUDIO_ORDER)
    assert audio.findtext("e:samplingRate", namespaces=NS) == "48000"
    assert audio.findtext("e:channels", namespaces=NS) == "2"
    assert source.findtext("e:duration/e:normalPlayTime", namespaces=NS) == "PT1M"  # as probed
    assert source.find("e:containerFormat", NS).get("containerFormatName") == "mov,mp4"
    assert master.findtext("e:hash/e:hashValue", namespaces=NS) == MASTER_SHA
    assert master.find("e:hash/e:hashFunction", NS).get("typeLabel") == "SHA-256"
    assert master.findtext("e:locator", namespaces=NS) == "/remasters/reel-a/master.mkv"
    assert master.find("e:containerFormat", NS).get("containerFormatName") == "Matroska"
    assert master.find("e:audioFormat", NS) is not None  # the master keeps the source's tracks


def test_shots_are_parts_with_time_ranges_marked_machine_generated(records) -> None:
    core = etree.fromstring(ebucore.to_bytes(records[0]))[0]
    parts = core.findall("e:part", NS)
    assert [p.get("partName") for p in parts] == ["Shot 1", "Shot 2", "Shot 3"]
    assert parts[1].findtext("e:partStartTime/e:normalPlayTime", namespaces=NS) == "PT1S"
    assert parts[1].findtext("e:partDuration/e:normalPlayTime", namespaces=NS) == "PT6S"
    first = {d.get("typeLabel"): d for d in parts[0].findall("e:description", NS)}
    assert set(first) == {"caption", "on-screen text", "transcript"}
    assert first["caption"].findtext("dc:description", namespaces=NS) == "A shot of a dog."
    assert first["caption"].get("typeDefinition") == "machine-generated by composed/v1, pipeline p1"
    assert first["on-screen text"].get("typeDefinition") == "machine-generated by ocr-t, pipeline p1"
    assert first["transcript"].get("typeDefinition") == "machine-generated by whisper-test, pipeline p1"
    subject = parts[0].find("e:subject", NS)
    assert subject.findtext("dc:subject", namespaces=NS) == "golden retriever"
    assert subject.get("typeDefinition") == "machine-generated by test, pipeline p1"
    assert core.findtext("e:language/dc:language", namespaces=NS) == "en"


def test_ebucore_and_pbcore_describe_the_same_copies(records) -> None:
    for record in records:
        core = etree.fromstring(ebucore.to_bytes(record))[0]
        pb = etree.fromstring(pbcore.to_bytes(record))
        pb_ns = {"p": pbcore.NS}
        locations = [
            i.findtext("p:instantiationLocation", namespaces=pb_ns)
            for i in pb.findall("p:pbcoreInstantiation", pb_ns)
        ]
        formats = core.findall("e:format", NS)
        assert locations == [f.findtext("e:locator", namespaces=NS) for f in formats]


def test_play_time_is_an_xml_duration() -> None:
    assert [ebucore.play_time(s) for s in (0, 1, 65.04, 3723.5)] == [
        "PT0S",
        "PT1S",
        "PT1M5.04S",
        "PT1H2M3.5S",
    ]
