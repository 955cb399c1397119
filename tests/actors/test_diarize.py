"""The diarize stage: two generated voices told apart, one voice kept as one, bad audio as data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from dialogue_helpers import Voice, dialogue, have_espeak, write_wav

from actors.diarize import AssetDiarize, DiarizeParams
from actors.speech import AssetSpeech
from catalog.schema import DIARIZATION, SPEAKERS, VOICE_DIM

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng speaks the test dialogue")

HIGH = Voice("high", "en+f3", 70, 150)
LOW = Voice("low", "en+m3", 30, 130)
LINES = [
    "The archive opens at nine every morning except on Sundays.",
    "Do visitors need to book a reading room in advance?",
    "Only for the film collection, the photographs are on open shelves.",
    "Then I will come on Tuesday with my students.",
    "Please bring a pencil, ink is not allowed near the originals.",
    "Thank you, we will be careful with everything.",
]


@pytest.fixture(scope="module")
def diarizer() -> AssetDiarize:
    return AssetDiarize(DiarizeParams())


def _asset(path: Path, segments: list[dict]) -> dict:
    return {"asset_id": path.stem, "uri": str(path), "speech": segments}


def _segments(turns: list) -> list[dict]:
    """What the transcript would hold: a segment per spoken turn."""
    return [
        {"segment_index": i, "start_s": t.start_s, "end_s": t.end_s, "text": t.text}
        for i, t in enumerate(turns)
    ]


def _speaker_at(speakers: list[dict], second: float) -> str | None:
    for row in speakers:
        if any(t["start_s"] <= second < t["end_s"] for t in row["turns"]):
            return row["speaker"]
    return None


def test_two_voices_are_told_apart_over_the_transcripts_segments(tmp_path: Path, diarizer) -> None:
    audio, truth = dialogue([(HIGH if i % 2 == 0 else LOW, line) for i, line in enumerate(LINES)], seed=3)
    path = write_wav(tmp_path / "two.wav", audio)
    batch = pa.Table.from_pylist([{"asset_id": "two", "uri": str(path), "size_bytes": path.stat().st_size}])
    with_speech = AssetSpeech(cpu_threads=2)(batch)
    assert with_speech["speech"][0].as_py(), "the transcript stage found no speech in the dialogue"
    out = diarizer(with_speech)
    assert out.schema.field("speakers") == DIARIZATION.field("speakers")
    speakers = out["speakers"][0].as_py()
    assert [s["speaker"] for s in speakers] == ["S1", "S2"] and all(s["error"] is None for s in speakers)
    said = {
        voice: {_speaker_at(speakers, (t.start_s + t.end_s) / 2) for t in truth if t.speaker == voice}
        for voice in ("high", "low")
    }
    assert said["high"] == {"S1"} and said["low"] == {"S2"}  # each voice, every turn, one label
    assert all(len(s["embedding"]) == VOICE_DIM for s in speakers)
    assert abs(sum(s["seconds"] for s in speakers) - sum(t.end_s - t.start_s for t in truth)) < 4.0


def test_one_voice_is_one_speaker(tmp_path: Path, diarizer) -> None:
    audio, truth = dialogue([(LOW, line) for line in LINES], seed=4)
    path = write_wav(tmp_path / "one.wav", audio)
    speakers = diarizer.speakers("one", str(path), _segments(truth))
    assert [s["speaker"] for s in speakers] == ["S1"]
    assert speakers[0]["seconds"] > 0.8 * sum(t.end_s - t.start_s for t in truth)


def test_bad_audio_is_a_clear_error_for_its_asset_and_the_batch_goes_on(tmp_path: Path, diarizer) -> None:
    audio, truth = dialogue([(HIGH, LINES[0]), (LOW, LINES[1]), (HIGH, LINES[2]), (LOW, LINES[3])], seed=5)
    good = write_wav(tmp_path / "good.wav", audio)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + np.random.default_rng(0).bytes(4000))
    short = write_wav(tmp_path / "short.wav", audio[: 16000 * 2])
    batch = pa.Table.from_pylist(
        [
            _asset(garbage, _segments(truth)),
            _asset(short, [{"segment_index": 0, "start_s": 0.5, "end_s": 0.9, "text": "Yes."}]),
            _asset(good, _segments(truth)),
            _asset(tmp_path / "silent.wav", []),
        ]
    )
    out = diarizer(batch)["speakers"].to_pylist()
    assert len(out[0]) == 1 and out[0][0]["speaker"] is None
    assert out[0][0]["error"].startswith("the audio cannot be decoded")
    assert out[1][0]["error"] == (
        "too little speech to tell voices apart: 0.40 s in 1 transcript segments "
        "(diarization needs at least 1 s)"
    )
    assert [s["speaker"] for s in out[2]] == ["S1", "S2"]
    assert out[3] == []  # nothing said: nothing to tell apart, and no error
    rows = AssetDiarize.catalog_rows(diarizer(batch))["speakers"]
    assert rows.schema.names == [n for n in SPEAKERS.names if n not in ("run_id", "pipeline_version")]
    assert rows.filter(pa.compute.is_valid(rows["error"]))["asset_id"].to_pylist() == ["garbage", "short"]
