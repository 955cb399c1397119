"""The training-set exports read back by real readers: the `webdataset` package iterates the
shards and decodes keyframe, caption, metadata and vectors; pyarrow and DuckDB read the
Parquet of shots. Values are compared with the catalog's own rows, not with what the export
meant to write. Also: same rows, same bytes; an incremental export rewrites only the shards
whose rows changed; bad input is one line and nothing written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from catalog_helpers import SAMPLE, ShotSpec, asset_id, write_catalog
from PIL import Image
from typer.testing import CliRunner

from catalog import schema
from catalog.iceberg import open_catalog, read, replace_assets
from catalog.settings import Settings
from exports import dataset
from exports.record import Embedding, load_records
from exports.run import MANIFEST, ExportError, export, export_command

wds = pytest.importorskip("webdataset", reason="pip install webdataset (the test extra)")

REEL_A = asset_id("reel-a")
REEL_E = asset_id("reel-e")
SPECS = [*SAMPLE, ShotSpec("reel-f", "forest", keyframe_uri="/nonexistent/keyframe.jpg")]
"""The sample's thirteen shots and one whose keyframe is gone: fourteen samples."""
SHARD = 5


def _archive(root: Path) -> Settings:
    settings = Settings(home=str(root / "home"), catalog_url=None)
    write_catalog(settings, SPECS, spaces=("visual", "text"))
    catalog = open_catalog(settings)
    stamp = {"run_id": "r1", "pipeline_version": "p1"}
    segment = {
        "asset_id": REEL_A,
        "segment_index": 0,
        "start_s": 0.2,
        "end_s": 1.5,
        "text": "Good dog.",
        "model": "whisper-test",
        **stamp,
    }
    replace_assets(
        catalog,
        "transcripts",
        pa.Table.from_pylist([segment], schema=schema.TRANSCRIPTS),
        [REEL_A],
        run_id="r1",
    )
    tags = read(catalog, "tags", row_filter=f"asset_id == '{REEL_A}'").to_pylist()
    reel = read(catalog, "shots", row_filter=f"asset_id == '{REEL_A}'").to_pylist()
    first = next(r["shot_id"] for r in reel if r["shot_index"] == 0)  # 0-2 s: where "Good dog." is said
    sign = {**tags[0], "shot_id": first, "kind": "text", "label": "EXIT", "score": 0.8, "rank": None}
    replace_assets(
        catalog, "tags", pa.Table.from_pylist([*tags, sign], schema=schema.TAGS), [REEL_A], run_id="r1"
    )
    # a long take's second keyframe has vectors too: not the shot's (its row names keyframe 0)
    second = read(catalog, "embeddings", row_filter=f"shot_id == '{first}'").to_pylist()
    second = [{**r, "keyframe_index": 1, "vector": [9.0] * r["dim"]} for r in second]
    rows = read(catalog, "embeddings", row_filter=f"asset_id == '{REEL_A}'").to_pylist() + second
    replace_assets(
        catalog, "embeddings", pa.Table.from_pylist(rows, schema=schema.EMBEDDINGS), [REEL_A], run_id="r1"
    )
    return settings


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return _archive(tmp_path_factory.mktemp("datasets"))


