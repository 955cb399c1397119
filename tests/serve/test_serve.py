"""The HTTP API over a small catalog: answers, every kind of bad input, media ranges, tokens, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from catalog_helpers import SAMPLE, FakeText, ShotSpec, asset_id, fake_image, jpeg, write_catalog
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from catalog.settings import Settings
from indexes.query import QueryEngine
from jobs.cli import app as cli
from serve.app import create_app
from serve.auth import BindingError
from serve.limits import MAX_BODY_BYTES
from serve.media import parse_range

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[str]]:
    root = tmp_path_factory.mktemp("serve")
    outside = root / "outside.jpg"
    outside.write_bytes(b"not for the network")
    settings = Settings(home=str(root / "home"), catalog_url=None, api_token=TOKEN)
    specs = [*SAMPLE, ShotSpec("reel-x", "forest", keyframe_uri=str(outside))]  # 13: a keyframe outside
    return settings, write_catalog(settings, specs, access_copies=["reel-c"])


@pytest.fixture(scope="module")
def engine(archive) -> QueryEngine:
    return QueryEngine(archive[0], encode_text=FakeText(), embed_image=fake_image("car"))


@pytest.fixture(scope="module")
def client(archive, engine: QueryEngine) -> Iterator[TestClient]:
    with TestClient(create_app(archive[0], engine=engine)) as served:  # started: its lifespan runs
        yield served


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    return body["error"]


def png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge picture: decoding it would take gigabytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    header = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\0" * 1000)
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    return b"\x89PNG\r\n\x1a\n" + header + idat


# -- answers -------------------------------------------------------------------------------------


def test_text_search_joins_the_catalog_and_folds_copies(client: TestClient, archive) -> None:
    _, ids = archive
    response = client.get("/search", params={"q": "dog", "top": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["score"] == "rrf" and body["meta"]["query"] == "dog"
    hits = body["hits"]
    assert len(hits) == 3 and all(h["caption"] == "A shot of a dog." for h in hits)
    folded = next(h for h in hits if h["duplicates"])
    assert {folded["shot_id"], *(d["shot_id"] for d in folded["duplicates"])} == {ids[0], ids[3], ids[4]}
    shown = [h["shot_id"] for h in hits] + [d["shot_id"] for h in hits for d in h["duplicates"]]
    assert len(shown) == len(set(shown))
    assert hits[0]["thumbnail_url"] == f"/media/keyframes/{hits[0]['shot_id']}"
    assert {"asset_id", "uri", "start_s", "end_s", "score", "dup_group"} <= set(hits[0])


def test_filters_from_query_parameters(client: TestClient, archive) -> None:
    _, ids = archive
    response = client.get("/search?q=dog&object=car&object=person&top=5")
    assert [h["shot_id"] for h in response.json()["hits"]] == [ids[6]]
    response = client.get("/search", params={"q": "car", "has_faces": "true", "safe": "true"})
    assert [h["shot_id"] for h in response.json()["hits"]] == [ids[6], ids[0]]
    assert response.json()["meta"]["filters"] == {"has_faces": True, "safe": True}


def test_search_by_image_and_by_shot(client: TestClient, archive) -> None:
    _, ids = archive
    response = client.post(
        "/search", files={"image": ("q.jpg", jpeg((10, 10, 200)), "image/jpeg")}, params={"top": 3}
    )
    assert response.status_code == 200, response.text
    assert {ids.index(h["shot_id"]) for h in response.json()["hits"]} == {5, 6, 7}
    response = client.post("/search", data={"shot_id": ids[5]}, params={"top": 2, "monochrome": "false"})
    assert {ids.index(h["shot_id"]) for h in response.json()["hits"]} == {6, 7}


def test_shot_and_asset_details(client: TestClient, archive) -> None:
    _, ids = archive
    shot = client.get(f"/shots/{ids[6]}").json()
    assert (
        shot["objects"] == ["car", "person"]
        and shot["faces"] == 2
        and shot["nsfw_score"] == pytest.approx(0.02)
    )
    assert shot["video_url"] == f"/media/video/{asset_id('reel-c')}"
    assert client.get(f"/shots/{ids[3]}").json()["group_size"] == 3
    asset = client.get(f"/assets/{asset_id('reel-c')}").json()
    assert [s["shot_id"] for s in asset["shots"]] == [ids[5], ids[6], ids[7]]
    assert asset["status"] == "ok" and asset["uri"] == "/footage/reel-c.mp4"


def test_recommend_reports_exposure(client: TestClient, archive) -> None:
    _, ids = archive
    response = client.get("/recommend", params={"shot_id": ids[5], "top": 4})
    assert response.status_code == 200, response.text
    meta = response.json()["meta"]
    assert {"coverage", "catalog_coverage", "gini", "assets"} <= set(meta["exposure"])
    assert meta["exposure_before_rerank"] and meta["diversity"] == 0.7 and meta["fairness"] == 0.5
    assert ids[5] not in {h["shot_id"] for h in response.json()["hits"]}


def test_events_then_for_you_leaves_out_what_was_seen(client: TestClient, archive) -> None:
    _, ids = archive
    seen = [ids[1], ids[5]]
    events = [
        {"user_id": "bo", "shot_id": shot, "kind": kind}
        for shot, kind in zip(seen, ["save", "like"], strict=True)
    ]
    response = client.post("/events", json={"events": events}, headers=AUTH)
    assert response.status_code == 201 and response.json() == {"accepted": 2}
    hits = client.get("/recommend", params={"user": "bo", "top": 6}).json()["hits"]
    shown = {h["shot_id"] for h in hits} | {d["shot_id"] for h in hits for d in h["duplicates"]}
    assert len(hits) == 6 and not shown & set(seen)


class SlowToWarm(QueryEngine):
    """An engine whose text encoder takes as long as the test says to load."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loaded_encoder = threading.Event()

    def warm(self) -> None:
        assert self.loaded_encoder.wait(60)
        super().warm()


