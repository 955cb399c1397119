"""The preservation QC record: each measure on a file made here with PyAV, the policy, the
stage's catalog row, and `archivist qc`."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from actors.qc import PolicyRule, QCParams, QualityControl, inspect_file
from catalog.schema import QC
from tests.archive_media import make

RATE = 25


def _write(
    path: Path,
    pictures: list[np.ndarray],
    *,
    codec: str = "mpeg2video",
    fmt: str | None = None,
    pix_fmt: str = "yuv420p",
    audio: list[np.ndarray] | None = None,
    sar: Fraction | None = None,
    **options: str,
) -> Path:
    """A file of these luma pictures (grey, chroma neutral) and PCM tracks (float, ±1 full scale)."""
    height, width = pictures[0].shape
    with av.open(str(path), "w", format=fmt) as out:
        video = cast(av.video.stream.VideoStream, out.add_stream(codec, rate=RATE))
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if sar:
            video.codec_context.sample_aspect_ratio = sar
        video.codec_context.options = dict(options)
        tracks = [
            cast(av.audio.stream.AudioStream, out.add_stream("pcm_s16le", rate=48000, layout="mono"))
            for _ in audio or []
        ]
        for index, luma in enumerate(pictures):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane, values in zip(frame.planes, (luma, None, None), strict=True):
                rows = np.full((plane.height, plane.line_size), 128, np.uint8)
                if values is not None:
                    rows[:, :width] = values
                plane.update(rows.tobytes())
            frame.pts = index
            out.mux(video.encode(frame.reformat(format=pix_fmt) if pix_fmt != "yuv420p" else frame))
        out.mux(video.encode())
        for stream, samples in zip(tracks, audio or [], strict=True):
            pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
            for start in range(0, len(pcm), 4800):
                chunk = av.AudioFrame.from_ndarray(
                    pcm[None, start : start + 4800], format="s16", layout="mono"
                )
                chunk.sample_rate, chunk.pts = 48000, start
                out.mux(stream.encode(chunk))
            out.mux(stream.encode())
    return path


def _moving(count: int, width: int = 160, height: int = 120, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    xx = np.arange(width)[None, :]
    return [
        np.clip(60 + (xx * 3 + 7 * i) % 120 + rng.normal(0, 4, (height, width)), 20, 230).astype(np.uint8)
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qc")


def test_interlaced_mpeg2_reports_its_field_order(media: Path) -> None:
    record = inspect_file(str(make("mpeg2_ps", media)))
    assert record["status"] == "ok" and record["container"] == "mpeg"
    assert record["video_codec"] == "mpeg2video" and record["video_profile"] == "Main"
    assert record["field_order"] == "tff" and record["field_order_measured"] == "tff"
    assert record["chroma_subsampling"] == "4:2:0" and record["bit_depth"] == 8
    assert record["frames_decoded"] == record["frames_declared"] == 25 and record["decode_error_count"] == 0


def test_dv_is_bottom_field_first_with_its_aspect_and_timecode(media: Path) -> None:
    record = inspect_file(str(make("dv_pal_wide_avi", media)))
    assert record["field_order"] == "bff"
    assert record["sample_aspect_ratio"] == "64:45" and record["display_aspect_ratio"] == "16:9"
    dv = inspect_file(str(make("dv_pal", media)))
    assert dv["sample_aspect_ratio"] == "16:15" and dv["display_aspect_ratio"] == "4:3"
    assert dv["timecode"] == "00:00:00:00" and dv["fps"] == 25.0


def test_ten_bit_reports_bit_depth_ten_and_scaled_broadcast_range(media: Path) -> None:
    record = inspect_file(str(make("v210_mov", media)))
    assert record["bit_depth"] == 10 and record["pix_fmt"] == "yuv422p10le"
    assert record["chroma_subsampling"] == "4:2:2" and record["broadcast_range"] == "64-940"
    assert 64 <= record["luma_min"] < record["luma_max"] <= 940 and record["luma_out_of_range"] == 0


def test_a_black_second_and_a_frozen_span_are_found_where_they_are(media: Path) -> None:
    moving = _moving(75)
    black = [np.full((120, 160), 16, np.uint8)] * 25
    frozen = [moving[10]] * 40
    path = _write(
        media / "spans.mkv",
        moving[:25] + black + moving[25:50] + frozen + moving[50:75],
        codec="ffv1",
        fmt="matroska",
    )
    record = inspect_file(str(path))
    assert record["black_spans"] == [{"start_s": 1.0, "end_s": 2.0}]
    [span] = record["frozen_spans"]
    assert span["start_s"] == pytest.approx(3.0, abs=0.05) and span["end_s"] == pytest.approx(4.6, abs=0.05)
    assert record["luma_out_of_range"] == 0 and record["frames_decoded"] == 140


def test_luma_outside_broadcast_range_is_measured(media: Path) -> None:
    pictures = [np.where(np.arange(160)[None, :] < 40, 4, 250).repeat(120, 0).astype(np.uint8)] * 10
    record = inspect_file(str(_write(media / "range.mkv", pictures, codec="ffv1", fmt="matroska")))
    assert record["luma_min"] <= 5 and record["luma_max"] >= 249
    assert record["luma_out_of_range"] == pytest.approx(1.0, abs=0.03)  # every sample, bar the edge blend


def test_clipped_loud_audio_and_a_silent_track(media: Path) -> None:
    t = np.arange(48000 * 2) / 48000
    loud = 3.0 * np.sin(2 * np.pi * 440 * t)  # clipped at full scale, hard
    silent = np.zeros_like(t)
    path = _write(media / "audio.mkv", _moving(50), codec="ffv1", fmt="matroska", audio=[loud, silent])
    record = inspect_file(str(path))
    first, second = record["audio_tracks"]
    assert first["codec"] == "pcm_s16le" and first["channels"] == 1 and first["sample_rate"] == 48000
    assert first["peak_dbfs"] > -0.01 and first["clipped_samples"] > 48000 and first["silence_spans"] == []
    assert second["peak_dbfs"] == -120.0 and second["clipped_samples"] == 0
    assert second["silence_spans"] == [{"start_s": 0.0, "end_s": 2.0}]


def test_a_truncated_file_reports_missing_frames_and_where_decoding_stopped(media: Path) -> None:
    whole = make("mjpeg_avi", media)
    cut = media / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    record = inspect_file(str(cut))
    assert record["status"] == "damaged"
    assert record["frames_declared"] == 25 and 0 < record["frames_decoded"] < 25
    stop = record["decode_errors"][-1]
    assert stop["frame"] == record["frames_decoded"] and stop["seconds"] == pytest.approx(stop["frame"] / 25)
    assert "declared" in stop["message"] and record["error"]


def test_a_file_that_is_not_media_is_a_failed_record(media: Path) -> None:
    junk = media / "junk.mov"
    junk.write_bytes(b"not a film" * 100)
    record = inspect_file(str(junk))
    assert record["status"] == "failed" and "MediaError" in record["error"]


def test_a_policy_failure_names_its_rule(media: Path) -> None:
    policy = [
        PolicyRule.model_validate({"field": "video_codec", "in": ["ffv1"], "note": "masters are FFV1"}),
        PolicyRule(field="bit_depth", at_least=8),
        PolicyRule(field="decode_errors", equals=0),
        PolicyRule(field="audio.sample_rate", at_least=96000),
    ]
    record = inspect_file(str(make("mpeg2_ps", media)), QCParams(policy=policy))
    assert record["policy_passed"] is False
    assert record["policy_failures"] == [
        "video_codec is 'mpeg2video', not one of 'ffv1' (masters are FFV1)",
        "audio track 2: sample_rate is 48000, not at least 96000",
    ]
    assert inspect_file(str(make("mpeg2_ps", media)))["policy_passed"] is True  # the default: no rules
    with pytest.raises(ValueError, match="no such field"):
        PolicyRule(field="codec", equals="ffv1")


def test_the_stage_gives_one_qc_row_per_asset(media: Path) -> None:
    path = make("mpeg2_ps", media)
    stage = QualityControl()
    batch = pa.table({"asset_id": ["a1"], "uri": [str(path)], "size_bytes": [path.stat().st_size]})
    out = stage(batch)
    assert out["qc"][0]["field_order"].as_py() == "tff"
    shots = pa.concat_tables([out, out])  # the asset's columns ride on each of its shot rows
    rows = QualityControl.catalog_rows(shots)["qc"]
    assert rows.num_rows == 1 and rows["asset_id"].to_pylist() == ["a1"]
    assert set(rows.column_names) == set(QC.names) - {"run_id", "pipeline_version"}


def test_archivist_qc_file_json_prints_one_document(media: Path) -> None:
    from jobs.cli import app

    path = make("dv_pal", media)
    result = CliRunner().invoke(app, ["qc", str(path), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["field_order"] == "bff" and record["uri"] == str(path)
    shown = CliRunner().invoke(app, ["qc", str(path)])
    assert shown.exit_code == 0 and "bff" in shown.stdout
    unknown = CliRunner().invoke(app, ["qc", "not-a-file-nor-an-id"])
    assert unknown.exit_code == 2


def test_archivist_qc_reads_an_assets_record_from_the_catalog(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.iceberg import open_catalog, replace_assets
    from catalog.settings import Settings
    from jobs.cli import app
    from jobs.rows import catalog_rows

    monkeypatch.setenv("ARCHIVIST_HOME", str(tmp_path / "home"))
    asset = "abcdef0123456789"
    batch = pa.table({"asset_id": [asset], "uri": [str(make("mpeg2_ts", media))], "size_bytes": [1]})
    rows = catalog_rows(QualityControl()(batch), [QualityControl], run_id="r1", pipeline_version="p1")
    replace_assets(open_catalog(Settings()), "qc", rows["qc"], [asset], run_id="r1")
    found = CliRunner().invoke(app, ["qc", asset[:8], "--json"])
    assert found.exit_code == 0, found.output
    record = json.loads(found.stdout)
    assert record["asset_id"] == asset and record["field_order"] == "bff" and record["run_id"] == "r1"
    assert [t["codec"] for t in record["audio_tracks"]] == ["ac3", "mp2"]
    unknown = CliRunner().invoke(app, ["qc", "0123456789ab"])
    assert unknown.exit_code == 2 and "no QC record" in unknown.output


def test_sound_that_runs_on_after_the_picture_is_not_missing_frames(media: Path) -> None:
    """Matroska counts no frames per stream: the container lasts as long as its longest track,
    and a capture whose sound runs a second past its picture is whole."""
    sound = 0.1 * np.sin(2 * np.pi * 440 * np.arange(48000 * 3) / 48000)  # 3 s of sound
    path = _write(media / "sound-runs-on.mkv", _moving(2 * RATE), codec="ffv1", fmt="matroska", audio=[sound])
    record = inspect_file(str(path))
    assert record["frames_decoded"] == 2 * RATE and record["duration_s"] == pytest.approx(3.0, abs=0.05)
    assert record["status"] == "ok", record["error"]


def test_a_matroska_file_cut_short_is_still_damaged(media: Path) -> None:
    sound = 0.1 * np.sin(2 * np.pi * 440 * np.arange(48000 * 2) / 48000)
    whole = _write(media / "whole.mkv", _moving(2 * RATE), codec="ffv1", fmt="matroska", audio=[sound])
    cut = media / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    record = inspect_file(str(cut))
    assert record["status"] == "damaged"
    assert any("declared frames" in e["message"] for e in record["decode_errors"])
