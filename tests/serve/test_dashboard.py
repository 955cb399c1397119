"""The dashboard in a real browser (headless Chromium driven by Selenium) over a catalog made by
real runs: what each page renders (figures, thumbnails, charts, two videos playing in step), with
a screenshot of each under tests/benchmarks/out/screenshots/. A page fails its test if it shows
an error, an empty state where the catalog has data, a console error, or loads anything from
anywhere but this service."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMEDRIVER, CHROMIUM, SCREENSHOTS, headless_chromium

from catalog.iceberg import open_catalog
from catalog.query import sql
from catalog.settings import Settings
from catalog.state import StateStore
from indexes.recommend import record_events
from jobs.run import run_job
from jobs.samples import sample_file
from jobs.spec import parse_spec_text

pytestmark = pytest.mark.slow

SCREEN_TEXT = "HARBOUR 1962"
SENTENCE = "The harbour bridge opens today."
WAIT = 30


def tape_spec(source: Path) -> str:
    """Every stage, the remaster too: five actor pools, each given a share of a CPU so that all
    five fit on a two-core local Ray at once (with a whole CPU each, the later pools can take the
    cores before segment gets one, and the run waits for ever)."""
    share = "resources: {num_cpus: 0.4, max_actors: 1, batch_size: 1}"
    stages = [f"speech: {{{share}}}", f"remaster: {{enabled: true, upscale: 1, {share}}}"]
    stages += [f"{name}: {{{share}}}" for name in ("segment", "keyframes", "text")]
    return f"name: tapes\nsource: {{uri: {source}}}\nstages:\n" + "".join(f"  {s}\n" for s in stages)


def tape_clip(path: Path) -> Path:
    """A 4 s 'tape' that remasters quickly: a face (the carphone sample at 352x288), a caption
    burnt into the picture, and espeak-ng's voice saying SENTENCE."""
    import av
    import cv2
    import numpy as np

    wav = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(wav), SENTENCE], check=True, capture_output=True)
    with wave.open(str(wav)) as handle:
        rate, raw = handle.getframerate(), handle.readframes(handle.getnframes())
    wav.unlink()
    speech = np.frombuffer(raw, np.int16).astype(np.float32) / 32768
    audio = np.zeros(4 * rate, np.float32)
    start = int(0.3 * rate)
    audio[start : start + len(speech)] = speech[: len(audio) - start]
    with av.open(str(sample_file("carphone_pristine.mp4"))) as source:
        frames = [f.to_ndarray(format="rgb24") for f in source.decode(video=0)][:100]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 352, 288, "yuv420p"
        sound = out.add_stream("aac", rate=rate, layout="mono")
        for frame in frames:
            big = cv2.resize(frame, (352, 288), interpolation=cv2.INTER_CUBIC)
            big[226:278, 16:336] = 255
            cv2.putText(big, SCREEN_TEXT, (28, 266), cv2.FONT_HERSHEY_DUPLEX, 1.3, (0, 0, 0), 2, cv2.LINE_AA)
            out.mux(video.encode(av.VideoFrame.from_ndarray(big, format="rgb24")))
        out.mux(video.encode(None))
        for at in range(0, len(audio), 1024):
            piece = av.AudioFrame.from_ndarray(
                audio[at : at + 1024].reshape(1, -1), format="flt", layout="mono"
            )
            piece.sample_rate, piece.pts, piece.time_base = rate, at, Fraction(1, rate)
            out.mux(sound.encode(piece))
        out.mux(sound.encode(None))
    return path


