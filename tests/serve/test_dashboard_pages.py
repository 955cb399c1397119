"""The dashboard's pages over a small catalog, without a browser: each page answers with its
headings and the catalog's figures, filters and paging narrow the grid, errors and empty catalogs
say what to do, media are served by id, and beyond loopback nothing opens without the token."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pyarrow as pa
import pytest
from catalog_helpers import SAMPLE, FakeText, ShotSpec, asset_id, fake_image, jpeg, write_catalog
from fastapi.testclient import TestClient

from catalog import schema
from catalog.iceberg import append, open_catalog
from catalog.settings import Settings
from catalog.state import StateStore
from indexes.query import QueryEngine
from indexes.recommend import record_events
from serve.app import create_app
from serve.dashboard import explore

TOKEN = "dashboard-token"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """SAMPLE's thirteen shots plus: text read on screen, a transcript, two finished runs (one with
    a failed asset), a running one, an audit with a flagged finding and its evidence, and events."""
    root = tmp_path_factory.mktemp("dashboard")
    settings = Settings(home=str(root / "home"), catalog_url=None, api_token=TOKEN)
    ids = write_catalog(settings, SAMPLE, access_copies=["reel-c"])
    catalog = open_catalog(settings)
    stamp = {"run_id": "r1", "pipeline_version": "p1"}
    texts = [
        {"shot_id": ids[5], "asset_id": asset_id("reel-c"), "kind": "text", "label": "HARBOUR 1962", **stamp},
        {"shot_id": ids[10], "asset_id": asset_id("reel-e"), "kind": "text", "label": "Main Street", **stamp},
    ]
    append(catalog, "tags", pa.Table.from_pylist(texts, schema=schema.TAGS), run_id="r1")
    transcript = {
        "asset_id": asset_id("reel-a"),
        "segment_index": 0,
        "start_s": 0.5,
        "end_s": 1.5,
        "text": "the dog runs along the beach",
        "language": "en",
        "shot_ids": [ids[0]],
        **stamp,
    }
    append(catalog, "transcripts", pa.Table.from_pylist([transcript], schema=schema.TRANSCRIPTS), run_id="r1")

    store = StateStore(settings.catalog_url_resolved)
    first = store.start_run("nightly", {}, "p1")
    store.record_step(first, "segment", rows=13, failures=1, seconds=2.0)
    store.record_step(first, "visual", rows=13, failures=0, seconds=0.5)
    failed = {"uri": "/footage/broken.mp4", "error": "MediaError: FFmpeg cannot open it as media"}
    store.finish_run(
        first,
        "succeeded",
        summary={"assets": {"ok": 5, "failed": 1, "skipped": 0}, "shots": 13, "failed": [failed]},
    )
    second = store.start_run("nightly", {}, "p1")
    store.finish_run(second, "failed", error="RuntimeError: the cluster went away")
    running = store.start_run("tapes", {}, "p1")
    store.record_step(running, "discover", rows=4, failures=0, seconds=0.1)
    store.spool(running, "p1", [{"asset_id": "a" * 64, "uri": "/tapes/one.mp4", "status": "ok"}], "staged/x")

    evidence = root / "home" / "reports" / "r1" / "evidence" / "face.jpg"
    evidence.parent.mkdir(parents=True)
    evidence.write_bytes(jpeg((200, 30, 30)))
    (evidence.parent.parent / "audit.html").write_text("<h1>audit of r1</h1><script>alert(1)</script>")
    audits = [
        _audit(
            "bias",
            "perceived_gender=female",
            "representation_share",
            0.31,
            0.22,
            0.40,
            True,
            {"attribute": "perceived_gender", "group": "female", "reference": 0.5},
        ),
        _audit(
            "bias",
            "perceived_gender=male",
            "representation_share",
            0.69,
            0.60,
            0.78,
            True,
            {"attribute": "perceived_gender", "group": "male", "reference": 0.5},
        ),
        _audit("bias", "search", "exposure_gini", 0.47, 0.43, 0.52, False, {"queries": 8, "top_k": 10}),
        _audit(
            "identity_drift",
            "/home/masters/x/master.mkv",
            "max_identity_distance",
            0.61,
            None,
            None,
            True,
            {"kind": "master"},
            evidence_uri=str(evidence),
        ),
        _audit(
            "provenance",
            "/home/masters/x/access.mp4",
            "verified",
            0.0,
            None,
            None,
            True,
            {"kind": "access", "problems": ["sha256 differs from the manifest"]},
        ),
    ]
    append(catalog, "audits", pa.Table.from_pylist(audits, schema=schema.AUDITS), run_id="r1")
    record_events(
        catalog,
        [
            {"user_id": "ana", "shot_id": ids[5], "kind": "like"},
            {"user_id": "ana", "shot_id": ids[0], "kind": "view"},
        ],
    )
    return {"settings": settings, "ids": ids, "runs": (first, second, running), "store": store}


def _audit(audit, subject, metric, value, low, high, flagged, detail, evidence_uri=None) -> dict:
    return {
        "audit_id": "audit-1",
        "run_id": "r1",
        "audit": audit,
        "subject": subject,
        "metric": metric,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "threshold": 0.1,
        "flagged": flagged,
        "detail": json.dumps(detail),
        "evidence_uri": evidence_uri,
        "audited_at": dt.datetime.now(dt.UTC),
    }


@pytest.fixture(scope="module")
def client(archive) -> TestClient:
    engine = QueryEngine(archive["settings"], encode_text=FakeText(), embed_image=fake_image("car"))
    return TestClient(create_app(archive["settings"], engine=engine))


def text_of(response) -> str:
    """The page's words, without its markup or its embedded chart figures."""
    body = re.sub(r'<script type="application/json".*?</script>', " ", response.text, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).replace("&#39;", "'")


