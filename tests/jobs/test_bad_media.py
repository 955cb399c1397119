"""A corpus of the bad media archives really hold, made here: each file is recorded as
failed with a reason a person can act on, or processed correctly, and the run completes."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from catalog.iceberg import open_catalog
from catalog.query import sql
from jobs.run import run_job
from jobs.samples import sample_file
from jobs.spec import default_spec

pytestmark = pytest.mark.slow


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 10) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)


def _variable_frame_rate(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for i in range(60):
            image = np.full((120, 160, 3), (i * 4) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += 20 if i % 3 else 90  # gaps of 20 ms and 90 ms
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _unsupported_codec(path: Path) -> None:
    """An FFV1 Matroska file whose codec id is rewritten to one no decoder knows."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = buffer.getvalue()
    assert b"V_FFV1" in data
    path.write_bytes(data.replace(b"V_FFV1", b"V_ZZZ1"))


def make_corpus(folder: Path) -> dict[str, str]:
    """File name → what must happen to it ('failed' or 'ok')."""
    folder.mkdir()
    (folder / "zero.mp4").write_bytes(b"")
    bikes = sample_file("bikes.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(bikes[: len(bikes) // 3])
    (folder / "random.mp4").write_bytes(os.urandom(200_000))
    picture = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)).save(picture, "PNG")
    (folder / "photo.mov").write_bytes(picture.getvalue())
    _audio_only(folder / "audio_only.mp4")
    (folder / "huge.mp4").write_bytes(
        b"YUV4MPEG2 W60000 H60000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\x80" * 4096
    )
    _variable_frame_rate(folder / "vfr.mp4")
    _unsupported_codec(folder / "unknown_codec.mkv")
    return {
        "zero.mp4": "failed",
        "truncated.mp4": "either",
        "random.mp4": "failed",
        "photo.mov": "either",
        "audio_only.mp4": "failed",
        "huge.mp4": "failed",
        "vfr.mp4": "ok",
        "unknown_codec.mkv": "failed",
    }


def test_every_bad_file_is_failed_with_a_reason_or_processed(ray_session, settings, tmp_path: Path) -> None:
    expected = make_corpus(tmp_path / "corpus")
    summary = run_job(default_spec(str(tmp_path / "corpus")))
    assets = {Path(r["uri"]).name: r for r in sql(open_catalog(settings), "SELECT * FROM assets").to_pylist()}
    assert set(assets) == set(expected)
    for name, outcome in expected.items():
        row = assets[name]
        if outcome != "either":
            assert row["status"] == outcome, (name, row["error"])
        if row["status"] == "failed":
            assert row["error"] and len(row["error"]) > 10, name
            assert row["shot_count"] == 0, name
        elif row["status"] == "damaged":  # what decoded is kept, and the error says how much
            assert row["shot_count"] >= 1 and "decoded" in row["error"], name
        else:
            assert row["shot_count"] >= 1 and row["error"] is None, name
    assert "video" in assets["audio_only.mp4"]["error"].lower()
    assert "huge.mp4" in assets["huge.mp4"]["error"] or "60000" in assets["huge.mp4"]["error"]
    vfr = assets["vfr.mp4"]
    assert vfr["frame_count"] == 60 or vfr["duration_s"] > 1.5
    counted = summary["assets"]["ok"] + summary["assets"]["damaged"] + summary["assets"]["failed"]
    assert counted == len(expected)
    damaged = sorted(name for name, row in assets.items() if row["status"] == "damaged")
    assert sorted(Path(d["uri"]).name for d in summary["damaged"]) == damaged
    assert summary["outcome"] == "problems"  # files failed: the run says so
