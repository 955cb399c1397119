"""`archivist voices …`: a curator lists, shows, names, merges and opts out voices from the shell,
and `archivist search --text NAME` finds the shots a named voice speaks in; a mistake is one line
on stderr and exit status 2, with nothing written."""

from __future__ import annotations

import json

import pytest
from catalog_helpers import FakeText, asset_id
from typer.testing import CliRunner
from voice_helpers import sample_with_voices

from catalog.iceberg import open_catalog, read
from catalog.settings import Settings
from indexes import query
from jobs.cli import app

runner = CliRunner()


@pytest.fixture
def archive(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """SAMPLE's catalog with two voices (`sample_with_voices`); the search embeds words with FakeText."""
    monkeypatch.setattr(query, "default_text_encoder", FakeText)
    return sample_with_voices(settings)


def voices() -> list[dict]:
    listed = runner.invoke(app, ["voices", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    return json.loads(listed.output)


def written(settings: Settings) -> int:
    return read(open_catalog(settings), "people_corrections").num_rows


def found_by_name(words: str) -> set[str]:
    searched = runner.invoke(app, ["search", "--text", words, "--top", "13", "--json"])
    assert searched.exit_code == 0, searched.output
    return {h["shot_id"] for h in json.loads(searched.output)["hits"] if h["score"] == 1.0}


def test_a_curator_names_and_merges_voices_and_the_search_finds_where_they_speak(archive, settings) -> None:
    ids = archive
    jane, other = (v["voice_id"] for v in voices())
    named = runner.invoke(app, ["voices", "name", jane, "Jane Doe", "--curator", "ann"])
    assert named.exit_code == 0 and f"{jane} is named 'Jane Doe'" in named.output
    assert found_by_name("Jane Doe") == {ids[5], ids[12]}

    merged = runner.invoke(app, ["voices", "merge", jane, other, "--curator", "ann", "--note", "one speaker"])
    assert merged.exit_code == 0 and f"{other} is now part of {jane}" in merged.output
    assert [(v["voice_id"], v["name"], v["merged"], v["speakers"]) for v in voices()] == [
        (jane, "Jane Doe", [other], 3)
    ]
    assert found_by_name("Jane Doe") == {ids[0], ids[5], ids[12]}
    shown = json.loads(runner.invoke(app, ["voices", "show", other, "--json"]).output)
    assert shown["voice_id"] == jane and asset_id("reel-a") in {s["asset_id"] for s in shown["speaker_list"]}
    table = runner.invoke(app, ["voices", "show", jane])
    assert table.exit_code == 0 and "Jane Doe" in table.output and "13.5–13.9" in table.output

    out = runner.invoke(app, ["voices", "exclude", other, "--curator", "ann"])
    assert out.exit_code == 0 and f"{jane} is opted out" in out.output
    assert found_by_name("Jane Doe") == set()  # an opted-out voice is never found by name
    assert written(settings) == 3


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["merge", "V000001", "V000001"], "cannot merge V000001 with V000001: the same id"),
        (["merge", "V000001", "V000009"], "no voice 'V000009' in the catalog"),
        (["name", "V000009", "Jane Doe"], "no voice 'V000009' in the catalog"),
        (["name", "V000001", ""], "a name cannot be empty"),
        (["name", "V000001", "x" * 10_000], "a name is at most 200 characters"),
        (["exclude", "V000009"], "no voice 'V000009' in the catalog"),
        (["show", "V000009"], "no voice 'V000009' in the catalog"),
    ],
)
def test_a_mistake_is_one_line_and_exit_2_with_nothing_written(archive, settings, args, says) -> None:
    refused = runner.invoke(
        app, ["voices", *args, "--curator", "ann"] if args[0] != "show" else ["voices", *args]
    )
    assert refused.exit_code == 2, refused.output
    assert says in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert written(settings) == 0


def test_a_write_without_a_curator_is_refused(archive, settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVIST_CURATOR", "   ")
    refused = runner.invoke(app, ["voices", "name", "V000001", "Jane Doe"])
    assert refused.exit_code == 2 and "curator's name is required" in refused.stderr
    assert written(settings) == 0
