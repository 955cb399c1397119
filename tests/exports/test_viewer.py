"""A real IIIF viewer opens archivist's manifests: Universal Viewer, installed from npm by the
project's own `viewer/package.json` + lock, served by `archivist serve` at `/viewer`, driven in
headless Chromium. It must play the access copy the manifest paints and list the shots (the
manifest's Ranges) in its contents panel; a screenshot goes to tests/benchmarks/out/iiif-viewer.png.

The catalog is small and written straight into the tables, but its access copy is a real H.264
file (the bikes sample, 10 s at 640x272) and its shots, transcript and sizes agree with it, so
what the viewer is given is what a real run's manifest would be.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from browser import CHROMEDRIVER, CHROMIUM, headless_chromium
from catalog_helpers import FakeText, ShotSpec, asset_id, fake_image, write_catalog
from fastapi.testclient import TestClient

from catalog import schema
from catalog.iceberg import open_catalog, read, replace_assets
from catalog.settings import Settings
from catalog.storage import write_atomic
from exports import http
from indexes.query import QueryEngine
from jobs.samples import sample_file
from serve.app import create_app

REEL = "reel-v"
REEL_ID = asset_id(REEL)
SHOTS = [(0.0, 3.0, "city"), (3.0, 6.5, "car"), (6.5, 10.0, "forest")]
"""(start, end, topic) of the reel's three shots, over the sample's 10 s."""
SPEECH = [(0.5, 2.5, "Bicycles on the bridge."), (4.0, 6.0, "The race goes on.")]
SCREENSHOT = Path(__file__).parents[1] / "benchmarks" / "out" / "iiif-viewer.png"
WAIT = 60
ROOT = Path(__file__).parents[2]


def viewer_catalog(home: Path) -> Settings:
    """One reel whose source, access copy, shots, sizes and transcript agree with the real video."""
    settings = Settings(home=str(home), catalog_url=None)
    write_catalog(
        settings,
        [ShotSpec(REEL, topic, duration=end - start) for start, end, topic in SHOTS],
        spaces=("visual", "text"),
        access_copies=[REEL],
    )
    video = sample_file("bikes.mp4").read_bytes()
    write_atomic(settings.location("remasters", REEL_ID, "access.mp4"), video)
    source = home.parent / "footage" / f"{REEL}.mp4"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(video)
    catalog = open_catalog(settings)
    shots = read(catalog, "shots").to_pylist()
    for row, (start, end, _) in zip(sorted(shots, key=lambda r: r["shot_index"]), SHOTS, strict=True):
        row["start_s"], row["end_s"] = start, end
    asset = read(catalog, "assets").to_pylist()[0]
    asset.update(uri=str(source), duration_s=10.0, width=640, height=272, fps=25.0, video_codec="h264")
    stamp = {"run_id": "r1", "pipeline_version": "p1"}
    segments = [
        {
            "asset_id": REEL_ID,
            "segment_index": i,
            "start_s": s,
            "end_s": e,
            "text": t,
            "language": "en",
            "model": "whisper-test",
            "shot_ids": None,
            **stamp,
        }
        for i, (s, e, t) in enumerate(SPEECH)
    ]
    for name, table_schema, rows in (
        ("shots", schema.SHOTS, shots),
        ("assets", schema.ASSETS, [asset]),
        ("transcripts", schema.TRANSCRIPTS, segments),
    ):
        replace_assets(catalog, name, pa.Table.from_pylist(rows, schema=table_schema), [REEL_ID], run_id="r1")
    return settings


def serve(settings: Settings) -> tuple[Any, threading.Thread, str]:
    """`archivist serve`'s app on a free loopback port (stand-in models: nothing here searches)."""
    import uvicorn

    engine = QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("car"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="viewer-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def ensure_viewer() -> None:
    """The project's own set-up installs Node and the pinned viewer when they are missing."""
    if (http.viewer_dist() / "umd" / "UV.js").is_file():
        return
    script = ROOT / "infra" / "scripts" / "ensure-services.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"the set-up script failed:\n{done.stderr}"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = viewer_catalog(tmp_path_factory.mktemp("viewer") / "home")
    server, thread, url = serve(settings)
    yield url
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()) or shutil.which("npm") is None:
        subprocess.run(["bash", str(ROOT / "infra" / "scripts" / "ensure-services.sh")], check=True)
    ensure_viewer()
    driver = headless_chromium(
        tmp_path_factory.mktemp("viewer-profile"),
        "--autoplay-policy=no-user-gesture-required",
        console_log=True,
    )
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message=what)


def test_a_shot_ending_past_the_canvas_is_cut_at_its_duration() -> None:
    """Presentation 3: a fragment must not reach past the Canvas (a last shot's end can, where the
    container says the file is shorter than its picture)."""
    pytest.importorskip("iiif_prezi3")
    from exports import iiif
    from exports.record import AssetRecord, ShotRecord

    shots = [
        ShotRecord({"shot_id": "a", "start_s": 0.0, "end_s": 4.0}, {"caption": "First."}),
        ShotRecord({"shot_id": "b", "start_s": 4.0, "end_s": 10.04}, {"caption": "Last."}),
    ]
    record = AssetRecord({"asset_id": REEL_ID, "uri": "/f/reel.mp4", "duration_s": 10.0}, None, [], shots, [])
    document = json.loads(iiif.to_bytes(iiif.manifest(record, "http://archive.example")))
    ranges = [r["items"][0]["id"].split("#t=")[1] for r in document["structures"][0]["items"]]
    assert ranges == ["0.000,4.000", "4.000,10.000"]
    notes = document["items"][0]["annotations"][0]["items"]
    assert [n["target"].split("#t=")[1] for n in notes if "#t=" in n["target"]] == ranges


