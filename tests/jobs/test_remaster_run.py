"""Remastering as part of a run, and as the one-off `archivist remaster`: outputs in the
warehouse (or where --out says), rows in `remasters`, manifests that match the files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from catalog.iceberg import open_catalog
from catalog.query import sql
from catalog.settings import Settings
from jobs.cli import app

pytestmark = pytest.mark.slow


def test_archivist_remaster_writes_masters_access_copies_and_rows(
    ray_session, home: Path, tmp_path: Path, clip_writer
) -> None:
    source = tmp_path / "tapes"
    source.mkdir()
    clip_writer(source / "tape.mp4", seconds=1, size=(160, 120), cuts=1, seed=7)
    (source / "broken.mp4").write_bytes(b"\x00" * 5000)
    out = tmp_path / "outputs"
    result = CliRunner().invoke(app, ["remaster", str(source), "--out", str(out), "--upscale", "2", "--json"])
    assert result.exit_code == 3, result.output  # completed, but broken.mp4 failed: the status says so
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "problems" and summary["assets"]["failed"] == 1
    outputs = {(Path(r["source_uri"]).name, r["kind"]): r for r in summary["remasters"]}
    master, access = outputs[("tape.mp4", "master")], outputs[("tape.mp4", "access")]
    assert outputs[("broken.mp4", None)]["status"] == "failed"
    assert Path(master["output_uri"]).is_relative_to(out) and (master["width"], master["height"]) == (
        320,
        240,
    )
    with av.open(master["output_uri"]) as container:
        assert container.streams.video[0].codec_context.name == "ffv1"
        assert sum(1 for _ in container.decode(video=0)) == 25  # the source's frame count
    with av.open(access["output_uri"]) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    manifest = json.loads(Path(master["manifest_uri"]).read_text())
    assert manifest["output"]["sha256"] == hashlib.sha256(Path(master["output_uri"]).read_bytes()).hexdigest()
    rows = sql(open_catalog(Settings()), "SELECT kind, status FROM remasters ORDER BY kind").to_pylist()
    assert sorted((r["kind"] or "-", r["status"]) for r in rows) == [
        ("-", "failed"),
        ("access", "ok"),
        ("master", "ok"),
    ]
