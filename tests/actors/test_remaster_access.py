"""The access copy's codec (H.264 or AV1 with grain synthesis) and its quality against the source."""

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
from tests.actors.test_remaster import decode, make_clip, run, top_level_boxes


def _access(rows: list[dict]) -> dict:
    assert [r["status"] for r in rows] == ["ok", "ok"], rows[0]["error"]
    return next(r for r in rows if r["kind"] == "access")


def _stream(path: str) -> tuple[str, str, Fraction | None]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
        return stream.codec_context.name, stream.codec_context.codec.name, sar and Fraction(sar)


def test_an_av1_access_copy_matches_the_h264_one_in_frames_timing_and_aspect(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "vfr.mkv", size=(64, 48), frames=6, steps_ms=(40, 20, 60))
    h264 = _access(run(Remasterer(out_root=str(tmp_path / "h264"), restore="off", upscale=1), source))
    av1 = _access(
        run(
            Remasterer(
                out_root=str(tmp_path / "av1"), restore="off", upscale=1, access_codec="av1", film_grain=8
            ),
            source,
        )
    )
    assert (h264["codec"], av1["codec"]) == ("h264", "av1")
    assert _stream(av1["output_uri"])[1] == "libdav1d"  # what a player's dav1d decodes
    assert top_level_boxes(av1["output_uri"])[:2] == ["ftyp", "moov"]  # fast start, as browsers want
    frames, times, pix_fmt = decode(av1["output_uri"])
    reference_frames, reference_times, _ = decode(h264["output_uri"])
    assert (len(frames), times, pix_fmt) == (len(reference_frames), reference_times, "yuv420p")
    assert (av1["width"], av1["height"], av1["frame_count"]) == (h264["width"], h264["height"], 6)
    manifest = json.loads(Path(av1["manifest_uri"]).read_text())
    assert manifest["output"]["codec"] == "av1"
    assert manifest["output"]["encoder"] == {"encoder": "libsvtav1", "crf": 36, "preset": 6, "film_grain": 8}


def test_an_av1_access_copy_keeps_the_sources_aspect_ratio(tmp_path: Path) -> None:
    source = archive_media.make("anamorphic_mp4", tmp_path / "in")  # 360x288 at 64:45, with AAC
    remasterer = Remasterer(
        out_root=str(tmp_path / "out"), restore="off", upscale=1, access_codec="av1", quality_frames=2
    )
    access = _access(run(remasterer, source))
    assert access["sample_aspect_ratio"] == "64:45"
    assert _stream(access["output_uri"])[2] == Fraction(64, 45)
    assert access["audio_tracks"] == 1


def test_the_access_row_records_its_quality_against_the_source(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mkv", size=(64, 48), frames=4)
    good = run(Remasterer(out_root=str(tmp_path / "good"), restore="off", upscale=1, crf=10), source)
    poor = _access(run(Remasterer(out_root=str(tmp_path / "poor"), restore="off", upscale=1, crf=45), source))
    master, access = good
    assert master["vmaf_vs_source"] is None  # measured on the access copy only
    assert access["vmaf_vs_source"] > poor["vmaf_vs_source"] + 5
    assert access["psnr_vs_source"] > poor["psnr_vs_source"] + 3 and access["ssim_vs_source"] > 0.9
    manifest = json.loads(Path(access["manifest_uri"]).read_text())["metrics"]["access_vs_source"]
    assert manifest["reference"] == "source" and manifest["frames_scored"] == 4
    assert manifest["vmaf"] == pytest.approx(access["vmaf_vs_source"], abs=1e-3)
    off = _access(
        run(Remasterer(out_root=str(tmp_path / "off"), restore="off", upscale=1, quality_frames=0), source)
    )
    assert off["vmaf_vs_source"] is None and off["psnr_vs_source"] is None


def test_grain_synthesis_without_av1_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"film_grain.*access_codec: av1"):
        RemasterParams(film_grain=10)
    with pytest.raises(ValidationError, match="film_grain"):
        RemasterParams(access_codec="av1", film_grain=51)
    with pytest.raises(ValidationError, match="access_codec"):
        RemasterParams.model_validate({"access_codec": "vp9"})
    assert RemasterParams(access_codec="av1", film_grain=10).av1_crf == 36
    with pytest.raises(ValueError, match="film_grain: film-grain synthesis needs access_codec 'av1'"):
        Remasterer(out_root="/tmp/unused", film_grain=5)


def test_decoded_frames_of_an_av1_copy_are_close_to_the_h264_ones(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mkv", size=(64, 48), frames=3)
    h264 = _access(run(Remasterer(out_root=str(tmp_path / "h"), restore="off", upscale=1), source))
    av1 = _access(
        run(Remasterer(out_root=str(tmp_path / "a"), restore="off", upscale=1, access_codec="av1"), source)
    )
    a, b = decode(h264["output_uri"])[0], decode(av1["output_uri"])[0]
    assert all(np.abs(x.astype(int) - y.astype(int)).mean() < 12 for x, y in zip(a, b, strict=True))
    assert av1["vmaf_vs_source"] > 50


@pytest.mark.slow
def test_a_browser_plays_the_av1_access_copy(tmp_path: Path) -> None:
    """Debian's Chromium, as the dashboard's browser tests run it, decodes the AV1 MP4 to its end."""
    from tests.browser import CHROMEDRIVER, CHROMIUM, headless_chromium

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Chromium is installed by infra/scripts/ensure-services.sh")
    source = make_clip(tmp_path / "clip.mkv", size=(64, 48), frames=10)
    remasterer = Remasterer(
        out_root=str(tmp_path / "out"), restore="off", upscale=1, access_codec="av1", film_grain=8
    )
    access = _access(run(remasterer, source))
    page = tmp_path / "play.html"
    page.write_text(f'<video id="v" muted src="{Path(access["output_uri"]).as_uri()}"></video>')
    driver = headless_chromium(tmp_path / "profile", "--allow-file-access-from-files")
    try:
        driver.set_script_timeout(30)
        driver.get(page.as_uri())
        played = driver.execute_async_script(
            """const done = arguments[0], v = document.getElementById('v');
            const report = () => done({ended: v.ended, width: v.videoWidth, height: v.videoHeight,
                                       duration: v.duration, error: v.error && v.error.code,
                                       av1: v.canPlayType('video/mp4; codecs="av01.0.00M.08"')});
            v.addEventListener('ended', report);
            v.addEventListener('error', report);
            v.play().catch(report);"""
        )
    finally:
        driver.quit()
    assert played["error"] is None and played["ended"], played
    assert (played["width"], played["height"]) == (64, 48) and played["av1"] == "probably"
    assert played["duration"] == pytest.approx(0.4, abs=0.05)  # ten frames at 25 fps