@pytest.fixture(scope="module")
def archive(ray_session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two real runs: the sample clips and a broken file (every stage but speech), then the tape
    (every stage, remastered at its own size), the second run audited when the audits are
    importable, and one user's events."""
    if shutil.which("espeak-ng") is None:
        _ensure_services()
    root = tmp_path_factory.mktemp("dashboard-run")
    footage, tapes = root / "footage", root / "tapes"
    footage.mkdir()
    tapes.mkdir()
    for name in ("bigbuckbunny.mp4", "bikes.mp4"):
        shutil.copy(sample_file(name), footage / name)
    (footage / "broken.mp4").write_bytes(os.urandom(20_000))
    tape_clip(tapes / "tape.mp4")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHIVIST_HOME", str(root / "archive"))
        patch.delenv("ARCHIVIST_CATALOG_URL", raising=False)
        first = run_job(
            parse_spec_text(
                f"name: nightly\nsource: {{uri: {footage}}}\nstages:\n  speech: {{enabled: false}}\n",
                origin="dashboard",
            )
        )
        second = run_job(parse_spec_text(tape_spec(tapes), origin="dashboard"))
        settings = Settings()
    audited = importlib.util.find_spec("jobs.audit.run") is not None
    if audited:
        from jobs.audit.config import AuditConfig
        from jobs.audit.run import audit_run

        audit_run(settings, second["run_id"], AuditConfig.model_validate({"bias": {"quality_parity": False}}))
    catalog = open_catalog(settings)
    shots = sql(
        catalog,
        "SELECT s.shot_id, s.start_s, s.end_s, a.uri FROM shots s JOIN assets a USING (asset_id) "
        "ORDER BY a.uri, s.start_s",
    ).to_pylist()
    bikes = [s["shot_id"] for s in shots if s["uri"].endswith("bikes.mp4")]
    record_events(catalog, [{"user_id": "ana", "shot_id": shot, "kind": "like"} for shot in bikes[:2]])
    yield {
        "settings": settings,
        "runs": (first, second),
        "shots": shots,
        "tape_shot": next(s for s in shots if s["uri"].endswith("tape.mp4")),
        "audited": audited,
    }


@pytest.fixture(scope="module")
def base_url(archive) -> Iterator[str]:
    """`archivist serve`'s app on a free loopback port, with its real models."""
    import uvicorn

    from serve.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(archive["settings"]), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="dashboard-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Opened once the service is up: the runs behind it are over by then, so a headless
    Chromium that spins on a blank page (seen here) cannot starve Ray's niced workers."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        _ensure_services()
    profile = tmp_path_factory.mktemp("chromium-profile")
    driver = headless_chromium(profile, "--autoplay-policy=no-user-gesture-required", console_log=True)
    driver.set_page_load_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _ensure_services() -> None:
    """The project's own set-up installs Chromium, its driver and espeak-ng when missing."""
    script = Path(__file__).parents[2] / "infra" / "scripts" / "ensure-services.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"the set-up script failed:\n{done.stderr}"


# -- what every page must satisfy -------------------------------------------------------------------


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=what)


def open_page(driver: Any, url: str, *, charts: int = 0) -> None:
    """Load a page and wait for its charts; then hold it to the rules every page keeps."""
    driver.get(url)
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete", f"{url} loads")
    if charts:
        wait_for(
            driver,
            lambda d: (
                d.execute_script("return document.querySelectorAll('.chart .main-svg').length") >= charts
            ),
            f"{charts} charts drawn on {url}",
        )
    check_page(driver, url)


def check_page(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-error]")]
    assert not errors, f"{url} shows an error: {errors}"
    empty = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-empty]")]
    assert not empty, f"{url} shows an empty state over a catalog with data: {empty}"
    assert driver.find_elements(By.TAG_NAME, "h1"), (
        f"{url} is not a dashboard page: {driver.page_source[:300]}"
    )
    problems = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, f"{url} logged errors: {problems}"
    origin = url.split("/dashboard")[0]
    elsewhere = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith(arguments[0]))",
        origin,
    )
    assert not elsewhere, f"{url} loaded from elsewhere: {elsewhere}"


def screenshot(driver: Any, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height, 800), 4000))
    assert driver.save_screenshot(str(path)), path
    driver.set_window_size(1400, 1000)
    return path


def text(driver: Any, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector).text


def loaded_images(driver: Any, selector: str) -> int:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])]"
        ".filter(i => i.complete && i.naturalWidth > 0).length",
        selector,
    )


# -- the pages ---------------------------------------------------------------------------------------


def test_overview(browser, base_url: str, archive) -> None:
    open_page(browser, f"{base_url}/dashboard", charts=2)
    shots, assets = len(archive["shots"]), 4
    assert text(browser, "#shots .value") == str(shots)
    assert text(browser, "#assets .value") == str(assets)
    assert text(browser, "#hours .value") == "0.01"  # 5.3 + 10 + 4 s
    assert "19.3 s in 3 catalogued assets" in text(browser, "#hours")
    statuses = text(browser, "#statuses")
    assert "ok 3" in statuses and "failed 1" in statuses
    assert "remastered 1 3 33.3%" in text(browser, '#coverage tr[data-stage="remastered"]')
    assert f"indexed {shots} {shots} 100.0%" in text(browser, '#coverage tr[data-stage="indexed"]')
    assert archive["runs"][1]["run_id"] in text(browser, "#changes")
    assert "remasters +2" in text(browser, "#changed-tables")
    screenshot(browser, "overview")


