"""Silent-era speed: the access copy at the rate the footage was shot at, the master untouched."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from pydantic import ValidationError

from actors.masters import RemasterParams
from actors.remaster import Remasterer
from tests import archive_media
from tests.actors.test_remaster import decode, make_clip, run


def film(path: Path, *, fps: int, frames: int, size: tuple[int, int] = (96, 72)) -> Path:
    """A square crossing a textured ground, `frames` frames stamped at exactly `fps`."""
    width, height = size
    rng = np.random.default_rng(3)
    ground = rng.integers(40, 200, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        video = container.add_stream("ffv1", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        for k in range(frames):
            image = ground.copy()
            image[20:44, 4 + 4 * k : 28 + 4 * k] = 250
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = k, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
    return path


def outputs(rows: list[dict]) -> tuple[dict, dict]:
    assert [r["status"] for r in rows] == ["ok", "ok"], rows[0]["error"]
    by_kind = {r["kind"]: r for r in rows}
    return by_kind["master"], by_kind["access"]


def test_film_shot_at_18_fps_gets_a_24_fps_access_copy_at_its_true_speed(tmp_path: Path) -> None:
    source = film(tmp_path / "reel.mkv", fps=18, frames=12)
    remasterer = Remasterer(out_root=str(tmp_path / "out"), restore="off", upscale=1, retime_fps=24)
    master, access = outputs(run(remasterer, source))
    assert (master["frame_count"], master["fps"]) == (12, 18.0)
    ms = pytest.approx  # Matroska keeps times to the millisecond
    assert [float(t) for t in decode(master["output_uri"])[1]] == ms([k / 18 for k in range(12)], abs=1e-3)
    assert (access["frame_count"], access["fps"]) == (16, 24.0)  # 12 frames of 1/18 s: 16 of 1/24 s
    frames, times, _ = decode(access["output_uri"])
    assert times == [Fraction(k, 24) for k in range(16)]
    # Every third access frame is a source frame; the ones between show the square between.
    square = [float(np.argmax(f[32, :, 0] > 235)) for f in frames[:4]]
    assert square[0] < square[1] < square[2] < square[3]
    manifest = json.loads(Path(access["manifest_uri"]).read_text())
    assert manifest["retime"]["frames_in"] == 12 and manifest["retime"]["interpolated"] == 11
    assert manifest["retime"]["shot_rate_from"] == "the container"
    assert manifest["output"]["fps"] == 24.0
    assert access["vmaf_vs_source"] is None  # its frames are not the source's, one for one


def test_a_scan_carrying_the_wrong_rate_plays_at_the_rate_the_spec_names(tmp_path: Path) -> None:
    source = film(tmp_path / "scan-reel4.mkv", fps=24, frames=8)
    remasterer = Remasterer(
        out_root=str(tmp_path / "out"), restore="off", upscale=1, source_fps={"*scan-*": 16}
    )
    master, access = outputs(run(remasterer, source))
    master_times = [float(t) for t in decode(master["output_uri"])[1]]
    assert master_times == pytest.approx([k / 24 for k in range(8)], abs=1e-3)  # the scan as it is
    assert decode(access["output_uri"])[1] == [Fraction(k, 16) for k in range(8)]  # its true speed
    manifest = json.loads(Path(access["manifest_uri"]).read_text())
    assert "source_fps '*scan-*'" in manifest["retime"]["shot_rate_from"]
    assert manifest["retime"]["interpolated"] == 0  # the same frames, shown longer


def test_a_wrong_rate_is_not_fixed_under_a_sound_track_that_would_drift(tmp_path: Path) -> None:
    source = archive_media.make("anamorphic_mp4", tmp_path / "in")  # with AAC sound
    remasterer = Remasterer(out_root=str(tmp_path / "out"), restore="off", upscale=1, source_fps={"*": 16})
    (row,) = run(remasterer, source)
    assert row["status"] == "failed"
    assert "source_fps 16" in row["error"] and "has sound" in row["error"]
    assert not list((tmp_path / "out").rglob("*.mp4"))  # nothing half-written


def test_implausible_rates_are_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"source_fps\['\*'\] must be between 1 and 120"):
        RemasterParams(source_fps={"*": 500})
    with pytest.raises(ValidationError, match="retime_fps"):
        RemasterParams(retime_fps=0)


def test_a_variable_rate_capture_is_not_retimed_by_guess(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "vfr.mkv", size=(64, 48), frames=6, steps_ms=(40, 20, 60))
    (row,) = run(Remasterer(out_root=str(tmp_path / "out"), restore="off", upscale=1, retime_fps=24), source)
    assert row["status"] == "failed" and "needs a constant frame rate" in row["error"]