def test_the_service_takes_no_request_until_its_text_encoder_is_warm(archive) -> None:
    """So no search waits seconds for the encoder, and with several workers on one port, one
    still loading leaves its connections to the others."""
    engine = SlowToWarm(archive[0], encode_text=FakeText(), embed_image=fake_image("car"))
    started = threading.Event()
    health: list[str] = []

    def serve() -> None:
        with TestClient(create_app(archive[0], engine=engine)) as served:
            started.set()
            health.append(served.get("/health").json()["status"])

    server = threading.Thread(target=serve)
    server.start()
    assert not started.wait(1.0), "the app took requests before its encoder was loaded"
    engine.loaded_encoder.set()
    server.join(60)
    assert health == ["ok"]


def test_health_metrics_and_openapi(client: TestClient) -> None:
    client.get("/search", params={"q": "dog"})
    health = client.get("/health").json()
    assert health["status"] == "ok" and set(health["indexes"]) == {"visual", "text", "concept"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'archivist_http_requests_total{method="GET",route="/search",status="200"}' in text
    assert 'archivist_http_request_seconds_bucket{le="0.005",method="GET",route="/search"}' in text
    assert "archivist_index_info{built_at=" in text and 'archivist_index_vectors{space="text"} 14.0' in text
    assert 'archivist_catalog_rows{table="shots"} 14.0' in text
    spec = client.get("/openapi.json").json()
    assert {"get", "post"} <= set(spec["paths"]["/search"])
    names = {p["name"] for p in spec["paths"]["/search"]["get"]["parameters"]}
    assert {"q", "top", "tag", "object", "min_duration", "has_faces", "safe", "after"} <= names
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "message"),
    [
        # the OpenAPI document states these constraints, so they are the framework's 422s
        ("get", "/search", {}, 422, "invalid request: q: Field required"),
        ("get", "/search?q=%20%20", {}, 422, "invalid request: q: String should match pattern"),
        ("get", "/search?q=" + "dog%20" * 200, {}, 422, "q: String should have at most 500 characters"),
        ("get", "/search?q=dog&min_duration=abc", {}, 400, "malformed filter: min_duration: Input should be"),
        ("get", "/search?q=dog&colour=red", {}, 400, "unknown filter 'colour'; the filters are: asset"),
        ("get", "/search?q=dog&after=2026-02-30", {}, 400, "after: Input should be a valid date"),
        (
            "get",
            "/search?q=dog&top=0",
            {},
            422,
            "invalid request: top: Input should be greater than or equal",
        ),
        ("get", "/search?q=dog&top=lots", {}, 422, "top: Input should be a valid integer"),
        (
            "post",
            "/search",
            {"files": {"image": ("a.pdf", b"%PDF-1.4 nope", "application/pdf")}},
            415,
            "not an image that can be read",
        ),
        (
            "post",
            "/search",
            {"files": {"image": ("e.png", b"", "image/png")}},
            415,
            "the uploaded image is empty",
        ),
        (
            "post",
            "/search",
            {"files": {"image": ("bomb.png", png((8000, 6000), "1"), "image/png")}},
            413,
            "8000x6000 pixels",
        ),
        (
            "post",
            "/search",
            {"files": {"image": ("huge.png", png_claiming(100_000, 100_000), "image/png")}},
            413,
            "at most 40,000,000 pixels are accepted",
        ),
        (
            "post",
            "/search",
            {"files": {"image": ("big.jpg", b"\xff" * (MAX_BODY_BYTES + 1), "image/jpeg")}},
            413,
            "the request body is too large",
        ),
        ("post", "/search", {}, 400, "send exactly one of"),
        ("post", "/search", {"data": {"shot_id": "0" * 32}}, 404, "is not in the catalog"),
        ("get", "/shots/" + "0" * 32, {}, 404, "is not in the catalog"),
        ("get", "/assets/" + "0" * 64, {}, 404, "is not in the catalog"),
        ("get", "/recommend", {}, 400, "give exactly one of: shot_id"),
        ("get", "/recommend?user=nobody", {}, 404, "'nobody' has no views, likes or saves"),
        (
            "get",
            "/recommend?shot_id=abc&fairness=2",
            {},
            422,
            "fairness: Input should be less than or equal to 1",
        ),
        ("get", "/no/such/route", {}, 404, "Not Found"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    client: TestClient, method: str, url: str, kwargs: dict, status: int, message: str
) -> None:
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status, response.text[:300]
    assert message in error_of(response)
    assert len(response.content) < 2000, "the answer echoes the input back"
    assert client.get("/health").json()["status"] == "ok"


def test_a_10_mb_query_string_is_refused_at_the_door(client: TestClient) -> None:
    """Sent straight to the app: an HTTP client library refuses to build such a URL."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/search",
        "raw_path": b"/search",
        "root_path": "",
        "query_string": b"q=" + b"x" * (10 << 20),
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(client.app(scope, receive, send))
    assert sent[0]["status"] == 414
    body = json.loads(sent[1]["body"])
    assert body["error"] == "the query string is too long" and body["detail"] == {"max_bytes": 16384}


@pytest.mark.parametrize(
    "path",
    [
        "/media/keyframes/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/media/keyframes/%2e%2e",
        "/media/keyframes/../../../../etc/passwd",
        "/media/video/..%2Fcatalog.db",
        "/media/keyframes/" + "0" * 32,
    ],
)
def test_a_path_cannot_leave_the_warehouse(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert b"root:" not in response.content and b"SQLite" not in response.content
    error_of(response)


def test_a_catalog_uri_outside_the_warehouse_is_not_served(client: TestClient, archive) -> None:
    _, ids = archive
    response = client.get(f"/media/keyframes/{ids[13]}")
    assert response.status_code == 404 and "not in the warehouse" in error_of(response)
    assert b"not for the network" not in response.content


def test_a_symlink_out_of_the_warehouse_is_not_followed(client: TestClient, archive) -> None:
    settings, ids = archive
    path = Path(settings.home) / "keyframes"
    keyframe = next(path.rglob(f"{ids[8]}.jpg"))
    saved = keyframe.read_bytes()
    keyframe.unlink()
    os.symlink("/etc/hostname", keyframe)
    try:
        assert client.get(f"/media/keyframes/{ids[8]}").status_code == 404
    finally:
        keyframe.unlink()
        keyframe.write_bytes(saved)


# -- media ranges --------------------------------------------------------------------------------


def test_keyframes_whole_and_in_ranges(client: TestClient, archive) -> None:
    _, ids = archive
    whole = client.get(f"/media/keyframes/{ids[0]}")
    assert whole.status_code == 200 and whole.headers["content-type"] == "image/jpeg"
    assert whole.headers["accept-ranges"] == "bytes" and whole.content[:2] == b"\xff\xd8"
    size = len(whole.content)
    assert int(whole.headers["content-length"]) == size
    part = client.get(f"/media/keyframes/{ids[0]}", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole.content[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{size}" and part.headers["content-length"] == "10"
    tail = client.get(f"/media/keyframes/{ids[0]}", headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == whole.content[-5:]
    beyond = client.get(f"/media/keyframes/{ids[0]}", headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert "beyond the end" in error_of(beyond)
    several = client.get(f"/media/keyframes/{ids[0]}", headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == whole.content


def test_video_streams_the_access_copy_in_ranges(client: TestClient, archive) -> None:
    part = client.get(f"/media/video/{asset_id('reel-c')}", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.headers["content-type"] == "video/mp4"
    assert part.content == (bytes(range(256)) * 400)[1000:2000]
    assert part.headers["content-range"] == "bytes 1000-1999/102400"
    missing = client.get(f"/media/video/{asset_id('reel-a')}")
    assert missing.status_code == 404 and "has no access copy" in error_of(missing)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=10-", (10, 99)),
        ("bytes=90-200", (90, 99)),
        ("bytes=-200", (0, 99)),
        ("items=0-1", None),
        ("bytes=5-2", None),
        ("bytes=a-b", None),
        ("bytes=-", None),
        (None, None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


# -- tokens --------------------------------------------------------------------------------------


def test_events_need_the_token_even_on_loopback(client: TestClient, archive) -> None:
    _, ids = archive
    events = {"events": [{"user_id": "cy", "shot_id": ids[0], "kind": "view"}]}
    missing = client.post("/events", json=events)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in error_of(missing)
    wrong = client.post("/events", json=events, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 403 and "not this service's token" in error_of(wrong)
    unknown = client.post(
        "/events", json={"events": [{"user_id": "cy", "shot_id": "0" * 32, "kind": "view"}]}, headers=AUTH
    )
    assert unknown.status_code == 404 and "nothing was recorded" in error_of(unknown)
    bad = client.post(
        "/events", json={"events": [{"user_id": "cy", "shot_id": ids[0], "kind": "stare"}]}, headers=AUTH
    )
    assert bad.status_code == 422 and "events.0.kind" in error_of(bad)
    assert client.post("/events", json={"events": []}, headers=AUTH).status_code == 422
    assert (
        client.post(
            "/events", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
        ).status_code
        == 422
    )


def test_writes_are_off_without_a_configured_token(archive, engine: QueryEngine) -> None:
    settings, ids = archive
    app = create_app(settings.model_copy(update={"api_token": None}), engine=engine)
    response = TestClient(app).post(
        "/events", json={"events": [{"user_id": "d", "shot_id": ids[0], "kind": "view"}]}
    )
    assert response.status_code == 403 and "ARCHIVIST_API_TOKEN" in error_of(response)


def test_beyond_loopback_every_read_needs_the_token(archive, engine: QueryEngine) -> None:
    settings, _ = archive
    public = TestClient(create_app(settings, host="0.0.0.0", engine=engine))
    assert public.get("/search", params={"q": "dog"}).status_code == 401
    assert public.get("/metrics").status_code == 401
    assert (
        public.get("/search", params={"q": "dog"}, headers={"Authorization": "Bearer x"}).status_code == 403
    )
    assert public.get("/search", params={"q": "dog"}, headers=AUTH).status_code == 200
    assert public.get("/health").status_code == 200
    with pytest.raises(BindingError, match="needs a token"):
        create_app(settings.model_copy(update={"api_token": None}), host="0.0.0.0", engine=engine)


def test_serve_refuses_a_public_address_without_a_token(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVIST_API_TOKEN", raising=False)
    done = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert done.exit_code == 2 and "set ARCHIVIST_API_TOKEN, or bind to 127.0.0.1" in " ".join(
        done.output.split()
    )


def test_a_missing_index_is_a_503_naming_the_snapshot_and_the_command(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None)
    write_catalog(settings, SAMPLE[:2], spaces=("visual",))
    engine = QueryEngine(settings, encode_text=FakeText())
    response = TestClient(create_app(settings, engine=engine)).get("/search", params={"q": "dog"})
    snapshot = engine.state.tables["embeddings"][0]
    assert response.status_code == 503
    assert f"snapshot {snapshot} with: archivist index build --space text" in error_of(response)


def test_the_service_picks_up_a_rebuilt_index_while_answering(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None)
    write_catalog(settings, SAMPLE[:3])
    engine = QueryEngine(settings, encode_text=FakeText())
    with TestClient(create_app(settings, engine=engine, refresh_seconds=0.1)) as client:
        assert client.get("/search", params={"q": "dog"}).status_code == 200
        before = client.get("/health").json()["indexes"]["text"]
        ids = write_catalog(settings, [*SAMPLE[:3], ShotSpec("reel-new", "dog", spread=0.0)])
        deadline = time.monotonic() + 20
        while client.get("/health").json()["indexes"]["text"]["count"] == before["count"]:
            assert time.monotonic() < deadline, "the new index was not loaded"
            time.sleep(0.1)
        hits = client.get("/search", params={"q": "dog", "top": 4}).json()["hits"]
        assert ids[3] in {h["shot_id"] for h in hits}


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_archivist_serve_survives_a_10_mb_request_line(tmp_path: Path, workers: int) -> None:
    """The real server, in one process or several: uvicorn refuses the oversized request line
    itself and goes on serving."""
    import socket
    import subprocess
    import sys

    import httpx

    settings = Settings(home=str(tmp_path / "home"), catalog_url=None)
    ids = write_catalog(settings, SAMPLE[:4])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ARCHIVIST_HOME": settings.home}
    service = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # ready once its text encoder is loaded, seconds per worker
        while True:
            assert service.poll() is None and time.monotonic() < deadline, "archivist serve did not start"
            try:
                if httpx.get(f"{base}/health").json()["status"] == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port)) as connection:
            with contextlib.suppress(OSError):  # the server may close before it is all sent
                connection.sendall(b"GET /search?q=" + b"x" * (10 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert connection.recv(200).startswith(b"HTTP/1.1 400 ")
        part = httpx.get(f"{base}/media/keyframes/{ids[0]}", headers={"Range": "bytes=0-3"})
        assert part.status_code == 206 and part.content == b"\xff\xd8\xff\xe0"
        assert httpx.get(f"{base}/health").json()["shots"] == 4
        serving = subprocess.run(["pgrep", "-P", str(service.pid)], capture_output=True, text=True)
        assert len(serving.stdout.split()) >= (workers if workers > 1 else 0)  # a worker process each
        for shot in ids * 2:  # whichever worker answers has the catalog
            assert httpx.get(f"{base}/shots/{shot}", timeout=60).json()["shot_id"] == shot
    finally:
        service.terminate()
        service.wait(timeout=60)