def _catalog_rows(settings: Settings) -> tuple[dict, dict, dict]:
    catalog = open_catalog(settings)
    vectors = {
        (r["shot_id"], r["space"]): np.asarray(r["vector"], np.float32)
        for r in read(catalog, "embeddings").to_pylist()
        if not r["keyframe_index"]
    }
    captions = {r["shot_id"]: r for r in read(catalog, "captions").to_pylist()}
    shots = {r["shot_id"]: r for r in read(catalog, "shots").to_pylist()}
    return vectors, captions, shots


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def test_webdataset_shards_iterate_and_decode_to_the_catalogs_values(
    archive: Settings, tmp_path: Path
) -> None:
    done = export(archive, out=str(tmp_path), formats=["webdataset"], everything=True, shard_size=SHARD)
    assert done["shots"] == 14 and not [p for p in tmp_path.rglob("*.part")]
    names = sorted(p.name for p in (tmp_path / "webdataset").iterdir())
    assert names == [f"0000{i}{suffix}" for i in range(3) for suffix in (".parquet", ".tar", "_stats.json")]
    vectors, captions, shots = _catalog_rows(archive)
    urls = str(tmp_path / "webdataset" / "{00000..00002}.tar")
    decoded = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    raw = list(wds.WebDataset(urls, shardshuffle=False))
    assert len(decoded) == 14
    assert [s["__key__"] for s in decoded[:6]] == ["00000" + str(i) for i in range(5)] + ["000010"]
    seen = set()
    for sample, undecoded in zip(decoded, raw, strict=True):
        meta = sample["json"]
        shot = meta["shot_id"]
        seen.add(shot)
        assert meta["key"] == sample["__key__"] and meta["asset_id"] == shots[shot]["asset_id"]
        assert (meta["start_s"], meta["end_s"]) == (shots[shot]["start_s"], shots[shot]["end_s"])
        assert sample["txt"] == captions[shot]["caption"] == meta["caption"]
        assert meta["caption_model"] == "composed/v1" and meta["caption_version"] == "p1"
        assert np.array_equal(sample["npy"], vectors[(shot, "visual")]) and sample["npy"].dtype == np.float32
        assert np.array_equal(sample["text.npy"], vectors[(shot, "text")])
        assert meta["embeddings"]["visual"] == {"file": "npy", "model": "test", "dim": 48}
        if meta["status"] == "success":
            assert undecoded["jpg"] == Path(shots[shot]["keyframe_uri"]).read_bytes()
            assert isinstance(sample["jpg"], Image.Image) and sample["jpg"].size == (64, 48)
        else:
            assert "jpg" not in sample and meta["keyframe_uri"] == "/nonexistent/keyframe.jpg"
    assert seen == set(shots)
    first = next(s["json"] for s in decoded if s["json"]["onscreen_text"])
    assert first["asset_id"] == REEL_A and first["onscreen_text"] == ["EXIT"]
    assert first["transcript"] == "Good dog." and first["url"] == "/footage/reel-a.mp4"
    assert [t["label"] for t in first["tags"]] == ["golden retriever"]


def test_each_shard_has_video2datasets_parquet_and_stats(archive: Settings, tmp_path: Path) -> None:
    export(archive, out=str(tmp_path), formats=["webdataset"], everything=True, shard_size=SHARD)
    keys, statuses = [], {}
    for shard in range(3):
        table = pq.read_table(tmp_path / "webdataset" / f"{shard:05d}.parquet")
        assert table.column_names[:5] == ["key", "status", "error_message", "url", "caption"]
        stats = json.loads((tmp_path / "webdataset" / f"{shard:05d}_stats.json").read_bytes())
        assert stats["count"] == table.num_rows == (SHARD if shard < 2 else 4)
        assert stats["successes"] + stats["failed_to_download"] == stats["count"]
        keys += table["key"].to_pylist()
        for row in table.to_pylist():
            statuses[row["shot_id"]] = (row["status"], row["error_message"])
    tar_keys = [
        s["__key__"]
        for s in wds.WebDataset(str(tmp_path / "webdataset" / "{00000..00002}.tar"), shardshuffle=False)
    ]
    assert keys == tar_keys
    failed = [v for v in statuses.values() if v[0] != "success"]
    assert len(failed) == 1 and failed[0][0] == "failed_to_download" and "/nonexistent/" in failed[0][1]


def test_the_parquet_of_shots_reads_back_in_pyarrow_and_duckdb(archive: Settings, tmp_path: Path) -> None:
    export(archive, out=str(tmp_path), formats=["parquet"], everything=True)
    path = tmp_path / dataset.PARQUET_FILE
    table = pq.read_table(path)
    assert table.num_rows == 14
    assert table.schema.field("visual_embedding").type == pa.list_(pa.field("item", pa.float32()), 48)
    assert table.schema.field("text_embedding").type.list_size == 32
    assert "concept_embedding" not in table.column_names  # no shot has vectors in that space
    spaces = json.loads(table.schema.metadata[b"archivist.embeddings"])
    assert spaces["visual"]["model"] == "test" and spaces["visual"]["dim"] == 48
    assert spaces["text"]["meaning"] == schema.EMBEDDING_SPACES["text"]
    assert table.schema.field("visual_embedding").metadata[b"space"] == b"visual"
    vectors, captions, _ = _catalog_rows(archive)
    for row in table.to_pylist():
        assert np.array_equal(
            np.asarray(row["visual_embedding"], np.float32), vectors[(row["shot_id"], "visual")]
        )
        assert row["caption"] == captions[row["shot_id"]]["caption"]
    engine = duckdb.connect()
    found = engine.execute(
        f"select shot_id, text_embedding, tags, onscreen_text, transcript from '{path}' "
        "where len(onscreen_text) > 0"
    ).fetchall()
    ((shot, text, tags, onscreen, transcript),) = found
    assert np.array_equal(np.asarray(text, np.float32), vectors[(shot, "text")])
    assert onscreen == ["EXIT"] and transcript == "Good dog."
    assert [t["label"] for t in tags] == ["golden retriever"]
    ((count,),) = engine.execute(
        f"select count(*) from '{path}' where array_length(visual_embedding) = 48"
    ).fetchall()
    assert count == 14


