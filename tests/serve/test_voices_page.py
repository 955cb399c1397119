"""The People page's Voices section: behind the page's token (even on loopback), each voice with its
name, assets and seconds of speech, and a curator's forms that name, merge and opt out a voice, the
name then found by the search page; bad input is said beside the voice and changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from voice_helpers import service, voiced_archive

from catalog.iceberg import open_catalog, read
from catalog.settings import Settings
from catalog.voices import list_voices

TOKEN = "voices-page-token"


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Settings, list[str]]:
    return voiced_archive(tmp_path / "home", TOKEN)


def client_for(settings: Settings) -> TestClient:
    """The service as `archivist serve` runs it on 127.0.0.1: every other page open without a login."""
    return service(settings, base_url="http://127.0.0.1:8000")


@pytest.fixture
def client(archive) -> TestClient:
    browser = client_for(archive[0])
    answer = browser.post("/dashboard/people/login", data={"token": TOKEN}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return browser


def rows(page: str) -> dict[str, str]:
    """Each voice's row of the section, by voice id."""
    return dict(re.findall(r'<tr id="voice-(V\d+)" data-voice="V\d+"[^>]*>(.*?)</tr>', page, re.S))


def written(settings: Settings) -> int:
    return read(open_catalog(settings), "people_corrections").num_rows


def test_the_section_wants_the_token_and_shows_each_voice(archive) -> None:
    stranger = client_for(archive[0])
    page = stranger.get("/dashboard/people", follow_redirects=False)
    assert page.status_code == 303 and "/dashboard/people/login" in page.headers["location"]
    posted = stranger.post("/dashboard/voices/V000001/name", data={"curator": "Ada", "name": "Jane Doe"})
    assert "voice-V000001" not in posted.text and written(archive[0]) == 0  # to the login, not written

    logged = client_for(archive[0])
    logged.post("/dashboard/people/login", data={"token": TOKEN})
    page = logged.get("/dashboard/people").text
    assert "2 voices found" in re.sub(r"<[^>]+>", "", page)
    shown = rows(page)
    assert list(shown) == [v["voice_id"] for v in list_voices(open_catalog(archive[0]))]  # most heard first
    first = shown[next(iter(shown))]
    assert "unnamed" in first and "reel-c.mp4" in first and "reel-e.mp4" in first


def test_a_curator_names_merges_and_opts_out_a_voice_on_the_page(client: TestClient, archive) -> None:
    ids = archive[1]
    jane, other = list(rows(client.get("/dashboard/people").text))
    named = client.post(f"/dashboard/voices/{jane}/name", data={"curator": "Ada", "name": " Jane   Doe "})
    assert named.status_code == 200 and str(named.url).endswith(f"/dashboard/people#voice-{jane}")
    assert "Jane Doe" in rows(named.text)[jane]
    search = client.get("/dashboard/search", params={"q": "jane doe"}).text
    hits = re.findall(r'data-shot="([0-9a-f]+)".*?class="badge score">([\d.]+)<', search, re.S)
    assert {shot for shot, score in hits if score == "1.000"} == {ids[5], ids[12]}  # where she speaks

    merged = client.post(f"/dashboard/voices/{jane}/merge", data={"curator": "Ada", "other": other})
    assert list(rows(merged.text)) == [jane] and f"also {other}" in rows(merged.text)[jane]

    out = client.post(f"/dashboard/voices/{jane}/exclude", data={"curator": "Ada", "excluded": "yes"})
    assert "opted out" in rows(out.text)[jane] and "Opt back in" in rows(out.text)[jane]
    search = client.get("/dashboard/search", params={"q": "jane doe"}).text
    assert 'class="badge score">1.000<' not in search  # an opted-out voice is not found by name


@pytest.mark.parametrize(
    ("path", "form", "status", "says"),
    [
        ("V000001/name", {"curator": "Ada", "name": "   "}, 422, "a name cannot be empty"),
        ("V000001/name", {"curator": "Ada", "name": "x" * 10_000}, 422, "at most 200 characters"),
        ("V000001/name", {"curator": "", "name": "Jane Doe"}, 422, "curator"),
        ("V000001/merge", {"curator": "Ada", "other": "V000001"}, 422, "cannot merge V000001 with V000001"),
        ("V000001/merge", {"curator": "Ada", "other": "V424242"}, 404, "no voice &#39;V424242&#39;"),
        ("V424242/exclude", {"curator": "Ada"}, 404, "no voice &#39;V424242&#39;"),
    ],
)
def test_bad_input_is_said_on_the_page_and_changes_nothing(
    client: TestClient, archive, path: str, form: dict, status: int, says: str
) -> None:
    answer = client.post(f"/dashboard/voices/{path}", data=form)
    assert answer.status_code == status and says in answer.text
    assert 'id="voice-error"' in answer.text
    assert written(archive[0]) == 0


def test_a_post_from_another_site_is_refused(client: TestClient, archive) -> None:
    forged = client.post(
        "/dashboard/voices/V000001/name",
        data={"curator": "Ada", "name": "Jane Doe"},
        headers={"origin": "https://elsewhere.example"},
    )
    assert forged.status_code == 403 and written(archive[0]) == 0