def test_without_the_viewer_installed_the_page_is_a_503_saying_how(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from serve.errors import add_error_handlers

    app = FastAPI()
    add_error_handlers(app)
    app.include_router(http.viewer_router(tmp_path))
    client = TestClient(app)
    for path in ("/viewer", "/viewer/uv/umd/UV.js"):
        answer = client.get(path)
        assert answer.status_code == 503 and http.VIEWER_INSTALL in answer.json()["error"]


def test_viewer_files_stay_inside_the_viewers_dist(tmp_path: Path) -> None:
    dist = http.viewer_dist(tmp_path)
    (dist / "umd").mkdir(parents=True)
    (dist / "umd" / "UV.js").write_text("// UV")
    (tmp_path / "index.html").write_text("<!DOCTYPE html>")
    (tmp_path / "secret.txt").write_text("no")
    from fastapi import FastAPI

    from serve.errors import add_error_handlers

    app = FastAPI()
    add_error_handlers(app)
    app.include_router(http.viewer_router(tmp_path))
    client = TestClient(app)
    assert client.get("/viewer").text == "<!DOCTYPE html>"
    assert client.get("/viewer/uv/umd/UV.js").text == "// UV"
    assert client.get("/viewer/uv/../../../secret.txt").status_code == 404
    assert client.get("/viewer/uv/%2e%2e/%2e%2e/%2e%2e/secret.txt").status_code == 404
    assert client.get("/viewer/uv/missing.js").status_code == 404


@pytest.mark.slow
def test_the_source_is_served_with_ranges_where_the_catalog_names_it(base_url: str) -> None:
    import httpx

    video = sample_file("bikes.mp4").read_bytes()
    answer = httpx.get(f"{base_url}/media/source/{REEL_ID}", headers={"Range": "bytes=100-199"})
    assert answer.status_code == 206 and answer.content == video[100:200]
    assert (
        answer.headers["content-type"] == "video/mp4" and answer.headers["access-control-allow-origin"] == "*"
    )


@pytest.mark.slow
def test_universal_viewer_plays_the_access_copy_and_lists_the_shots(base_url: str, browser: Any) -> None:
    """The shots are listed in UV's contents panel by their labels; choosing one seeks the access
    copy to its start (the Range's `#t=` fragment), and UV's own Play button plays it on."""
    from selenium.webdriver.common.by import By

    manifest = f"{base_url}/iiif/{REEL_ID}/manifest.json"
    browser.get(f"{base_url}/viewer?manifest={manifest}")
    links = wait_for(
        browser,
        lambda d: (
            [a for a in d.find_elements(By.CSS_SELECTOR, ".treeView a[id^=tree-link]") if a.is_displayed()]
            or None
        ),
        "the contents panel lists the ranges",
    )
    assert [a.text for a in links] == [
        "Shots",
        "Shot 1: A shot of a city.",
        "Shot 2: A shot of a car.",
        "Shot 3: A shot of a forest.",
    ]
    video = "document.querySelector('.uv video')"
    wait_for(browser, lambda d: d.execute_script(f"return {video}.readyState") >= 1, "the access copy loads")
    assert browser.execute_script(f"return {video}.currentSrc") == f"{base_url}/media/video/{REEL_ID}"
    links[3].click()
    wait_for(browser, lambda d: abs(d.execute_script(f"return {video}.currentTime") - 6.5) < 0.05, "shot 3")
    browser.execute_script(f"{video}.muted = true")
    browser.find_element(By.CSS_SELECTOR, ".uv button[title=Play]").click()
    wait_for(
        browser,
        lambda d: d.execute_script(f"return {video}.readyState >= 3 && {video}.currentTime > 7.5"),
        "the access copy plays on from shot 3",
    )
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def cue_counts(driver: Any, player: str) -> list[int]:
    """How many cues each of the player's text tracks has parsed (0 until it has loaded)."""
    return driver.execute_script(
        f"return [...document.getElementById('{player}').textTracks].map(t => t.cues ? t.cues.length : 0)"
    )


@pytest.mark.slow
def test_the_dashboards_players_load_the_webvtt_tracks(base_url: str, browser: Any) -> None:
    """Both players of a shot (the source and the access copy) carry the asset's tracks; Chromium
    fetches each and parses its cues: the captions are shown by default, the others on asking."""
    from selenium.webdriver.common.by import By

    browser.get(f"{base_url}/dashboard/explore?asset={REEL_ID}")
    shot = browser.find_element(By.CSS_SELECTOR, "figure.card[data-shot]").get_attribute("data-shot")
    browser.get(f"{base_url}/dashboard/shots/{shot}")
    for player in ("source", "remaster"):
        labels = browser.execute_script(
            f"return [...document.getElementById('{player}').textTracks].map(t => [t.kind, t.label, t.mode])"
        )
        assert labels == [
            ["captions", "Shot captions (machine-generated)", "showing"],
            ["captions", "Transcript (machine-generated)", "disabled"],
            ["chapters", "Shots", "disabled"],
        ], (player, labels)
        browser.execute_script(
            f"for (const t of document.getElementById('{player}').textTracks) t.mode = 'showing'"
        )
        cues = wait_for(
            browser, lambda d, p=player: all(cue_counts(d, p)) and cue_counts(d, p), f"{player}'s tracks load"
        )
        assert cues == [len(SHOTS), len(SPEECH), len(SHOTS)]
    first = browser.execute_script("return document.getElementById('remaster').textTracks[1].cues[0].text")
    assert first == SPEECH[0][2]
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