def test_the_same_rows_make_the_same_bytes(archive: Settings, tmp_path: Path) -> None:
    for name in ("one", "two"):
        export(
            archive,
            out=str(tmp_path / name),
            formats=["webdataset", "parquet"],
            everything=True,
            shard_size=SHARD,
        )
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    # the order the assets are asked for is not the order of the samples
    ids = sorted({asset_id(s.asset) for s in SPECS}, reverse=True)
    export(
        archive,
        out=str(tmp_path / "three"),
        formats=["webdataset", "parquet"],
        asset_ids=ids,
        shard_size=SHARD,
    )
    assert _files(tmp_path / "three") == _files(tmp_path / "one")


def test_an_incremental_export_rewrites_only_the_shards_that_changed(tmp_path: Path) -> None:
    settings = _archive(tmp_path / "archive")
    out = tmp_path / "out"
    formats = ["webdataset", "parquet"]
    first = export(settings, out=str(out), formats=formats, everything=True, shard_size=SHARD)
    assert len(first["written"]) == 3 * 3 + 1 and not first["unchanged"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = export(settings, out=str(out), formats=formats, everything=True, shard_size=SHARD)
    assert not again["written"] and len(again["unchanged"]) == 10
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p.name != MANIFEST)
    # samples go by asset id: reel-f, reel-d, reel-a (3-5), reel-e (6-8), reel-c, reel-b; a new
    # caption for reel-e's shots changes the second shard only
    catalog = open_catalog(settings)
    rows = read(catalog, "captions", row_filter=f"asset_id == '{REEL_E}'").to_pylist()
    rows = [{**r, "caption": "A street at night."} for r in rows]
    replace_assets(
        catalog, "captions", pa.Table.from_pylist(rows, schema=schema.CAPTIONS), [REEL_E], run_id="r2"
    )
    changed = export(settings, out=str(out), formats=formats, everything=True, shard_size=SHARD)
    assert sorted(changed["written"]) == [
        dataset.PARQUET_FILE,
        "webdataset/00001.parquet",
        "webdataset/00001.tar",
        "webdataset/00001_stats.json",
    ]
    texts = [
        s["txt"] for s in wds.WebDataset(str(out / "webdataset" / "00001.tar"), shardshuffle=False).decode()
    ]
    assert texts.count("A street at night.") == 3
    # a smaller selection is a smaller dataset: the shards past its last are gone
    smaller = export(settings, out=str(out), formats=["webdataset"], asset_ids=[REEL_A], shard_size=SHARD)
    assert smaller["written"] == [
        "webdataset/00000.tar",
        "webdataset/00000.parquet",
        "webdataset/00000_stats.json",
    ]
    assert sorted(p.name for p in (out / "webdataset").iterdir()) == [
        "00000.parquet",
        "00000.tar",
        "00000_stats.json",
    ]
    assert len(list(wds.WebDataset(str(out / "webdataset" / "00000.tar"), shardshuffle=False))) == 3
    # another shard size is another dataset
    resized = export(settings, out=str(out), formats=["webdataset"], asset_ids=[REEL_A], shard_size=2)
    assert len(resized["written"]) == 6


