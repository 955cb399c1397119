"""A whole run with the diarize stage: a film of a two-voice dialogue is catalogued with its
speakers, its voices join the archive, and its WebVTT transcript says who speaks each line."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import webvtt
from dialogue_helpers import SAMPLE_RATE, Voice, dialogue, have_espeak

from catalog.iceberg import open_catalog, read
from catalog.settings import Settings
from exports import webvtt as vtt
from exports.record import load_records
from jobs.run import run_job
from jobs.spec import parse_spec

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_espeak(), reason="espeak-ng speaks the dialogue")]

LINES = [
    "Welcome back to the programme, tonight we talk about old maps.",
    "Thank you, I brought a few from the county archive.",
    "Which one is the oldest of them?",
    "This one, drawn by hand around seventeen eighty.",
]


def _film(path: Path, audio: np.ndarray) -> Path:
    """An H.264 + AAC Matroska file: grey frames under the dialogue, as a digitised tape might be."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=5)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        frames = int(len(audio) / SAMPLE_RATE * 5) + 1
        for i in range(frames):
            picture = np.full((48, 64, 3), 60 + (i % 5), np.uint8)
            out.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(video.encode(None))
        chunk = 1024
        for start in range(0, len(audio), chunk):
            samples = audio[start : start + chunk].reshape(1, -1).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return path


def test_a_run_with_diarize_labels_the_transcript_by_voice(ray_session, tmp_path: Path) -> None:
    high, low = Voice("high", "en+f3", 70, 150), Voice("low", "en+m3", 30, 130)
    audio, truth = dialogue([((high, low)[i % 2], line) for i, line in enumerate(LINES)], seed=7)
    footage = tmp_path / "footage"
    footage.mkdir()
    _film(footage / "maps.mkv", audio)
    stages = {
        "diarize": {"enabled": True},
        "text": {"enabled": False},
        "keyframes": {name: {"enabled": False} for name in ("objects", "ocr", "faces", "safety")},
    }
    spec = parse_spec({"name": "voices", "source": {"uri": str(footage)}, "stages": stages})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHIVIST_HOME", str(tmp_path / "archive"))
        patch.delenv("ARCHIVIST_CATALOG_URL", raising=False)
        summary = run_job(spec)
        catalog = open_catalog(Settings())
    assert summary["assets"]["ok"] == 1
    speakers = read(catalog, "speakers").to_pylist()
    assert sorted(s["speaker"] for s in speakers) == ["S1", "S2"]
    voices = read(catalog, "voices").to_pylist()
    assert sorted(v["voice_id"] for v in voices) == ["V000001", "V000002"]
    [record] = load_records(catalog, [speakers[0]["asset_id"]])
    cues = webvtt.from_buffer(io.StringIO(vtt.render(record, "transcript").decode("utf-8"))).captions
    assert len(cues) >= len(LINES) - 1, [c.text for c in cues]
    by_line = {}
    for cue in cues:  # each truth turn's voice, from the cue said over its middle
        for turn in truth:
            if cue.start_in_seconds <= (turn.start_s + turn.end_s) / 2 < cue.end_in_seconds:
                by_line.setdefault(turn.speaker, set()).add(cue.voice)
    assert len(by_line["high"]) == 1 and len(by_line["low"]) == 1
    assert by_line["high"] != by_line["low"] and by_line["high"] | by_line["low"] <= {"V000001", "V000002"}
