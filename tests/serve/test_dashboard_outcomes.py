"""What the dashboard says of real archive media: a run that completed with damaged assets and a
failed output says so on the runs and run pages, damaged apart from failed; and an asset's shot
page shows its preservation QC record (codec, bit depth, field order, frames, decode errors,
audio levels, the policy's verdict)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
from catalog_helpers import SAMPLE, FakeText, asset_id, fake_image, write_catalog
from fastapi.testclient import TestClient

from catalog import schema
from catalog.iceberg import append, open_catalog
from catalog.settings import Settings
from catalog.state import StateStore
from indexes.query import QueryEngine
from serve.app import create_app
from serve.dashboard.qc import qc_panel


def _qc_row(name: str) -> dict:
    return {
        "asset_id": asset_id(name),
        "uri": f"/footage/{name}.mov",
        "status": "damaged",
        "error": "decoded 1480 of 1500 frames: decoding stopped at 59.20 s",
        "container": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration_s": 60.0,
        "video_codec": "prores",
        "video_profile": "HQ",
        "pix_fmt": "yuv422p10le",
        "bit_depth": 10,
        "chroma_subsampling": "4:2:2",
        "width": 720,
        "height": 576,
        "fps": 25.0,
        "field_order": "tff",
        "field_order_declared": "tff",
        "field_order_measured": "tff",
        "combing": 0.12,
        "sample_aspect_ratio": "64:45",
        "display_aspect_ratio": "16:9",
        "color_primaries": "bt470bg",
        "color_transfer": "bt709",
        "color_matrix": "bt470bg",
        "color_range": "tv",
        "timecode": "10:00:00:00",
        "frames_declared": 1500,
        "frames_decoded": 1480,
        "decode_error_count": 2,
        "decode_errors": [{"stream": 0, "frame": 1480, "seconds": 59.2, "message": "Invalid data found"}],
        "timestamp_gap_count": 1,
        "timestamp_jump_count": 0,
        "timestamp_issues": [{"kind": "gap", "frame": 700, "at_s": 28.0, "delta_s": 0.12}],
        "black_spans": [{"start_s": 0.0, "end_s": 1.5}],
        "frozen_spans": [],
        "luma_min": 48,
        "luma_max": 980,
        "broadcast_range": "64-940",
        "luma_out_of_range": 0.031,
        "audio_track_count": 2,
        "audio_tracks": [
            {
                "stream": 1,
                "codec": "pcm_s24le",
                "sample_format": "s32",
                "channels": 2,
                "layout": "stereo",
                "sample_rate": 48000,
                "duration_s": 59.2,
                "peak_dbfs": -0.0,
                "rms_dbfs": -18.25,
                "clipped_samples": 412,
                "silence_spans": [],
            },
            {
                "stream": 2,
                "codec": "pcm_s24le",
                "sample_format": "s32",
                "channels": 1,
                "layout": "mono",
                "sample_rate": 48000,
                "duration_s": 59.2,
                "peak_dbfs": -120.0,
                "rms_dbfs": -120.0,
                "clipped_samples": 0,
                "silence_spans": [{"start_s": 0.0, "end_s": 59.2}],
            },
        ],
        "policy_passed": False,
        "policy_failures": ["video_codec is prores, not one of ffv1"],
        "qc_seconds": 3.5,
        "run_id": "r1",
        "pipeline_version": "p1",
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("outcomes")
    settings = Settings(home=str(root / "home"), catalog_url=None)
    ids = write_catalog(settings, SAMPLE)
    append(
        open_catalog(settings), "qc", pa.Table.from_pylist([_qc_row("reel-a")], schema=schema.QC), run_id="r1"
    )
    store = StateStore(settings.catalog_url_resolved)
    problems = store.start_run("tapes", {}, "p1")
    store.finish_run(
        problems,
        "succeeded",
        summary={
            "outcome": "problems",
            "assets": {"ok": 4, "damaged": 2, "failed": 1, "skipped": 0},
            "outputs": {"ok": 1, "failed": 1},
            "shots": 13,
            "failed": [{"uri": "/tapes/empty.mov", "error": "MediaError: the file is empty"}],
            "damaged": [
                {"uri": "/tapes/reel-a.mov", "error": "decoded 1480 of 1500 frames: stopped at 59.20 s"},
                {"uri": "/tapes/reel-f.mov", "error": "decoded 10 of 250 frames: stopped at 0.40 s"},
            ],
            "outputs_failed": [
                {"uri": "/tapes/reel-b.mov", "kind": "master", "error": "the muxer refuses pcm_s24le"}
            ],
        },
    )
    clean = store.start_run("tapes", {}, "p1")
    store.finish_run(
        clean,
        "succeeded",
        summary={"outcome": "ok", "assets": {"ok": 3, "damaged": 0, "failed": 0, "skipped": 4}, "shots": 5},
    )
    engine = QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("car"))
    client = TestClient(create_app(settings, engine=engine))
    return {"client": client, "ids": ids, "problems": problems, "clean": clean, "settings": settings}


def text_of(response) -> str:
    body = re.sub(r'<script type="application/json".*?</script>', " ", response.text, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).replace("&#39;", "'")


def test_runs_page_counts_damaged_apart_from_ok_and_failed(archive: dict) -> None:
    page = archive["client"].get("/dashboard/runs").text
    assert "<th>damaged</th>" in page
    row = re.search(rf'<tr data-run="{archive["problems"]}".*?</tr>', page, flags=re.S).group(0)
    assert re.search(r'data-field="damaged">2<', row) and re.search(r'data-field="failed">1<', row)
    assert "with problems" in row
    clean = re.search(rf'<tr data-run="{archive["clean"]}".*?</tr>', page, flags=re.S).group(0)
    assert re.search(r'data-field="damaged">0<', clean) and "with problems" not in clean


def test_a_run_page_lists_its_damaged_assets_and_failed_outputs(archive: dict) -> None:
    response = archive["client"].get(f"/dashboard/runs/{archive['problems']}")
    text = text_of(response)
    assert "completed with problems" in text
    assert re.search(r"2 damaged \(decoded in part\)", text) and re.search(r"1 failed", text)
    assert "1 outputs failed" in text
    assert "/tapes/reel-f.mov decoded 10 of 250 frames" in text
    assert "/tapes/empty.mov MediaError: the file is empty" in text
    assert "/tapes/reel-b.mov master the muxer refuses pcm_s24le" in text
    clean = text_of(archive["client"].get(f"/dashboard/runs/{archive['clean']}"))
    assert "completed with problems" not in clean and "every asset this run catalogued decoded whole" in clean


def test_the_shot_page_shows_its_assets_qc_record(archive: dict) -> None:
    response = archive["client"].get(f"/dashboard/shots/{archive['ids'][0]}")  # a shot of reel-a
    assert response.status_code == 200
    text = text_of(response)
    assert "Preservation QC" in text and 'id="no-qc"' not in response.text
    assert "status damaged decoded 1480 of 1500 frames" in text and "policy failed" in text
    assert "video_codec is prores, not one of ffv1" in text
    for fact in (
        "Codec prores (HQ)",
        "Bit depth 10-bit",
        "Chroma 4:2:2",
        "Field order tff (declared tff, measured tff)",
        "Aspect SAR 64:45, DAR 16:9",
        "Colour primaries bt470bg, transfer bt709, matrix bt470bg, range tv",
        "Timecode 10:00:00:00",
        "Frames 1480 decoded of 1500 declared",
        "Decode errors 2",
        "Timestamps 1 gaps, 0 jumps",
        "Black 0.00–1.50 s",
        "Luma 48–980, outside 64-940: 3.10%",
        "frame 1480 (59.20 s): Invalid data found",
        "Audio tracks (2)",
        "1 pcm_s24le 2 ch 48000 Hz 0.0 -18.2 412",
        "2 pcm_s24le 1 ch 48000 Hz -120.0 -120.0 0 0.00–59.20 s",
    ):
        assert fact in text, fact
    assert '<dd class="bad" data-qc="frames">' in response.text  # frames missing are marked
    other = archive["client"].get(f"/dashboard/shots/{archive['ids'][5]}")  # reel-c: no QC ran
    assert 'id="no-qc"' in other.text and "Codec prores" not in text_of(other)


def test_the_overview_counts_the_last_runs_damaged_assets(archive: dict) -> None:
    store = StateStore(archive["settings"].catalog_url_resolved)
    last = store.start_run("tapes", {}, "p1")
    store.finish_run(
        last,
        "succeeded",
        summary={
            "outcome": "problems",
            "assets": {"ok": 2, "damaged": 3, "failed": 0, "skipped": 0},
            "shots": 4,
        },
    )
    text = text_of(archive["client"].get("/dashboard"))
    assert f"tapes · {last} succeeded with problems" in text
    assert "Assets: 2 catalogued, 3 damaged, 0 failed" in text


def test_qc_panel_of_no_record_is_none_and_a_clean_record_flags_nothing() -> None:
    assert qc_panel(None) is None
    clean = {**_qc_row("x"), "frames_decoded": 1500, "decode_error_count": 0, "timestamp_gap_count": 0}
    clean.update(black_spans=[], luma_out_of_range=0.0, policy_passed=True, policy_failures=[])
    panel = qc_panel(clean)
    assert panel is not None and panel["policy_passed"] is True
    assert [f["label"] for f in panel["facts"] if f["bad"]] == []


def test_pages_say_nothing_damaged_for_a_run_of_before_damage_was_counted(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None)
    store = StateStore(settings.catalog_url_resolved)
    old = store.start_run("nightly", {}, "p0")
    store.finish_run(old, "succeeded", summary={"assets": {"ok": 2, "failed": 0, "skipped": 0}, "shots": 3})
    client = TestClient(create_app(settings, engine=QueryEngine(settings, encode_text=FakeText())))
    page = client.get(f"/dashboard/runs/{old}")
    assert page.status_code == 200 and "completed with problems" not in page.text
