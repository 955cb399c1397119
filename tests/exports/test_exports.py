"""Exports over a small catalog: records, WebVTT read back by webvtt-py, IIIF loaded back into
iiif-prezi3's models, the command's incremental writes and bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pytest
import webvtt
from catalog_helpers import SAMPLE, asset_id, write_catalog
from typer.testing import CliRunner

from catalog import schema
from catalog.iceberg import open_catalog, replace_assets
from catalog.settings import Settings
from exports import formats
from exports import webvtt as vtt
from exports.formats import IIIF_INSTALL
from exports.record import UnknownAssetError, load_records
from exports.run import MANIFEST, ExportError, export, export_command

REEL_A = asset_id("reel-a")
REEL_C = asset_id("reel-c")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("exports")
    settings = Settings(home=str(root / "home"), catalog_url=None)
    write_catalog(settings, SAMPLE, spaces=("visual",), access_copies=["reel-c"])
    catalog = open_catalog(settings)
    segments = [
        {
            "asset_id": REEL_A,
            "segment_index": 1,
            "start_s": 2.5,
            "end_s": 4.0,
            "text": "Fetch & <sit>!",
            "language": "en",
            "model": "whisper-test",
            "shot_ids": None,
        },
        {
            "asset_id": REEL_A,
            "segment_index": 0,
            "start_s": 0.2,
            "end_s": 1.5,
            "text": "Good dog.",
            "language": "en",
            "model": "whisper-test",
            "shot_ids": None,
        },
    ]
    stamp = {"run_id": "r1", "pipeline_version": "p1"}
    rows = pa.Table.from_pylist([{**s, **stamp} for s in segments], schema=schema.TRANSCRIPTS)
    replace_assets(catalog, "transcripts", rows, [REEL_A], run_id="r1")
    qc = [
        {
            "asset_id": REEL_A,
            "uri": "/footage/reel-a.mp4",
            "status": "ok",
            "width": 720,
            "height": 576,
            "fps": 25.0,
            "duration_s": 60.0,
            "video_codec": "mpeg2video",
            **stamp,
        }
    ]
    replace_assets(catalog, "qc", pa.Table.from_pylist(qc, schema=schema.QC), [REEL_A], run_id="r1")
    return settings


def test_records_gather_shots_captions_tags_and_transcript_in_order(archive: Settings) -> None:
    (record,) = load_records(open_catalog(archive), [REEL_A])
    assert record.asset_id == REEL_A and record.qc is not None and record.qc["width"] == 720
    assert [s.shot["shot_index"] for s in record.shots] == [0, 1, 2]
    assert record.shots[0].caption["caption"] == "A shot of a dog."
    assert [t["label"] for t in record.shots[2].tags] == ["beagle"]
    assert [s["segment_index"] for s in record.transcript] == [0, 1]
    assert record.shots[0].transcript == "Good dog."  # 0.2-1.5 lies in shot 0 (0-2 s)
    assert record.shots[1].transcript == "Good dog. Fetch & <sit>!"  # both overlap shot 1 (1-7 s)


def test_an_unknown_asset_is_an_error_naming_it(archive: Settings) -> None:
    with pytest.raises(UnknownAssetError, match="nope"):
        load_records(open_catalog(archive), [REEL_A, "nope"])


def test_webvtt_tracks_parse_back(archive: Settings) -> None:
    (record,) = load_records(open_catalog(archive), [REEL_A])
    transcript = webvtt.from_buffer(io.StringIO(vtt.render(record, "transcript").decode()))
    assert [(c.start, c.end) for c in transcript] == [
        ("00:00:00.200", "00:00:01.500"),
        ("00:00:02.500", "00:00:04.000"),
    ]
    assert transcript[1].raw_text == "Fetch &amp; &lt;sit&gt;!"
    captions = webvtt.from_buffer(io.StringIO(vtt.render(record, "captions").decode()))
    assert [c.text for c in captions] == ["A shot of a dog."] * 3
    assert captions[1].start == "00:00:01.000" and captions[1].end == "00:00:07.000"
    chapters = webvtt.from_buffer(io.StringIO(vtt.render(record, "chapters").decode()))
    assert [c.identifier for c in chapters] == ["shot-1", "shot-2", "shot-3"]
    assert chapters[0].text.startswith("Shot 1")
    with pytest.raises(vtt.UnknownTrackError):
        vtt.render(record, "subtitles")


def test_iiif_manifest_loads_back_with_canvas_ranges_and_annotations(archive: Settings) -> None:
    iiif_prezi3 = pytest.importorskip("iiif_prezi3", reason=IIIF_INSTALL)
    from exports import iiif

    records = load_records(open_catalog(archive), [REEL_A, REEL_C])
    base = "http://archive.example"
    document = json.loads(iiif.to_bytes(iiif.manifest(records[0], base)))
    assert document["@context"] == "http://iiif.io/api/presentation/3/context.json"
    loaded = iiif_prezi3.Manifest(**{k: v for k, v in document.items() if k != "@context"})
    canvas = loaded.items[0]
    assert canvas.duration == 60.0 and (canvas.width, canvas.height) == (720, 576)
    painting = canvas.items[0].items[0]
    assert painting.motivation == "painting" and painting.body.type == "Video"
    assert str(painting.body.id) == f"{base}/media/source/{REEL_A}"  # no access copy: the source
    (toc,) = loaded.structures
    fragments = [str(r.items[0].id).split("#t=")[1] for r in toc.items]
    assert fragments == ["0.000,2.000", "1.000,7.000", "2.000,4.000"]
    notes = canvas.annotations[0].items
    assert {n.motivation for n in notes} == {"supplementing"}
    assert str(notes[0].body.id) == f"{base}/vtt/{REEL_A}/transcript.vtt"
    assert document["thumbnail"][0]["id"].startswith(f"{base}/media/keyframes/")
    access = json.loads(iiif.to_bytes(iiif.manifest(records[1], base)))
    assert access["items"][0]["items"][0]["items"][0]["body"]["id"] == f"{base}/media/video/{REEL_C}"
    collection = json.loads(iiif.to_bytes(iiif.collection(records, base)))
    loaded_collection = iiif_prezi3.Collection(**{k: v for k, v in collection.items() if k != "@context"})
    assert [str(m.id) for m in loaded_collection.items] == [
        f"{base}/iiif/{REEL_A}/manifest.json",
        f"{base}/iiif/{REEL_C}/manifest.json",
    ]


def test_export_writes_each_asset_and_skips_what_has_not_changed(archive: Settings, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    first = export(archive, out=out, formats=["webvtt", "pbcore"], everything=True)
    assert first["assets"] == 5 and len(first["exported"]) == 10 and not first["skipped"]
    assert (tmp_path / "out" / REEL_A / "pbcore.xml").is_file()
    assert (tmp_path / "out" / REEL_A / "chapters.vtt").is_file()
    assert not [p for p in (tmp_path / "out").rglob("*.part")]
    again = export(archive, out=out, formats=["webvtt", "pbcore"], everything=True)
    assert not again["exported"] and len(again["skipped"]) == 10
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert set(manifest["formats"]) == {"webvtt", "pbcore"} and REEL_A in manifest["formats"]["pbcore"]
    moved = export(archive, out=out, formats=["pbcore"], asset_ids=[REEL_A], base_url="http://elsewhere")
    assert [e["asset_id"] for e in moved["exported"]] == [REEL_A]
    by_query = export(
        archive,
        out=str(tmp_path / "q"),
        formats=["webvtt"],
        query=f"select asset_id from assets where asset_id = '{REEL_C}'",
    )
    assert [e["asset_id"] for e in by_query["exported"]] == [REEL_C]


def test_bad_input_is_one_line_and_nothing_written(archive: Settings, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="'nope' is not in the catalog"):
        export(archive, out=str(out), formats=["webvtt"], asset_ids=[REEL_A, "nope"])
    assert not out.exists()
    with pytest.raises(ExportError, match="no export format 'mxf'"):
        export(archive, out=str(out), formats=["mxf"], asset_ids=[REEL_A])
    blocker = tmp_path / "a-file"  # a target below a file cannot be made (even by root)
    blocker.write_bytes(b"x")
    with pytest.raises(ExportError, match="cannot write to the export target"):
        export(archive, out=str(blocker / "x"), formats=["pbcore"], asset_ids=[REEL_A])
    assert blocker.read_bytes() == b"x"


def test_the_command_prints_one_line_or_json(archive: Settings, tmp_path: Path, monkeypatch) -> None:
    import typer

    monkeypatch.setenv("ARCHIVIST_HOME", archive.home)
    app = typer.Typer()
    app.command()(export_command)
    runner = CliRunner()
    result = runner.invoke(app, [REEL_A, "--format", "webvtt", "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["exported"][0]["asset_id"] == REEL_A
    bad = runner.invoke(app, ["nope", "--format", "webvtt", "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "'nope' is not in the catalog" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_export_to_s3_is_one_put_per_file_and_incremental(archive: Settings, s3_bucket) -> None:
    bucket, client = s3_bucket
    settings = Settings(home=archive.home, catalog_url=None)  # with the ARCHIVIST_S3_* of the fixture
    first = export(settings, out=f"s3://{bucket}/exports", formats=["webvtt", "pbcore"], asset_ids=[REEL_A])
    assert len(first["exported"]) == 2
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {
        f"exports/{REEL_A}/pbcore.xml",
        f"exports/{REEL_A}/captions.vtt",
        f"exports/{MANIFEST}",
    } <= keys
    again = export(settings, out=f"s3://{bucket}/exports", formats=["webvtt", "pbcore"], asset_ids=[REEL_A])
    assert not again["exported"] and len(again["skipped"]) == 2
    with pytest.raises(ExportError, match="cannot write to the export target"):
        export(settings, out="s3://no-such-bucket-here/x", formats=["pbcore"], asset_ids=[REEL_A])


def test_without_iiif_prezi3_the_iiif_format_is_one_clear_error(
    archive: Settings, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(formats, "iiif_available", lambda: False)
    with pytest.raises(ExportError, match="needs iiif-prezi3, which is not installed"):
        export(archive, out=str(tmp_path / "o"), formats=["webvtt", "iiif"], asset_ids=[REEL_A])
    assert not (tmp_path / "o").exists()


def test_an_iiif_export_writes_manifests_and_a_collection_of_them(archive: Settings, tmp_path: Path) -> None:
    pytest.importorskip("iiif_prezi3", reason=IIIF_INSTALL)
    done = export(
        archive, out=str(tmp_path), formats=["iiif"], asset_ids=[REEL_A, REEL_C], base_url="http://a.b"
    )
    assert [e["files"] for e in done["exported"]] == [
        [f"{REEL_A}/manifest.json"],
        [f"{REEL_C}/manifest.json"],
    ]
    listed = json.loads((tmp_path / "collection.json").read_text())["items"]
    assert [i["id"] for i in listed] == [f"http://a.b/iiif/{a}/manifest.json" for a in (REEL_A, REEL_C)]
