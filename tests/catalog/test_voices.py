"""Voices as curators correct them: a merge makes one voice of two (its speakers, its lines in the
transcripts, its name), ids are never given again, an opt-out of either part holds for the merged
voice, and bad input changes nothing."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pytest
import webvtt
from voice_helpers import commit_speakers, speaker

from catalog import schema
from catalog.iceberg import open_catalog, read, replace_assets
from catalog.people import PeopleConflict, PeopleError
from catalog.voices import (
    UnknownVoiceError,
    exclude_voice,
    list_voices,
    merge_voices,
    name_voice,
    voice_detail,
    voice_roster,
)
from exports import webvtt as vtt
from exports.record import load_records

INTERVIEW = [speaker("talk", "S1", 1, [(0.0, 2.0), (4.0, 6.0)]), speaker("talk", "S2", 2, [(2.0, 4.0)])]
"""One asset, two voices taking turns: V000001 (S1, 4 s) and V000002 (S2, 2 s)."""


@pytest.fixture
def catalog(settings):
    found = open_catalog(settings)
    assert commit_speakers(found, INTERVIEW) == 2
    return found


def corrections(catalog) -> int:
    return read(catalog, "people_corrections").num_rows


def transcript_voices(catalog) -> list[str | None]:
    """The voice each cue of the asset's WebVTT transcript is said by, as an export writes it."""
    stamp = {"asset_id": "talk", "run_id": "r1", "pipeline_version": "p1"}
    lines = [(0.2, 1.8, "Welcome back."), (2.2, 3.8, "Thank you."), (4.2, 5.8, "Shall we start?")]
    segments = [
        {"segment_index": i, "start_s": a, "end_s": b, "text": t, "shot_ids": [], **stamp}
        for i, (a, b, t) in enumerate(lines)
    ]
    replace_assets(
        catalog,
        "transcripts",
        pa.Table.from_pylist(segments, schema=schema.TRANSCRIPTS),
        ["talk"],
        run_id="r1",
    )
    asset = {"asset_id": "talk", "uri": "talk.wav", "size_bytes": 1, "status": "ok", "shot_count": 0}
    asset.update(processed_at=dt.datetime.now(dt.UTC), run_id="r1", pipeline_version="p1")
    replace_assets(
        catalog, "assets", pa.Table.from_pylist([asset], schema=schema.ASSETS), ["talk"], run_id="r1"
    )
    [record] = load_records(catalog, ["talk"])
    text = vtt.render(record, "transcript").decode("utf-8")
    return [c.voice for c in webvtt.from_buffer(io.StringIO(text)).captions]


def test_a_merge_makes_one_voice_whose_name_labels_both_parts_lines(catalog) -> None:
    assert transcript_voices(catalog) == ["V000001", "V000002", "V000001"]
    name_voice(catalog, "V000001", "Jane Doe", curator="ann")
    name_voice(catalog, "V000002", "John Roe", curator="ann")
    row = merge_voices(catalog, "V000001", "V000002", curator="ann", note="one person, two mics")
    assert (row["cluster_id"], row["action"], row["value"]) == ("V000002", "merge", "V000001")
    assert row["before"] == "V000001: 1 speakers; V000002: 1 speakers"

    [voice] = list_voices(catalog)
    assert voice == {
        "voice_id": "V000001",
        "name": "Jane Doe",  # the kept voice's name wins
        "excluded": False,
        "merged": ["V000002"],
        "speakers": 2,
        "assets": 1,
        "seconds": 6.0,
    }
    assert transcript_voices(catalog) == ["Jane Doe"] * 3  # the merged voice's line too
    detail = voice_detail(catalog, "V000002")  # a merged-away id leads to the voice it joined
    assert detail["voice_id"] == "V000001"
    assert [(s["speaker"], s["turns"]) for s in detail["speaker_list"]] == [
        ("S1", [{"start_s": 0.0, "end_s": 2.0}, {"start_s": 4.0, "end_s": 6.0}]),
        ("S2", [{"start_s": 2.0, "end_s": 4.0}]),
    ]
    assert [h["action"] for h in detail["history"]] == ["name", "name", "merge"]
    assert voice_roster(catalog).turns_by_name() == {
        "jane doe": {"talk": [(0.0, 2.0), (4.0, 6.0), (2.0, 4.0)]}
    }


