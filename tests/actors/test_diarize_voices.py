"""Voices across the archive: ids kept when a run adds material, names in the WebVTT transcript."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pyarrow as pa
import pytest
import webvtt
from dialogue_helpers import Voice, dialogue, have_espeak, write_wav
from typer.testing import CliRunner

from actors.diarize import AssetDiarize, DiarizeParams
from catalog.iceberg import open_catalog, read, replace_assets
from catalog.people import VOICE, PeopleError, fold_corrections
from catalog.schema import ASSETS, SPEAKERS, TRANSCRIPTS
from catalog.voices import UnknownVoiceError, label_segments, name_voice, refresh_voices
from exports import webvtt as vtt
from exports.record import load_records
from jobs.cli import app

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng speaks the test dialogue")

HIGH = Voice("high", "en+f3", 70, 150)
LOW = Voice("low", "en+m3", 30, 130)
KLATT = Voice("klatt", "en+klatt", 40, 140)
LINES = [
    "Our next guest has restored more than forty clocks this year.",
    "Most of them came from churches in the valley.",
    "Were any of them still running when they arrived?",
    "Only one, and it was seven minutes slow every day.",
    "What was wrong with it, in the end?",
    "A spring had been replaced with the wrong one, long ago.",
]


@pytest.fixture(scope="module")
def diarizer(tmp_path_factory: pytest.TempPathFactory):
    """`diarized(name, voices, seed)`: (speaker rows, transcript rows) of a generated two-voice
    asset as a run would commit them; each dialogue is spoken and diarized once per module."""
    stage = AssetDiarize(DiarizeParams())
    folder = tmp_path_factory.mktemp("dialogue")
    made: dict[tuple, tuple[list, list]] = {}

    def diarized(name: str, voices: tuple[Voice, Voice], seed: int) -> tuple[list, list]:
        if (voices, seed) not in made:
            audio, truth = dialogue([(voices[i % 2], line) for i, line in enumerate(LINES)], seed=seed)
            path = write_wav(folder / f"{seed}.wav", audio)
            segments = [
                {"segment_index": i, "start_s": t.start_s, "end_s": t.end_s, "text": t.text}
                for i, t in enumerate(truth)
            ]
            made[(voices, seed)] = (stage.speakers(str(seed), str(path), segments), segments)
        speakers, segments = made[(voices, seed)]
        stamp = {"asset_id": name, "run_id": "r1", "pipeline_version": "p1"}
        return [{**s, **stamp} for s in speakers], [{**s, "shot_ids": [], **stamp} for s in segments]

    return diarized


def _commit(catalog, name: str, rows: list, asset_ids: list[str]) -> None:
    schema = {"speakers": SPEAKERS, "transcripts": TRANSCRIPTS}[name]
    replace_assets(catalog, name, pa.Table.from_pylist(rows, schema=schema), asset_ids, run_id="r1")


def _voices(catalog) -> dict[tuple[str, str], str]:
    rows = read(catalog, "voices", columns=("asset_id", "speaker", "voice_id")).to_pylist()
    return {(r["asset_id"], r["speaker"]): r["voice_id"] for r in rows}


def test_voices_keep_their_ids_when_a_run_adds_material(settings, tmp_path: Path, diarizer) -> None:
    catalog = open_catalog(settings)
    first, _ = diarizer("interview", (HIGH, LOW), 1)
    _commit(catalog, "speakers", first, ["interview"])
    assert refresh_voices(catalog, run_id="r1") == 2
    before = _voices(catalog)
    assert sorted(before.values()) == ["V000001", "V000002"]

    second, _ = diarizer("sequel", (KLATT, LOW), 2)  # one voice heard again
    _commit(catalog, "speakers", second, ["sequel"])
    assert refresh_voices(catalog, run_id="r2") == 3
    after = _voices(catalog)
    assert {k: after[k] for k in before} == before  # nothing renumbered
    low_first = next(v for (a, s), v in after.items() if a == "interview" and s == "S2")
    assert after[("sequel", "S2")] == low_first  # the same voice, found in another asset
    assert after[("sequel", "S1")] == "V000003"  # a new voice, numbered after the others
    assert refresh_voices(catalog, run_id="r3") == 3 and _voices(catalog) == after  # a re-run moves nothing


def test_the_vtt_transcript_says_who_speaks_with_the_curators_name(
    settings, tmp_path: Path, diarizer
) -> None:
    catalog = open_catalog(settings)
    speakers, transcript = diarizer("talk", (HIGH, LOW), 1)
    _commit(catalog, "speakers", speakers, ["talk"])
    _commit(catalog, "transcripts", transcript, ["talk"])
    asset = {"asset_id": "talk", "uri": "talk.wav", "size_bytes": 1, "status": "ok", "shot_count": 0}
    asset.update(processed_at=dt.datetime.now(dt.UTC), run_id="r1", pipeline_version="p1")
    replace_assets(catalog, "assets", pa.Table.from_pylist([asset], schema=ASSETS), ["talk"], run_id="r1")
    refresh_voices(catalog, run_id="r1")
    voices = _voices(catalog)
    high, low = voices[("talk", "S1")], voices[("talk", "S2")]
    name_voice(catalog, high, "Ada Lovelace", curator="curator one")

    segments = read(catalog, "transcripts").to_pylist()
    fixes = fold_corrections(read(catalog, "people_corrections"), VOICE)
    labelled = label_segments(segments, read(catalog, "speakers").to_pylist(), _rows(catalog), fixes)
    said = {s["segment_index"]: s["speaker"] for s in labelled}
    assert [said[i] for i in range(len(LINES))] == ["Ada Lovelace", low] * 3

    [record] = load_records(catalog, ["talk"])
    cues = webvtt.from_buffer(io.StringIO(vtt.render(record, "transcript").decode("utf-8"))).captions
    assert [c.voice for c in cues] == ["Ada Lovelace", low] * 3
    assert cues[0].text == LINES[0]


def test_naming_a_voice_refuses_bad_input_and_writes_nothing(settings, tmp_path: Path, diarizer) -> None:
    catalog = open_catalog(settings)
    speakers, _ = diarizer("short", (HIGH, LOW), 1)
    _commit(catalog, "speakers", speakers, ["short"])
    refresh_voices(catalog, run_id="r1")
    with pytest.raises(UnknownVoiceError, match="no voice 'V999999'"):
        name_voice(catalog, "V999999", "Jane Doe", curator="c")
    for bad, says in (("", "cannot be empty"), ("   ", "cannot be empty"), ("x" * 10_000, "at most 200")):
        with pytest.raises(PeopleError, match=says):
            name_voice(catalog, "V000001", bad, curator="c")
    assert read(catalog, "people_corrections").num_rows == 0


def _rows(catalog):
    return read(catalog, "voices").to_pylist()


def test_the_cli_lists_voices_and_names_one_or_says_why_not(settings, diarizer) -> None:
    catalog = open_catalog(settings)
    speakers, transcript = diarizer("cli", (HIGH, LOW), 1)
    _commit(catalog, "speakers", speakers, ["cli"])
    refresh_voices(catalog, run_id="r1")
    runner = CliRunner()
    named = runner.invoke(app, ["voices", "name", "V000002", "Jane Doe", "--curator", "ann"])
    assert named.exit_code == 0 and "V000002 is named 'Jane Doe'" in named.output
    listed = json.loads(runner.invoke(app, ["voices", "list", "--json"]).output)
    assert {v["voice_id"]: v["name"] for v in listed} == {"V000001": None, "V000002": "Jane Doe"}
    assert all(v["speakers"] == 1 and v["assets"] == 1 and v["seconds"] > 3 for v in listed)
    refused = runner.invoke(app, ["voices", "name", "V000009", "Jane Doe", "--curator", "ann"])
    assert refused.exit_code == 2 and "no voice 'V000009' in the catalog" in refused.output
    assert read(catalog, "people_corrections").num_rows == 1
    assert runner.invoke(app, ["voices", "exclude", "V000002", "--curator", "ann"]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["voices", "list", "--json"]).output)
    assert [v["voice_id"] for v in listed if v["excluded"]] == ["V000002"]
    fixes = fold_corrections(read(catalog, "people_corrections"), VOICE)
    labelled = label_segments(transcript, read(catalog, "speakers").to_pylist(), _rows(catalog), fixes)
    assert {s["speaker"] for s in labelled} == {"V000001", None}  # the opted-out voice's lines: no label
