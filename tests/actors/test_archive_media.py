"""Archive formats through the remaster stage: every frame, every audio track and the picture's shape kept.

The corpus (``tests/archive_media.py``) is written once per session with PyAV's
encoders. Remasters here run the stage class directly, without Ray and
without describing: restoration off and no upscaling for the corpus-wide
checks, and the defects of issue 18 each with a test of its own.
"""

from __future__ import annotations

import json
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pytest

from actors.av_timing import Timeline
from actors.fields import FieldMeter, comb, decide
from actors.remaster import Remasterer, master_pix_fmt
from tests import archive_media

KINDS = sorted(archive_media.KINDS)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return archive_media.make_all(tmp_path_factory.mktemp("archive-media"))


@pytest.fixture(scope="session")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Remasterer:
    """A describe-free remaster: no restoration, no upscaling, the fastest encoder preset."""
    return Remasterer(
        out_root=str(tmp_path_factory.mktemp("remasters")),
        restore="off",
        upscale=1,
        preset="ultrafast",
        measure_frames=6,
    )


def remaster(remasterer: Remasterer, path: Path, asset_id: str | None = None) -> tuple[dict, dict]:
    rows = remasterer(pa.table({"asset_id": [asset_id or path.stem], "uri": [str(path)]})).to_pylist()
    assert rows[0]["status"] == "ok", rows[0]["error"]
    master, access = rows
    assert (master["kind"], access["kind"]) == ("master", "access")
    return master, access


