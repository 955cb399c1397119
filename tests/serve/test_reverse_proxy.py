"""archivist behind a reverse proxy: a real uvicorn, as `archivist serve` starts it, reached the
way a proxy forwards a browser's requests (the path prefix stripped, X-Forwarded-Proto/-For,
the public Host). Links, IIIF ids, cookies and redirects follow the public address; the login limit counts
the browser, not the proxy; forms posted from other sites are refused."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from catalog_helpers import SAMPLE, FakeText, asset_id, fake_image, write_catalog

from catalog.settings import Settings
from indexes.query import QueryEngine
from serve.app import create_app

TOKEN = "proxy-test-token"
PUBLIC = "archive.example.org"
REEL_C = asset_id("reel-c")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on loopback as `archivist serve --root-path /archive` runs it, trusting the
    proxy on 127.0.0.1 (uvicorn's proxy headers); answers as if reachable beyond loopback."""
    settings = Settings(
        home=str(tmp_path_factory.mktemp("proxy") / "home"), catalog_url=None, api_token=TOKEN
    )
    write_catalog(settings, SAMPLE, access_copies=["reel-c"])
    engine = QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("car"))
    app = create_app(settings, host="10.1.2.3", engine=engine)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        root_path="/archive",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def forwarded(client_ip: str = "203.0.113.7") -> dict[str, str]:
    """What a TLS-terminating proxy adds to a browser's request."""
    return {"host": PUBLIC, "x-forwarded-proto": "https", "x-forwarded-for": client_ip}


def test_iiif_ids_name_the_public_address(service: str) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    answer = httpx.get(f"{service}/iiif/{REEL_C}/manifest.json", headers={**forwarded(), **auth})
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == f"https://{PUBLIC}/archive/iiif/{REEL_C}/manifest.json"


def test_the_login_redirect_and_the_pages_links_keep_the_prefix(service: str) -> None:
    answer = httpx.get(f"{service}/dashboard/explore", headers=forwarded())
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(
        "/archive/dashboard/login?next=%2Farchive%2Fdashboard%2Fexplore"
    )
    form = httpx.get(f"{service}/dashboard/login", headers=forwarded())
    assert (
        'action="/archive/dashboard/login"' in form.text and 'href="/archive/dashboard/static/' in form.text
    )


def test_the_session_cookie_is_secure_and_scoped_to_the_prefix(service: str) -> None:
    login = httpx.post(
        f"{service}/dashboard/login",
        data={"token": TOKEN, "next": "/archive/dashboard/explore"},
        headers={**forwarded("203.0.113.50"), "origin": f"https://{PUBLIC}"},
    )
    assert login.status_code == 303 and login.headers["location"] == "/archive/dashboard/explore"
    cookie = login.headers["set-cookie"].lower()
    assert "path=/archive/dashboard" in cookie and "secure" in cookie and "samesite=strict" in cookie
    session = login.headers["set-cookie"].split(";")[0]  # what the browser sends back, through the proxy
    page = httpx.get(f"{service}/dashboard/explore", headers={**forwarded("203.0.113.50"), "cookie": session})
    assert page.status_code == 200 and 'href="/archive/dashboard/shots/' in page.text
    assert 'src="/archive/dashboard/media/keyframes/' in page.text


def test_login_attempts_are_counted_per_browser_not_per_proxy(service: str) -> None:
    for _ in range(5):
        httpx.post(f"{service}/dashboard/login", data={"token": "wrong"}, headers=forwarded("198.51.100.1"))
    locked = httpx.post(
        f"{service}/dashboard/login", data={"token": "wrong"}, headers=forwarded("198.51.100.1")
    )
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    other = httpx.post(
        f"{service}/dashboard/login", data={"token": "wrong"}, headers=forwarded("198.51.100.2")
    )
    assert other.status_code == 403, "another browser behind the same proxy is not locked out"


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "null"},
        {"referer": "http://archive.example.org/archive/dashboard/login"},
    ],
    ids=["other origin", "fetch metadata", "opaque origin", "plain http referer"],
)
def test_a_form_posted_from_another_site_is_refused(service: str, headers: dict[str, str]) -> None:
    answer = httpx.post(
        f"{service}/dashboard/login",
        data={"token": TOKEN},
        headers={**forwarded("203.0.113.60"), **headers},
    )
    assert answer.status_code == 403 and "refused" in answer.text
    assert "set-cookie" not in answer.headers


def test_media_and_manifests_carry_cors_behind_the_prefix(service: str) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    for path in (f"/iiif/{REEL_C}/manifest.json", f"/media/video/{REEL_C}"):
        answer = httpx.get(f"{service}{path}", headers={**forwarded(), **auth, "range": "bytes=0-9"})
        assert answer.status_code in (200, 206) and answer.headers["access-control-allow-origin"] == "*", path