def cards(response) -> list[str]:
    return re.findall(r'<figure class="card" data-shot="([0-9a-f]{32})"', response.text)


def test_root_opens_the_dashboard(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/dashboard"


def test_overview_shows_footage_statuses_coverage_and_the_last_run(client: TestClient, archive) -> None:
    response = client.get("/dashboard")
    assert response.status_code == 200
    text = text_of(response)
    assert "<h1>Overview</h1>" in response.text and "data-empty" not in response.text
    assert "0.08 hours of footage" in text  # five reels of 60 s
    assert re.search(r"ok 5 5.0 min", text)
    coverage = dict(re.findall(r'<tr data-stage="(\w+)"><td>\w+</td><td class="n">(\d+)</td>', response.text))
    assert coverage == {
        "segmented": "5",
        "remastered": "1",
        "described": "13",
        "indexed": "13",
        "audited": "5",  # every asset was written by run r1, which was audited
    }
    _, second, running = archive["runs"]
    assert second in text and "the cluster went away" in text  # the last finished run, failed
    assert "Running now" in text and f"/dashboard/runs/{running}/progress" in response.text
    assert 'id="chart-coverage"' in response.text and 'id="chart-statuses"' in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_runs_history_and_a_run_with_a_failed_asset(client: TestClient, archive) -> None:
    first, second, running = archive["runs"]
    response = client.get("/dashboard/runs")
    text = text_of(response)
    assert response.status_code == 200 and "<h1>Runs</h1>" in response.text
    assert all(run in text for run in (first, second, running))
    assert "succeeded" in text and "failed" in text and "running" in text
    assert 'id="chart-steps"' in response.text and 'id="chart-throughput"' in response.text

    text = text_of(client.get(f"/dashboard/runs/{first}"))
    assert re.search(r"segment 13 1 2.00 6.50", text) and re.search(r"visual 13 0 0.50 26.0", text)
    assert "/footage/broken.mp4 MediaError: FFmpeg cannot open it as media" in text
    assert client.get("/dashboard/runs/nope").status_code == 404


def test_a_running_job_shows_live_progress(client: TestClient, archive) -> None:
    running = archive["runs"][2]
    page = client.get(f"/dashboard/runs/{running}")
    assert "Live progress" in page.text and re.search(r'data-field="spooled">1<', page.text)
    progress = client.get(f"/dashboard/runs/{running}/progress").json()
    assert progress["status"] == "running" and progress["spooled"] == 1
    archive["store"].record_step(running, "fingerprint", rows=4, failures=0, seconds=0.3)
    progress = client.get(f"/dashboard/runs/{running}/progress").json()
    assert [s["step"] for s in progress["steps"]] == ["discover", "fingerprint"]


def test_a_run_shows_its_steps_in_the_order_it_recorded_them(client: TestClient, archive) -> None:
    store = archive["store"]
    run_id = store.start_run("ordered", {}, "p1")
    for step in ("fingerprint", "visual", "segment", "commit"):
        store.record_step(run_id, step, rows=1, failures=0, seconds=0.2)
    store.record_step(
        run_id, "visual", rows=2, failures=0, seconds=0.3
    )  # a step recorded again keeps its place
    progress = client.get(f"/dashboard/runs/{run_id}/progress").json()
    assert [(s["step"], s["rows"]) for s in progress["steps"]] == [
        ("fingerprint", 1),
        ("visual", 2),
        ("segment", 1),
        ("commit", 1),
    ]
    page = client.get(f"/dashboard/runs/{run_id}").text
    assert re.findall(r'<tr data-step="(\w+)">', page) == ["fingerprint", "visual", "segment", "commit"]
    store.finish_run(
        run_id, "succeeded", summary={"assets": {"ok": 0, "failed": 0, "skipped": 0}, "shots": 0}
    )


def test_explore_grid_filters_and_pages(client: TestClient, archive, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = archive["ids"]
    response = client.get("/dashboard/explore")
    assert response.status_code == 200 and "13 of 13 shots" in text_of(response)
    assert len(cards(response)) == 13 and 'loading="lazy"' in response.text
    assert f'src="/dashboard/media/keyframes/{ids[0]}"' in response.text

    def shown(query: str) -> set[int]:
        answer = client.get(f"/dashboard/explore?{query}")
        assert answer.status_code == 200, answer.text
        return {ids.index(shot) for shot in cards(answer)}

    assert shown("monochrome=yes") == {5, 9}
    assert shown("object=car&object=person") == {6}
    assert shown("tag=golden+retriever") == {0, 1, 3}
    assert shown("faces=yes") == {0, 6}
    assert shown("duplicates=yes") == {0, 3, 4}
    assert shown("text=harbour") == {5}
    assert shown(f"asset={asset_id('reel-e')}") == {10, 11, 12}
    tomorrow = dt.date.today() + dt.timedelta(days=2)
    assert shown(f"after={tomorrow}") == set() and len(shown(f"before={tomorrow}")) == 13

    monkeypatch.setattr(explore, "PAGE_SIZE", 5)
    first = client.get("/dashboard/explore?faces=no")
    assert "11 of 13 shots match · page 1 of 3" in text_of(first) and len(cards(first)) == 5
    assert 'href="?faces=no&amp;page=2"' in first.text
    last = client.get("/dashboard/explore?faces=no&page=3")
    assert len(cards(last)) == 1 and 'rel="prev"' in last.text
    seen = {s for page in (1, 2, 3) for s in cards(client.get(f"/dashboard/explore?faces=no&page={page}"))}
    assert len(seen) == 11


def test_explore_explains_a_bad_filter_and_an_empty_result(client: TestClient) -> None:
    response = client.get("/dashboard/explore?after=someday")
    assert response.status_code == 400 and "data-error" in response.text and "after" in text_of(response)
    response = client.get("/dashboard/explore?tag=unicorn")
    assert "no shot carries tag 'unicorn'" in text_of(response) and "loosen one" in text_of(response)


def test_shot_page_has_players_description_transcript_and_copies(client: TestClient, archive) -> None:
    ids = archive["ids"]
    response = client.get(f"/dashboard/shots/{ids[0]}")
    text = text_of(response)
    assert response.status_code == 200 and "A shot of a dog." in text
    assert "golden retriever" in text and "the dog runs along the beach" in text
    assert {ids.index(s) for s in cards(response)} == {3, 4}
    assert 'id="no-remaster"' in response.text
    response = client.get(f"/dashboard/shots/{ids[5]}")
    assert f'src="/dashboard/media/video/{asset_id("reel-c")}#t=' in response.text
    assert "HARBOUR 1962" in text_of(response)
    assert "No other shot in the catalog is a copy" in text_of(response)
    assert client.get(f"/dashboard/shots/{'0' * 32}").status_code == 404


def test_the_access_copys_player_has_caption_transcript_and_chapter_tracks(
    client: TestClient, archive
) -> None:
    ids, reel_a, reel_c = archive["ids"], asset_id("reel-a"), asset_id("reel-c")
    page = client.get(f"/dashboard/shots/{ids[5]}").text
    player = re.search(r'<video id="remaster".*?</video>', page, flags=re.S)
    assert player is not None
    tracks = re.findall(
        r'<track kind="(\w+)" src="([^"]+)" srclang="([\w-]+)" label="[^"]+"( default)?>', player[0]
    )
    assert tracks == [
        ("captions", f"/dashboard/media/vtt/{reel_c}/captions.vtt", "en", " default"),
        ("chapters", f"/dashboard/media/vtt/{reel_c}/chapters.vtt", "en", ""),
    ]  # reel-c has no speech: no transcript track
    captions = client.get(tracks[0][1])
    assert captions.status_code == 200 and captions.headers["content-type"].startswith("text/vtt")
    assert captions.text.startswith("WEBVTT") and "A shot of a car." in captions.text
    transcript = client.get(f"/dashboard/media/vtt/{reel_a}/transcript.vtt")
    assert "the dog runs along the beach" in transcript.text
    assert client.get(f"/dashboard/media/vtt/{reel_c}/subtitles.vtt").status_code == 404
    assert client.get(f"/dashboard/media/vtt/{'0' * 64}/captions.vtt").status_code == 404


def test_media_are_served_by_id(client: TestClient, archive) -> None:
    ids = archive["ids"]
    keyframe = client.get(f"/dashboard/media/keyframes/{ids[0]}")
    assert keyframe.status_code == 200 and keyframe.content[:2] == b"\xff\xd8"
    video = client.get(f"/dashboard/media/video/{asset_id('reel-c')}", headers={"range": "bytes=0-99"})
    assert video.status_code == 206 and len(video.content) == 100
    assert client.get(f"/dashboard/media/video/{asset_id('reel-a')}").status_code == 404
    # the catalog's source URI for reel-a does not exist on this machine
    assert client.get(f"/dashboard/media/source/{asset_id('reel-a')}").status_code == 404
    assert client.get("/dashboard/media/source/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_search_by_words_picture_shot_and_user(client: TestClient, archive) -> None:
    ids = archive["ids"]
    response = client.get("/dashboard/search", params={"q": "dog"})
    assert response.status_code == 200 and "Shots for “dog”" in text_of(response)
    assert cards(response) and all(ids.index(s) in (0, 1, 2, 3, 4) for s in cards(response)[:3])
    assert f'href="/dashboard/shots/{cards(response)[0]}"' in response.text
    response = client.post("/dashboard/search", files={"image": ("q.jpg", jpeg((9, 9, 200)), "image/jpeg")})
    assert response.status_code == 200 and {ids.index(s) for s in cards(response)[:3]} == {5, 6, 7}
    response = client.get("/dashboard/search", params={"like": ids[5]})
    assert response.status_code == 200 and "exposure Gini" in text_of(response) and cards(response)
    response = client.get("/dashboard/search")
    assert '<option value="ana"' in response.text
    response = client.get("/dashboard/search", params={"user": "ana"})
    assert response.status_code == 200 and "For ana" in text_of(response) and cards(response)
    assert ids[5] not in cards(response)  # what the user liked is not recommended back


def test_search_errors_are_said_on_the_page(client: TestClient) -> None:
    response = client.get("/dashboard/search", params={"like": "f" * 32})
    assert response.status_code == 404 and "is not in the catalog" in text_of(response)
    response = client.post("/dashboard/search", files={"image": ("q.jpg", b"not a picture", "image/jpeg")})
    assert response.status_code == 415 and "data-error" in response.text
    response = client.get("/dashboard/search", params={"user": "nobody"})
    assert response.status_code == 404 and "has no views, likes or saves" in text_of(response)


def test_audits_page_charts_intervals_flags_and_evidence(client: TestClient) -> None:
    response = client.get("/dashboard/audits")
    text = text_of(response)
    assert response.status_code == 200 and "<h1>Audits</h1>" in response.text
    assert 'id="chart-share-1"' in response.text and 'id="chart-concentration"' in response.text
    spec = json.loads(re.search(r'id="spec-share-1">(.*?)</script>', response.text, re.S).group(1))
    assert spec["data"][0]["y"] == [0.31, 0.69] and spec["data"][0]["error_y"]["arrayminus"] == pytest.approx(
        [0.09, 0.09]
    )
    assert "0.470 0.430 – 0.520" in text
    assert "sha256 differs from the manifest" in text
    assert re.search(r"identity drift flagged of 1 checks", text)
    evidence = re.search(r'src="(/dashboard/media/evidence/[0-9a-f]+)"', response.text).group(1)
    picture = client.get(evidence)
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
    assert client.get("/dashboard/media/evidence/" + "0" * 24).status_code == 404
    report = client.get("/dashboard/audits/r1/report")
    assert report.status_code == 200 and "audit of r1" in report.text
    assert "sandbox" in report.headers["content-security-policy"]
    assert client.get("/dashboard/audits/elsewhere/report").status_code == 404


def test_charts_come_from_the_installed_plotly_and_nothing_from_elsewhere(client: TestClient) -> None:
    page = client.get("/dashboard").text
    url = re.search(r'<script src="(/dashboard/static/plotly\.min\.js\?v=[^"]+)"', page).group(1)
    script = client.get(url, headers={"accept-encoding": "identity"})
    assert (
        script.status_code == 200 and len(script.content) > 1_000_000 and b"plotly" in script.content[:2000]
    )
    assert "immutable" in script.headers["cache-control"]
    packed = client.get(url, headers={"accept-encoding": "gzip"})
    assert packed.status_code == 200 and packed.content == script.content  # httpx undid the gzip
    for path in (
        "/dashboard",
        "/dashboard/runs",
        "/dashboard/explore",
        "/dashboard/search",
        "/dashboard/audits",
    ):
        html = client.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
    assert client.get("/dashboard/static/secrets.txt").status_code == 404


def test_an_empty_catalog_says_what_to_do(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None)
    client = TestClient(create_app(settings, engine=QueryEngine(settings, encode_text=FakeText())))
    for path, words in (
        ("/dashboard", "archivist run FOLDER"),
        ("/dashboard/runs", "archivist run FOLDER"),
        ("/dashboard/explore", "archivist run FOLDER"),
        ("/dashboard/audits", "archivist audit RUN_ID"),
    ):
        response = client.get(path)
        assert response.status_code == 200 and "data-empty" in response.text and words in text_of(response), (
            path
        )
    response = client.get("/dashboard/search", params={"q": "dog"})
    assert response.status_code == 503 and "archivist run FOLDER" in text_of(response)


def test_beyond_loopback_the_dashboard_needs_the_token(archive) -> None:
    settings, ids = archive["settings"], archive["ids"]
    engine = QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("car"))
    client = TestClient(create_app(settings, host="10.1.2.3", engine=engine))
    response = client.get("/dashboard/explore?faces=yes", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fexplore%3Ffaces%3Dyes"
    assert client.get(f"/dashboard/media/keyframes/{ids[0]}").status_code == 401
    assert client.get(f"/dashboard/runs/{archive['runs'][2]}/progress").status_code == 401
    assert client.get("/dashboard/static/dashboard.css").status_code == 200  # nothing of the archive
    assert client.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200

    login = client.get("/dashboard/login?next=/dashboard/runs")
    assert login.status_code == 200 and 'type="password"' in login.text
    wrong = client.post(
        "/dashboard/login", data={"token": "guess", "next": "/dashboard"}, follow_redirects=False
    )
    assert wrong.status_code == 403 and "archivist_dashboard" not in client.cookies
    right = client.post(
        "/dashboard/login", data={"token": TOKEN, "next": "/dashboard/runs"}, follow_redirects=False
    )
    assert right.status_code == 303 and right.headers["location"] == "/dashboard/runs"
    cookie = right.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and TOKEN not in cookie
    assert client.get("/dashboard").status_code == 200
    assert client.get(f"/dashboard/media/keyframes/{ids[0]}").status_code == 200
    # the cookie opens the dashboard's pages, not the API's writes
    event = {"events": [{"user_id": "u", "shot_id": ids[0], "kind": "view"}]}
    assert client.post("/events", json=event).status_code == 401

    away = client.post(
        "/dashboard/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False
    )
    assert away.headers["location"] == "/dashboard"


def test_on_loopback_there_is_no_login(client: TestClient) -> None:
    response = client.get("/dashboard/login?next=/dashboard/audits", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/audits"
    assert client.get("/dashboard/explore").status_code == 200


def test_a_catalog_with_shots_but_no_keyframes_shows_placeholders(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None)
    write_catalog(settings, [ShotSpec("reel-z", "dog", keyframe_uri="")], spaces=("visual",))
    client = TestClient(create_app(settings, engine=QueryEngine(settings)))
    response = client.get("/dashboard/explore")
    assert "1 of 1 shots" in text_of(response) and "no keyframe" in response.text


def test_login_attempts_are_limited_per_client(archive) -> None:
    settings = archive["settings"]
    engine = QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("car"))
    client = TestClient(create_app(settings, host="10.1.2.3", engine=engine))
    guesses = [client.post("/dashboard/login", data={"token": f"guess{i}"}) for i in range(5)]
    assert [g.status_code for g in guesses] == [403] * 5
    locked = client.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False)
    assert locked.status_code == 429 and "too many attempts: try again in" in text_of(locked)
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    assert "archivist_dashboard" not in client.cookies  # not even the right token, until it is over


def test_the_throttle_forgets_old_failures_and_bounds_its_memory() -> None:
    from serve.dashboard.throttle import LoginThrottle

    now = [0.0]
    throttle = LoginThrottle(max_failures=3, window=60, max_clients=100, clock=lambda: now[0])
    for _ in range(3):
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 60 and throttle.retry_after("10.0.0.2") is None
    now[0] = 45.0
    assert throttle.retry_after("10.0.0.1") == 15
    now[0] = 61.0
    assert throttle.retry_after("10.0.0.1") is None  # the failures left the window
    for i in range(1000):
        throttle.failed(f"flood-{i}")
    assert len(throttle._failures) == 100
    throttle.failed("10.0.0.3")
    throttle.succeeded("10.0.0.3")
    assert "10.0.0.3" not in throttle._failures