def read(path: str | Path) -> dict[str, Any]:
    """What a reader sees: codec, size, aspect, frames and their times, audio tracks and payloads."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = list(container.streams.audio)
        frames, times, wide = 0, [], None
        payloads: dict[int, list[bytes]] = {s.index: [] for s in audio}
        for packet in container.demux([video, *audio]):
            if packet.stream.type == "audio":
                if packet.size:
                    payloads[packet.stream.index].append(bytes(packet))
                continue
            for frame in packet.decode():
                assert isinstance(frame, av.VideoFrame), "the demuxed stream is video"
                frames += 1
                times.append(frame.time)
                if wide is None:
                    wide = frame.to_ndarray(format="rgb48le")
        ctx = video.codec_context
        sar = video.sample_aspect_ratio or ctx.sample_aspect_ratio
        return {
            "codec": ctx.name,
            "pix_fmt": ctx.pix_fmt,
            "width": ctx.width,
            "height": ctx.height,
            "sar": Fraction(sar) if sar else Fraction(1),
            "frames": frames,
            "times": times,
            "field_order": ctx.field_order,
            "first": wide,
            "audio": [s.codec_context.name for s in audio],
            "payloads": [payloads[s.index] for s in audio],
        }


def display_ratio(info: dict[str, Any]) -> Fraction:
    return info["sar"] * Fraction(info["width"], info["height"])


# -- unit checks that need no corpus ----------------------------------------------------------


class _Stream:
    def __init__(self, rate: Fraction, time_base: Fraction, start: int | None = 0) -> None:
        self.average_rate = self.guessed_rate = self.base_rate = rate
        self.time_base, self.start_time = time_base, start


def test_decode_order_timestamps_are_restamped_from_the_frame_index() -> None:
    packed = [2, 4, 3, 6, 5, 8, 7, None]  # what a packed-B-frame AVI's frames carry out of the decoder
    timeline = Timeline(_Stream(Fraction(25), Fraction(1, 25)), packed)
    assert [timeline.stamp(p) for p in packed] == list(range(8))
    assert timeline.manifest()["restamped_frames"] == 8 and "frame index" in timeline.manifest()["timestamps"]

    vfr = [0, 40, 60, 120, 153]  # rising: kept as they are, variable frame rate and all
    timeline = Timeline(_Stream(Fraction(25), Fraction(1, 1000)), vfr)
    assert [timeline.stamp(p) for p in vfr] == vfr and timeline.restamped == 0
    assert timeline.stamp(153) == 193 and timeline.stamp(None) == 233  # a stray repeat or gap: one period on


def test_combing_tells_field_orders_apart() -> None:
    for order in ("tff", "bff", "progressive"):
        kind = archive_media.Kind("", "", "", "rgb24", (96, 64), field_order=order)
        meter = FieldMeter()
        rng = np.random.default_rng(0)
        for index in range(8):
            meter.add(archive_media.frame_image(kind, index, rng))
        assert meter.result()["measured"] == order
    flat = np.full((32, 32), 100.0, np.float32)
    assert comb(flat) == 0.0
    assert decide("tff", "undetermined")[0] == "tff" and decide("tff", "progressive")[0] == "progressive"
    assert decide("unknown", "undetermined")[0] == "progressive"


def test_master_depth_follows_the_source() -> None:
    assert [master_pix_fmt(d) for d in (8, 9, 10, 12, 16)] == [
        "bgr0",
        "gbrp10le",
        "gbrp10le",
        "gbrp12le",
        "gbrp16le",
    ]


# -- the corpus is what it says ----------------------------------------------------------------


@pytest.mark.slow
def test_the_corpus_has_the_properties_it_claims(corpus: dict[str, Path]) -> None:
    assert set(corpus) == set(archive_media.KINDS)
    for name, path in corpus.items():
        kind = archive_media.KINDS[name]
        info = read(path)
        assert info["codec"] == kind.video_codec, name
        assert (info["width"], info["height"]) == kind.size, name
        assert info["frames"] == kind.frames, name
        assert [{"mp3float": "mp3"}.get(a, a) for a in info["audio"]] == kind.audio_codecs, name
        if kind.sar:
            assert info["sar"] == kind.sar, name
        meter = FieldMeter()
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                meter.add(frame.to_ndarray(format="gray"))
                if index == 12:
                    break
        assert meter.result()["measured"] == kind.field_order, name


# -- every format through the remaster ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", KINDS)
def test_remaster_keeps_every_frame_track_and_the_shape(
    name: str, corpus: dict[str, Path], plain: Remasterer
) -> None:
    kind = archive_media.KINDS[name]
    source = read(corpus[name])
    master_row, access_row = remaster(plain, corpus[name])
    master, access = read(master_row["output_uri"]), read(access_row["output_uri"])

    assert master["codec"] == "ffv1" and master["frames"] == source["frames"] == master_row["frame_count"]
    assert master["pix_fmt"] == master_row["pix_fmt"] == master_pix_fmt(kind.bit_depth)
    assert len(master["audio"]) == len(source["audio"])
    tracks = json.loads(master_row["audio"])
    for number, track in enumerate(tracks):
        if track["action"] == "copied untouched":
            assert master["payloads"][number] == source["payloads"][number], (name, number)
        else:  # only what Matroska cannot carry is transcoded, and then losslessly
            assert track["codec"] == "flac" and source["audio"][number] == "wmav2", (name, track)
    assert display_ratio(master) == display_ratio(source), name
    assert master_row["field_order"] == kind.field_order

    assert access["codec"] == "h264" and access["frames"] == source["frames"], name
    assert len(access["audio"]) == len(source["audio"]) and set(access["audio"]) <= {"aac", "mp3float"}, name
    assert abs(display_ratio(access) - display_ratio(source)) < Fraction(1, 100), name  # odd sides padded
    assert access_row["field_order"] == "progressive"
    assert all(b > a for a, b in pairwise(master["times"])), name
    assert all(b > a for a, b in pairwise(access["times"])), name


# -- the defects of issue 18, one test each ------------------------------------------------------


@pytest.mark.slow
def test_pcm_audio_is_copied_into_the_master_and_made_aac_in_the_access_copy(
    corpus: dict[str, Path], plain: Remasterer
) -> None:
    source = read(corpus["dnxhr_mxf"])
    assert source["audio"] == ["pcm_s16le", "pcm_s16le"]
    master_row, access_row = remaster(plain, corpus["dnxhr_mxf"], "pcm")
    master, access = read(master_row["output_uri"]), read(access_row["output_uri"])
    assert master["audio"] == ["pcm_s16le", "pcm_s16le"] and master["payloads"] == source["payloads"]
    assert access["audio"] == ["aac", "aac"]
    decoded = sum(1 for _ in av.open(access_row["output_uri"]).decode(audio=0))
    assert decoded > 30  # a second of 48 kHz in 1024-sample AAC frames
    tracks = json.loads(access_row["audio"])
    assert [t["action"] for t in tracks] == ["transcoded", "transcoded"] and tracks[0]["codec"] == "aac"


@pytest.mark.slow
def test_anamorphic_pictures_keep_their_aspect_when_upscaled(corpus: dict[str, Path], tmp_path: Path) -> None:
    remasterer = Remasterer(
        out_root=str(tmp_path),
        restore="off",
        upscale=2,
        upscale_method="lanczos",
        preset="ultrafast",
        measure_frames=6,
    )
    master_row, access_row = remaster(remasterer, corpus["anamorphic_mp4"])
    for row in (master_row, access_row):
        info = read(row["output_uri"])
        assert (info["width"], info["height"]) == (720, 576)
        assert info["sar"] == Fraction(64, 45) and display_ratio(info) == Fraction(16, 9)
        assert row["sample_aspect_ratio"] == "64:45"


@pytest.mark.slow
def test_packed_b_frames_in_avi_are_timed_as_a_player_times_them(
    corpus: dict[str, Path], plain: Remasterer
) -> None:
    with av.open(str(corpus["mpeg4_packed_avi"])) as container:
        raw = [int(frame.pts) for frame in container.decode(video=0) if frame.pts is not None]
    assert any(b <= a for a, b in pairwise(raw))  # decode order: 2, 4, 3, 6, 5, ...
    master_row, access_row = remaster(plain, corpus["mpeg4_packed_avi"], "packed")
    for row in (master_row, access_row):
        info = read(row["output_uri"])
        assert info["frames"] == 25
        steps = np.diff(np.array(info["times"], dtype=float) - info["times"][0])
        assert np.allclose(steps, 0.04, atol=0.002)  # evenly 25 fps, as the AVI's index says
    timing = json.loads(Path(master_row["manifest_uri"]).read_text())["output"]["timing"]
    assert "frame index" in timing["timestamps"]


@pytest.mark.slow
def test_ten_bit_sources_keep_ten_bits_in_the_master(corpus: dict[str, Path], plain: Remasterer) -> None:
    for name in ("hevc_main10_mkv", "v210_mov", "prores_mov"):
        source = read(corpus[name])
        master_row, access_row = remaster(plain, corpus[name], f"deep-{name}")
        master = read(master_row["output_uri"])
        assert (master["pix_fmt"], master_row.get("bit_depth")) == ("gbrp10le", 10)
        # Within one 10-bit step of the source's own 16-bit picture: not rounded to 8 bits (257 levels).
        difference = np.abs(master["first"].astype(np.int32) - source["first"].astype(np.int32))
        assert difference.max() <= 64, name
        assert len(np.unique(master["first"] & 0xFF)) > 8  # bits below the top 8 are really there
        assert read(access_row["output_uri"])["pix_fmt"] == "yuv420p"


@pytest.mark.slow
def test_interlaced_masters_keep_their_fields_and_access_copies_are_deinterlaced(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    remasterer = Remasterer(
        out_root=str(tmp_path),
        restore="denoise,artefacts",
        upscale=2,
        upscale_method="lanczos",
        preset="ultrafast",
        measure_frames=6,
    )
    master_row, access_row = remaster(remasterer, corpus["anamorphic_pal_mkv"])
    # Fields are denoised each on its own; the artefact network, which learned whole frames, is not run.
    assert [step["op"] for step in json.loads(master_row["operations"])] == ["denoise"]
    assert "learned whole frames, not half-height fields" in master_row["decisions"]
    assert (master_row["width"], master_row["height"], master_row["upscale"]) == (720, 576, 1)
    assert (access_row["width"], access_row["height"], access_row["upscale"]) == (1440, 1152, 2)
    decisions = json.loads(master_row["decisions"])
    assert decisions["fields"]["interlaced"] and decisions["fields"]["field_order"] == "tff"
    assert "per field" in decisions["fields"]["restoration"] and "bwdif" in decisions["fields"]["upscale"]
    assert (master_row["field_order"], access_row["field_order"]) == ("tff", "progressive")

    def combing(path: str | Path) -> float:
        with av.open(str(path)) as container:
            return float(
                np.mean(
                    [comb(f.to_ndarray(format="gray").astype(np.float32)) for f in container.decode(video=0)]
                )
            )

    source, master, access = (
        combing(corpus["anamorphic_pal_mkv"]),
        combing(master_row["output_uri"]),
        combing(access_row["output_uri"]),
    )
    assert master > 0.5 * source  # the fields are still there, denoised each on its own
    assert access < 0.2 * source  # and gone from the deinterlaced access copy
    assert read(master_row["output_uri"])["field_order"] == 2  # AV_FIELD_TT, in the Matroska header


@pytest.mark.slow
def test_before_and_after_figures_are_measured_on_source_and_output(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    remasterer = Remasterer(
        out_root=str(tmp_path), restore="off", upscale=2, preset="ultrafast", measure_frames=6, device="cpu"
    )
    master_row, _ = remaster(remasterer, corpus["vfr_mkv"])
    assert master_row["sharpness_after"] != master_row["sharpness_before"]
    assert master_row["noise_after"] != master_row["noise_before"]
    manifest = json.loads(Path(master_row["manifest_uri"]).read_text())
    assert manifest["metrics"]["measured_at"] == "640x480"  # the output's size, for both
