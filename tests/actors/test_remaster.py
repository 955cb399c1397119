"""Remaster: lossless master and fast-start access copy with the source's frames, timing and audio."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import av
import fsspec
import numpy as np
import pyarrow as pa

from actors.remaster import Remasterer
from actors.restore import Restorer
from actors.upscale import MODEL_NAME, Upscaler
from catalog.schema import REMASTER

MS = Fraction(1, 1000)


def make_clip(
    path: Path,
    *,
    size: tuple[int, int],
    frames: int,
    pix_fmt: str = "yuv420p",
    codec: str = "ffv1",
    audio_tracks: int = 0,
    steps_ms: tuple[int, ...] = (40,),
) -> Path:
    """A small clip made on the spot: moving pattern, chosen timestamps, sine-tone audio tracks."""
    width, height = size
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=25)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.codec_context.time_base = MS
        tracks = [container.add_stream("aac", rate=48000) for _ in range(audio_tracks)]
        yy, xx = np.mgrid[0:height, 0:width]
        pts = 0
        for k in range(frames):
            image = np.stack([(xx * 7 + k * 9) % 256, (yy * 5 + k * 3) % 256, ((xx + yy) * 3) % 256], axis=-1)
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts, frame.time_base = pts, MS
            container.mux(video.encode(frame))
            pts += steps_ms[k % len(steps_ms)]
        container.mux(video.encode())
        for number, track in enumerate(tracks):
            for block in range(12):
                t = (np.arange(1024) + block * 1024) / 48000
                tone = (0.2 * np.sin(2 * np.pi * 440 * (number + 1) * t)).astype(np.float32)
                samples = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                samples.sample_rate, samples.pts = 48000, block * 1024
                container.mux(track.encode(samples))
            container.mux(track.encode())
    return path


def decode(path: str | Path) -> tuple[list[np.ndarray], list[Fraction], str]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return (
            [f.to_ndarray(format="rgb24") for f in frames],
            [f.pts * f.time_base for f in frames],
            stream.codec_context.pix_fmt,
        )


def audio_payloads(path: str | Path) -> list[list[bytes]]:
    with av.open(str(path)) as container:
        tracks = list(container.streams.audio)
        if not tracks:
            return []
        packets: dict[int, list[bytes]] = {s.index: [] for s in tracks}
        for packet in container.demux(tracks):
            if packet.size:
                packets[packet.stream.index].append(bytes(packet))
        return [packets[s.index] for s in tracks]


def top_level_boxes(path: str | Path) -> list[str]:
    data, boxes, at = Path(path).read_bytes(), [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        boxes.append(data[at + 4 : at + 8].decode("latin-1"))
        at += size if size >= 8 else len(data)
    return boxes


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(remasterer: Remasterer, *uris: Path | str) -> list[dict]:
    table = remasterer(
        pa.table({"asset_id": [f"asset{k}" for k in range(len(uris))], "uri": [str(u) for u in uris]})
    )
    assert table.schema.equals(REMASTER)
    return table.to_pylist()


def test_odd_sized_vfr_source_with_two_audio_tracks(tmp_path: Path) -> None:
    source = make_clip(
        tmp_path / "odd.mkv",
        size=(33, 25),
        frames=7,
        pix_fmt="yuv444p",
        audio_tracks=2,
        steps_ms=(40, 20, 60, 33),
    )
    rows = run(Remasterer(out_root=str(tmp_path / "out"), restore="off", upscale=1), source)
    assert [(r["kind"], r["status"]) for r in rows] == [("master", "ok"), ("access", "ok")]
    master, access = rows
    source_frames, source_times, _ = decode(source)

    frames, times, pix_fmt = decode(master["output_uri"])
    assert (master["codec"], pix_fmt, master["frame_count"]) == ("ffv1", "bgr0", 7)
    assert all(np.array_equal(a, b) for a, b in zip(frames, source_frames, strict=True))  # lossless
    assert times == source_times  # [0, 40, 60, 120, 153, 193, 233] ms: variable frame rate kept

    frames, times, pix_fmt = decode(access["output_uri"])
    assert (pix_fmt, access["width"], access["height"]) == ("yuv420p", 34, 26)  # odd sides padded
    assert len(frames) == 7 and times == source_times
    assert top_level_boxes(access["output_uri"])[:2] == ["ftyp", "moov"]  # fast start: index before data

    expected_audio = audio_payloads(source)
    assert len(expected_audio) == 2
    assert audio_payloads(master["output_uri"]) == expected_audio  # untouched, both tracks
    assert audio_payloads(access["output_uri"]) == expected_audio

    for row in rows:
        manifest = json.loads(Path(row["manifest_uri"]).read_text())
        assert manifest["output"]["sha256"] == row["output_sha256"] == sha256(row["output_uri"])
        assert manifest["source"]["sha256"] == sha256(source)
        assert manifest["restoration"]["mode"] == "off" and manifest["restoration"]["ops"] == []
        assert manifest["upscale"]["factor"] == 1


def test_ten_bit_source_restored_and_upscaled_by_the_network(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "ten.mkv", size=(40, 32), frames=5, pix_fmt="yuv420p10le")
    rows = run(Remasterer(out_root=str(tmp_path / "out"), restore="auto", device="cpu"), source)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows[0]["error"]
    master = rows[0]
    assert (master["width"], master["height"], master["frame_count"], master["upscale"]) == (80, 64, 5, 2)
    assert master["model"] == MODEL_NAME and len(master["model_version"]) == 12
    decisions = json.loads(master["decisions"])
    assert decisions["mode"] == "auto" and "noise" in decisions["measurements"]

    # The master keeps 10 bits; its top 8 are what restoring and upscaling the source's
    # top 8 bits gives (the bits below are the source's own, interpolated).
    assert master["pix_fmt"] == "gbrp10le"
    with av.open(str(source)) as container:
        deep = [f.to_ndarray(format="rgb48le") for f in container.decode(video=0)]
    source8 = [((f.astype(np.int64) + 128) // 257).astype(np.uint8) for f in deep]
    upscaler = Upscaler(2, device="cpu")
    expected = [upscaler(f) for f in Restorer(json.loads(master["operations"])).run(source8)]
    frames, _, _ = decode(master["output_uri"])
    pairs = zip(frames, expected, strict=True)
    assert all(np.abs(a.astype(int) - b.astype(int)).max() <= 1 for a, b in pairs)


def test_one_frame_video_without_audio(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "one.mp4", size=(48, 32), frames=1, codec="libx264")
    remasterer = Remasterer(out_root=str(tmp_path / "out"), upscale=2, device="cpu")
    # A batch of shot rows names its asset once per shot; the asset is remastered once.
    rows = remasterer(pa.table({"asset_id": ["one", "one"], "uri": [str(source)] * 2})).to_pylist()
    assert [(r["status"], r["frame_count"]) for r in rows] == [("ok", 1), ("ok", 1)]
    for row in rows:
        assert len(decode(row["output_uri"])[0]) == 1
        assert audio_payloads(row["output_uri"]) == []


def test_a_corrupt_asset_fails_alone_with_a_readable_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    good = make_clip(tmp_path / "good.mkv", size=(32, 24), frames=3)
    rows = run(Remasterer(out_root=str(tmp_path / "out"), restore="off", upscale=1), bad, good)
    assert rows[0]["status"] == "failed" and rows[0]["source_uri"] == str(bad)
    assert "MediaError" in rows[0]["error"] and "cannot open" in rows[0]["error"]
    assert [r["status"] for r in rows[1:]] == ["ok", "ok"]
    assert not (tmp_path / "out" / "asset0").exists() or not any((tmp_path / "out" / "asset0").iterdir())


class FailsOnFourthFrame:
    """The real upscaler, until the fourth frame: a crash in the middle of writing."""

    def __init__(self, inner: Upscaler) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == 4:
            raise RuntimeError("disk on fire")
        return self.inner(frame)


def test_a_failure_midway_leaves_the_existing_output_whole(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mkv", size=(32, 24), frames=6)
    remasterer = Remasterer(out_root=str(tmp_path / "out"), restore="off", upscale=1)
    first = run(remasterer, source)
    before = {row["output_uri"]: sha256(row["output_uri"]) for row in first}

    remasterer.upscaler = FailsOnFourthFrame(remasterer.upscaler)
    second = run(remasterer, source)
    assert second[0]["status"] == "failed" and "disk on fire" in second[0]["error"]
    assert {uri: sha256(uri) for uri in before} == before  # untouched
    assert sorted(p.name for p in (tmp_path / "out" / "asset0").iterdir()) == [
        "access.manifest.json",
        "access.mp4",
        "master.framemd5",
        "master.manifest.json",
        "master.mkv",
    ]  # no staging left


def test_outputs_go_through_fsspec_to_an_object_store(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mkv", size=(32, 24), frames=3, audio_tracks=1)
    rows = run(Remasterer(out_root="memory://remasters", restore="off", upscale=1), source)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows[0]["error"]
    fs = fsspec.filesystem("memory")
    for row in rows:
        assert row["output_uri"].startswith("memory://remasters/asset0/")
        data = fs.cat_file(row["output_uri"])
        assert hashlib.sha256(data).hexdigest() == row["output_sha256"]
        assert json.loads(fs.cat_file(row["manifest_uri"]))["output"]["sha256"] == row["output_sha256"]
    fs.rm("memory://remasters", recursive=True)