def test_runs_and_a_failed_asset(browser, base_url: str, archive) -> None:
    from selenium.webdriver.common.by import By

    first, second = archive["runs"]
    open_page(browser, f"{base_url}/dashboard/runs", charts=2)
    rows = text(browser, "#runs")
    assert first["run_id"] in rows and second["run_id"] in rows and "succeeded" in rows
    screenshot(browser, "runs")
    browser.find_element(By.LINK_TEXT, first["run_id"]).click()
    wait_for(browser, lambda d: first["run_id"] in d.find_element(By.TAG_NAME, "h1").text, "the run's page")
    open_page(browser, browser.current_url, charts=1)
    assert "broken.mp4" in text(browser, "#failed") and "MediaError" in text(browser, "#failed")
    segment = text(browser, '#steps tr[data-step="segment"]').split()
    assert segment[:3] == ["segment", str(first["shots"]), "1"]  # rows, then the one failure
    screenshot(browser, "run")


def test_a_running_job_updates_live(browser, base_url: str, archive) -> None:
    store = StateStore(archive["settings"].catalog_url_resolved)
    run_id = store.start_run("watched", {}, "p-live")
    try:
        store.record_step(run_id, "discover", rows=3, failures=0, seconds=0.1)
        open_page(browser, f"{base_url}/dashboard/runs/{run_id}")
        assert text(browser, '#live [data-field="steps"]') == "1"
        store.record_step(run_id, "fingerprint", rows=3, failures=0, seconds=0.4)
        wait_for(browser, lambda d: text(d, '#live [data-field="steps"]') == "2", "the page follows the run")
        assert "fingerprint: 3 rows" in text(browser, '#live [data-field="step-list"]')
        screenshot(browser, "run-live")
    finally:
        store.finish_run(
            run_id, "succeeded", summary={"assets": {"ok": 0, "failed": 0, "skipped": 3}, "shots": 0}
        )
    wait_for(browser, lambda d: "succeeded" in text(d, "main p"), "the page reloads when the run ends")


def test_explore_grid_and_filters(browser, base_url: str, archive) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    shots = len(archive["shots"])
    open_page(browser, f"{base_url}/dashboard/explore")
    assert text(browser, "#count").startswith(f"{shots} of {shots} shots")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid img.thumb")) == shots
    wait_for(browser, lambda d: loaded_images(d, "#grid img.thumb") == shots, "every thumbnail loads")
    screenshot(browser, "explore")

    browser.find_element(By.NAME, "text").send_keys("harbour")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait_for(browser, lambda d: "text=harbour" in d.current_url, "the filtered grid")
    check_page(browser, browser.current_url)
    tape = archive["tape_shot"]["shot_id"]
    found = [e.get_attribute("data-shot") for e in browser.find_elements(By.CSS_SELECTOR, "#grid .card")]
    assert found == [tape], "on-screen text finds the tape's shot"

    browser.get(f"{base_url}/dashboard/explore")
    Select(browser.find_element(By.NAME, "faces")).select_by_value("yes")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait_for(browser, lambda d: "faces=yes" in d.current_url, "the filtered grid")
    check_page(browser, browser.current_url)
    with_faces = sql(open_catalog(archive["settings"]), "SELECT count(DISTINCT shot_id) FROM faces").column(
        0
    )[0]
    assert text(browser, "#count").startswith(f"{with_faces.as_py()} of {shots} shots match")
    screenshot(browser, "explore-faces")