def test_an_unnamed_voice_takes_the_merged_ones_name(catalog) -> None:
    name_voice(catalog, "V000002", "John Roe", curator="ann")
    merge_voices(catalog, "V000001", "V000002", curator="ann")
    assert [v["name"] for v in list_voices(catalog)] == ["John Roe"]
    renamed = name_voice(catalog, "V000002", "Jon Roe", curator="bob")  # a merged-away id names the voice
    assert (renamed["cluster_id"], renamed["before"]) == ("V000001", "John Roe")
    assert [v["name"] for v in list_voices(catalog)] == ["Jon Roe"]


def test_a_merged_away_id_is_never_given_again(catalog) -> None:
    merge_voices(catalog, "V000001", "V000002", curator="ann")
    # The asset is diarized again with S2 gone, and a new asset brings a third voice.
    commit_speakers(catalog, [INTERVIEW[0], speaker("news", "S1", 3, [(0.0, 3.0)])], run_id="r2")
    assert {v["voice_id"] for v in list_voices(catalog)} == {"V000001", "V000003"}
    assert voice_detail(catalog, "V000002")["voice_id"] == "V000001"  # still leads to the voice it joined


def test_an_opt_out_of_either_part_holds_for_the_merged_voice_until_it_is_taken_back(catalog) -> None:
    name_voice(catalog, "V000001", "Jane Doe", curator="ann")
    exclude_voice(catalog, "V000002", curator="ann")
    exclude_voice(catalog, "V000001", curator="ann", excluded=False)  # before the merge: not about V000002
    merge_voices(catalog, "V000001", "V000002", curator="ann")
    assert [v["excluded"] for v in list_voices(catalog)] == [True]
    assert transcript_voices(catalog) == [None, None, None]  # no name, no id, in any line
    assert voice_roster(catalog).turns_by_name() == {}  # and nothing to find by name
    exclude_voice(catalog, "V000002", curator="ann", excluded=False)  # the merged voice, by either id
    assert [v["excluded"] for v in list_voices(catalog)] == [False]
    assert transcript_voices(catalog) == ["Jane Doe"] * 3


@pytest.mark.parametrize(
    ("act", "error", "says"),
    [
        (lambda c: merge_voices(c, "V000001", "V000001", curator="ann"), PeopleConflict, "the same id"),
        (
            lambda c: merge_voices(c, "V000001", "V000009", curator="ann"),
            UnknownVoiceError,
            "no voice 'V000009'",
        ),
        (
            lambda c: merge_voices(c, "V000009", "V000001", curator="ann"),
            UnknownVoiceError,
            "no voice 'V000009'",
        ),
        (
            lambda c: merge_voices(c, "V000001", "V000002", curator="  "),
            PeopleError,
            "curator's name is required",
        ),
        (lambda c: name_voice(c, "V000001", "", curator="ann"), PeopleError, "a name cannot be empty"),
        (lambda c: name_voice(c, "V000001", " \t ", curator="ann"), PeopleError, "a name cannot be empty"),
        (
            lambda c: name_voice(c, "V000001", "x" * 10_000, curator="ann"),
            PeopleError,
            "at most 200 characters",
        ),
        (lambda c: name_voice(c, "V000001", "Jane", curator="x" * 81), PeopleError, "at most 80 characters"),
        (lambda c: name_voice(c, "nobody", "Jane", curator="ann"), UnknownVoiceError, "no voice 'nobody'"),
        (lambda c: exclude_voice(c, "V000009", curator="ann"), UnknownVoiceError, "no voice 'V000009'"),
    ],
)
def test_bad_input_says_what_to_change_and_writes_nothing(catalog, act, error, says) -> None:
    with pytest.raises(error, match=says):
        act(catalog)
    assert corrections(catalog) == 0
    assert [v["voice_id"] for v in list_voices(catalog)] == ["V000001", "V000002"]


def test_merging_two_parts_of_one_voice_again_is_a_conflict(catalog) -> None:
    merge_voices(catalog, "V000001", "V000002", curator="ann")
    with pytest.raises(PeopleConflict, match=r"already one voice \(V000001\)"):
        merge_voices(catalog, "V000002", "V000001", curator="ann")
    assert corrections(catalog) == 1