def test_bad_input_is_one_line_and_nothing_written(archive: Settings, tmp_path: Path, monkeypatch) -> None:
    import typer

    blocker = tmp_path / "a-file"  # a target below a file cannot be made (even by root)
    blocker.write_bytes(b"x")
    with pytest.raises(ExportError, match="cannot write to the export target"):
        export(archive, out=str(blocker / "x"), formats=["webdataset"], everything=True)
    assert blocker.read_bytes() == b"x"
    monkeypatch.setenv("ARCHIVIST_HOME", archive.home)
    app = typer.Typer()
    app.command()(export_command)
    runner = CliRunner()
    for args, message in (
        (
            ["--all", "--format", "webdataset", "--out", str(blocker / "x")],
            "cannot write to the export target",
        ),
        (
            ["--all", "--format", "webdataset", "--shard-size", "-1", "--out", str(tmp_path / "o")],
            "--shard-size",
        ),
        (["--all", "--format", "parquets", "--out", str(tmp_path / "o")], "no export format 'parquets'"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    ok = runner.invoke(app, [REEL_A, "--format", "parquet", "--out", str(tmp_path / "p"), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["written"] == [dataset.PARQUET_FILE]


def test_vectors_of_two_models_in_one_space_are_refused(archive: Settings) -> None:
    (record,) = load_records(open_catalog(archive), [REEL_A], embeddings=True)
    shots = list(record.shots)
    other = shots[1].embeddings["visual"]
    shots[1] = type(shots[1])(
        shot=shots[1].shot,
        caption=shots[1].caption,
        embeddings={"visual": Embedding("visual", "other-model", other.vector)},
    )
    mixed = type(record)(record.asset, record.qc, record.remasters, shots, record.transcript)
    with pytest.raises(ExportError, match="2 models \\(other-model, test\\)"):
        dataset.parquet_part([mixed]).render()


def test_records_carry_vectors_only_when_asked(archive: Settings) -> None:
    catalog = open_catalog(archive)
    (plain,) = load_records(catalog, [REEL_A])
    (full,) = load_records(catalog, [REEL_A], embeddings=True)
    assert not plain.shots[0].embeddings and set(full.shots[0].embeddings) == {"visual", "text"}
    assert plain.content_hash() == full.content_hash()  # other formats do not redo for vectors
    assert full.shots[0].embeddings["visual"].vector.dtype == np.float32
    assert io.BytesIO(dataset._npy(full.shots[0].embeddings["visual"].vector)).getvalue()[:6] == b"\x93NUMPY"


def test_shards_go_to_s3_one_put_each_and_stale_ones_are_removed(
    archive: Settings, s3_bucket, tmp_path: Path
) -> None:
    bucket, client = s3_bucket
    settings = Settings(home=archive.home, catalog_url=None)  # with the ARCHIVIST_S3_* of the fixture
    out = f"s3://{bucket}/train"
    first = export(settings, out=out, formats=["webdataset", "parquet"], everything=True, shard_size=SHARD)
    assert len(first["written"]) == 10

    def keys() -> set[str]:
        return {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}

    assert {f"train/webdataset/{n:05d}.tar" for n in range(3)} | {"train/shots.parquet"} <= keys()
    again = export(settings, out=out, formats=["webdataset", "parquet"], everything=True, shard_size=SHARD)
    assert not again["written"]
    export(settings, out=out, formats=["webdataset"], asset_ids=[REEL_A], shard_size=SHARD)
    assert not {k for k in keys() if k.startswith("train/webdataset/0000") and "00000" not in k}
    shard = tmp_path / "00000.tar"
    shard.write_bytes(client.get_object(Bucket=bucket, Key="train/webdataset/00000.tar")["Body"].read())
    assert len(list(wds.WebDataset(str(shard), shardshuffle=False))) == 3


def test_an_export_stopped_half_way_leaves_whole_files_and_the_next_one_finishes(
    archive: Settings, tmp_path: Path, monkeypatch
) -> None:
    import catalog.storage

    real = catalog.storage.write_atomic

    def failing(uri: str, data: bytes, options=None) -> None:
        if uri.endswith("00001.tar"):
            raise OSError(28, "No space left on device")
        real(uri, data, options)

    monkeypatch.setattr(catalog.storage, "write_atomic", failing)
    with pytest.raises(ExportError, match="No space left on device"):
        export(archive, out=str(tmp_path), formats=["webdataset"], everything=True, shard_size=SHARD)
    assert not [p for p in tmp_path.rglob("*.part")]
    assert not (tmp_path / "webdataset" / "00001.tar").exists()
    assert "collections" not in json.loads((tmp_path / MANIFEST).read_bytes())  # nothing recorded as done
    monkeypatch.setattr(catalog.storage, "write_atomic", real)
    done = export(archive, out=str(tmp_path), formats=["webdataset"], everything=True, shard_size=SHARD)
    assert len(done["written"]) == 9
    assert (
        len(list(wds.WebDataset(str(tmp_path / "webdataset" / "{00000..00002}.tar"), shardshuffle=False)))
        == 14
    )