def test_shot_page_plays_source_and_remaster_together(browser, base_url: str, archive) -> None:
    from selenium.webdriver.common.by import By

    tape = archive["tape_shot"]
    open_page(browser, f"{base_url}/dashboard/explore?text=harbour")
    browser.find_element(By.CSS_SELECTOR, "#grid .card a").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "players"), "the shot page")
    check_page(browser, browser.current_url)
    assert browser.current_url.endswith(f"/dashboard/shots/{tape['shot_id']}")
    assert text(browser, "#caption") and "none" not in text(browser, "#caption")
    assert text(browser, "#tags") != "none"
    assert "harbour" in text(browser, "#screen-text").lower()
    assert "bridge" in text(browser, "#transcript").lower()
    browser.find_element(By.ID, "play").click()
    playing = """
        const [a, b] = [document.getElementById('source'), document.getElementById('remaster')];
        return a && b && !a.paused && !b.paused && a.readyState >= 3 && b.readyState >= 3
            && a.currentTime > 0.5 && Math.abs(a.currentTime - b.currentTime) < 0.25;
    """
    wait_for(browser, lambda d: d.execute_script(playing), "both videos play, in step")
    times = browser.execute_script(
        "return ['source', 'remaster'].map(id => document.getElementById(id).currentTime)"
    )
    screenshot(browser, "shot")
    assert abs(times[0] - times[1]) < 0.25, times
    assert "drift" in text(browser, "#sync-state")


def test_search_words_picture_more_like_this_and_for_you(browser, base_url: str, archive) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, f"{base_url}/dashboard/search")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("a person riding a bicycle")
    box.submit()
    wait_for(browser, lambda d: d.find_elements(By.ID, "results-title"), "text results")
    check_page(browser, browser.current_url)
    assert browser.find_elements(By.CSS_SELECTOR, "#hits .card")
    wait_for(browser, lambda d: loaded_images(d, "#hits img.thumb") > 0, "result thumbnails load")
    screenshot(browser, "search-text")
    first = browser.find_element(By.CSS_SELECTOR, "#hits .card").get_attribute("data-shot")
    browser.find_element(By.CSS_SELECTOR, "#hits .card a").click()
    wait_for(
        browser, lambda d: d.current_url.endswith(f"/dashboard/shots/{first}"), "a result opens its shot"
    )
    check_page(browser, browser.current_url)

    browser.find_element(By.ID, "more-like-this").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "results-title"), "more like this")
    check_page(browser, browser.current_url)
    assert "exposure Gini" in text(browser, "#exposure") and browser.find_elements(
        By.CSS_SELECTOR, "#hits .card"
    )

    keyframe = Path(
        sql(open_catalog(archive["settings"]), "SELECT keyframe_uri FROM shots LIMIT 1").column(0)[0].as_py()
    )
    browser.get(f"{base_url}/dashboard/search")
    browser.find_element(By.CSS_SELECTOR, "#image-form input[type=file]").send_keys(str(keyframe))
    browser.find_element(By.CSS_SELECTOR, "#image-form button").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "results-title"), "picture results")
    check_page(browser, browser.current_url)
    assert browser.find_elements(By.CSS_SELECTOR, "#hits .card")
    screenshot(browser, "search-picture")

    Select(browser.find_element(By.NAME, "user")).select_by_value("ana")
    browser.find_element(By.CSS_SELECTOR, "#user-form button").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "results-title"), "recommendations")
    check_page(browser, browser.current_url)
    assert text(browser, "#results-title").startswith("For ana")
    assert browser.find_elements(By.CSS_SELECTOR, "#hits .card")
    screenshot(browser, "search-user")


def test_audits(browser, base_url: str, archive) -> None:
    from selenium.webdriver.common.by import By

    if not archive["audited"]:
        pytest.skip("jobs.audit is not in this tree: nothing audited the run")
    run_id = archive["runs"][1]["run_id"]
    audit = sql(open_catalog(archive["settings"]), "SELECT audit, count(*) AS n FROM audits GROUP BY audit")
    counts = dict(zip(audit["audit"].to_pylist(), audit["n"].to_pylist(), strict=True))
    open_page(browser, f"{base_url}/dashboard/audits", charts=1)
    assert run_id in text(browser, "select[name=run]")
    for name, n in counts.items():
        assert f"of {n} checks" in text(browser, f'#audit-counts [data-audit="{name}"]')
    if "identity_drift" in counts:
        assert "identity drift" in text(browser, "#face-findings")
        wait_for(browser, lambda d: loaded_images(d, "img.evidence") > 0, "the evidence frame loads")
    if "provenance" in counts:
        assert "access.mp4" in text(browser, "#provenance")
    assert browser.find_elements(By.ID, "report")
    screenshot(browser, "audits")
