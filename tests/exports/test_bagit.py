"""BagIt bags of a real (tiny) remastered master, validated by the `bagit` library: what is in
them, that tampering is found, that bad input is one line and leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import bagit
import metsrw
import pytest
from lxml import etree
from test_mets import REEL_A, REEL_C, remastered_archive
from typer.testing import CliRunner

from catalog.iceberg import open_catalog
from catalog.settings import Settings
from exports import pbcore
from exports.record import load_records
from exports.run import MANIFEST, ExportError, export, export_command


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return remastered_archive(tmp_path_factory.mktemp("bagit"))


@pytest.fixture(scope="module")
def exported(archive: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bags")
    return out, export(archive, out=str(out), formats=["bagit"], asset_ids=[REEL_A])


def master_row(archive: Settings) -> dict:
    (record,) = load_records(open_catalog(archive), [REEL_A])
    row = record.remaster("master")
    assert row is not None
    return row


def test_the_bag_validates_and_holds_master_access_manifests_mets_and_pbcore(exported, archive) -> None:
    out, summary = exported
    root = out / REEL_A / "bag"
    bag = bagit.Bag(str(root))
    bag.validate()  # every payload file against manifest-sha256.txt, and the tag files
    payload = sorted(Path(p).name for p in bag.payload_files())
    assert payload == [
        "access.manifest.json", "access.mp4", "master.framemd5", "master.manifest.json",
        "master.mkv", "mets.xml", "pbcore.xml",
    ]  # fmt: skip
    master = master_row(archive)
    assert (root / "data" / "master.mkv").read_bytes() == Path(master["output_uri"]).read_bytes()
    assert bag.entries["data/master.mkv"]["sha256"] == master["output_sha256"]
    assert bag.info["External-Identifier"] == REEL_A and bag.info["Archivist-Pipeline-Version"] == "p1"
    assert summary["exported"][0]["files"] == sorted(
        f"{REEL_A}/bag/{p.relative_to(root).as_posix()}" for p in root.rglob("*") if p.is_file()
    )
    assert not [p for p in (out / REEL_A).iterdir() if p.name != "bag"]  # no staging left behind


def test_the_bags_mets_names_its_payload_and_its_pbcore_reads(exported) -> None:
    out, _ = exported
    data = out / REEL_A / "bag" / "data"
    document = metsrw.METSDocument.fromfile(str(data / "mets.xml"))
    files = {f.label: f for f in document.all_files() if f.type == "Item"}
    for label in ("master", "access", "master.framemd5", "master.manifest", "access.manifest"):
        path = data / files[label].path  # package-relative
        assert hashlib.sha256(path.read_bytes()).hexdigest() == files[label].checksum, label
    manifest = json.loads((data / "master.manifest.json").read_text())
    assert manifest["fixity"]["sha256"] == files["master.framemd5"].checksum
    pb = etree.parse(str(data / "pbcore.xml")).getroot()
    assert etree.QName(pb).namespace == pbcore.NS


def test_a_tampered_payload_fails_validation(exported, tmp_path: Path) -> None:
    out, _ = exported
    copy = tmp_path / "bag"
    shutil.copytree(out / REEL_A / "bag", copy)
    master = copy / "data" / "master.mkv"
    data = bytearray(master.read_bytes())
    data[len(data) // 2] ^= 0xFF
    master.write_bytes(bytes(data))
    with pytest.raises(bagit.BagValidationError, match=r"master\.mkv"):
        bagit.Bag(str(copy)).validate()


def test_exporting_again_replaces_the_bag_whole(archive: Settings, tmp_path: Path) -> None:
    first = export(archive, out=str(tmp_path), formats=["bagit"], asset_ids=[REEL_A])
    again = export(archive, out=str(tmp_path), formats=["bagit"], asset_ids=[REEL_A])
    assert len(first["exported"]) == 1 and not again["exported"] and len(again["skipped"]) == 1
    forced = export(archive, out=str(tmp_path), formats=["bagit"], asset_ids=[REEL_A], force=True)
    assert forced["exported"][0]["files"] == first["exported"][0]["files"]
    bagit.Bag(str(tmp_path / REEL_A / "bag")).validate()
    assert [p.name for p in (tmp_path / REEL_A).iterdir()] == ["bag"]


def test_an_asset_without_a_master_is_one_line_and_nothing_written(
    archive: Settings, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportError) as caught:
        export(archive, out=str(out), formats=["bagit"], asset_ids=[REEL_A, REEL_C])
    assert str(caught.value) == (
        f"asset {REEL_C} has no preservation master: a bag needs one; nothing was exported"
    )
    assert not out.exists()  # not even the bag of REEL_A, which has a master
    monkeypatch.setenv("ARCHIVIST_HOME", archive.home)
    import typer

    app = typer.Typer()
    app.command()(export_command)
    result = CliRunner().invoke(app, [REEL_C, "--format", "bagit", "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: asset {REEL_C} has no preservation master: a bag needs one; nothing was exported"
    ]
    assert not out.exists()


def test_an_unwritable_target_is_one_line_and_nothing_written(archive: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"  # a target below a file cannot be made (even by root)
    blocker.write_bytes(b"x")
    with pytest.raises(ExportError, match="cannot write to the export target"):
        export(archive, out=str(blocker / "x"), formats=["bagit"], asset_ids=[REEL_A])
    assert blocker.read_bytes() == b"x"


def test_a_master_changed_since_it_was_written_is_not_packaged(archive: Settings, tmp_path: Path) -> None:
    master = Path(master_row(archive)["output_uri"])
    kept = master.read_bytes()
    try:
        master.write_bytes(kept[:-1] + bytes([kept[-1] ^ 0xFF]))
        with pytest.raises(ExportError, match="master's bytes no longer match its SHA-256"):
            export(archive, out=str(tmp_path), formats=["bagit"], asset_ids=[REEL_A])
    finally:
        master.write_bytes(kept)
    assert not (tmp_path / REEL_A).exists()
    assert json.loads((tmp_path / MANIFEST).read_text())["formats"] == {}


def test_a_bag_exported_to_s3_downloads_whole_and_validates(
    archive: Settings, s3_bucket, tmp_path: Path
) -> None:
    bucket, client = s3_bucket
    settings = Settings(home=archive.home, catalog_url=None)  # with the ARCHIVIST_S3_* of the fixture
    done = export(settings, out=f"s3://{bucket}/exports", formats=["bagit"], asset_ids=[REEL_A])
    prefix = f"exports/{REEL_A}/bag/"
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    assert [f"exports/{f}" for f in done["exported"][0]["files"]] == keys
    for key in keys:
        target = tmp_path / key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(target))
    bag = bagit.Bag(str(tmp_path))
    bag.validate()
    assert "data/master.mkv" in bag.entries


def test_frame_checksums_changed_since_they_were_written_are_not_packaged(
    archive: Settings, tmp_path: Path
) -> None:
    checksums = Path(master_row(archive)["output_uri"]).with_suffix(".framemd5")
    kept = checksums.read_text()
    try:
        checksums.write_text(kept.replace(" ", "  ", 1))
        with pytest.raises(ExportError, match="frame checksums no longer match"):
            export(archive, out=str(tmp_path), formats=["bagit"], asset_ids=[REEL_A])
    finally:
        checksums.write_text(kept)
    assert not (tmp_path / REEL_A).exists()
