"""The dashboard's People page: who may see it (the token, even on loopback), what it shows of a
person (faces cut from the keyframes, appearances on each asset's timeline, never a perceived
attribute), and a curator naming, merging, splitting and opting out through its forms, with bad
input refused and nothing written. The last test drives it in headless Chromium over a catalog
made by a real run: the page renders, and a name typed into it is found by the search page."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from catalog_helpers import SAMPLE, FakeText, ShotSpec, asset_id, fake_image, write_catalog
from fastapi.testclient import TestClient
from PIL import Image

from catalog import schema
from catalog.iceberg import open_catalog, read, replace_all
from catalog.people import list_people, roster
from catalog.settings import Settings
from indexes.query import QueryEngine
from serve.app import create_app
from serve.dashboard.people import CROP_PX, REPRESENTATIVES, square_around

TOKEN = "people-page-token"
ASTRONAUT_FACE = (180.0, 40.0, 280.0, 160.0)
"""Where the astronaut's face is on skimage's 512x512 picture (x0, y0, x1, y1)."""


def identity(seed: int) -> list[float]:
    vector = np.random.default_rng(seed).normal(size=schema.IDENTITY_DIM)
    return (vector / np.linalg.norm(vector)).astype(np.float32).tolist()


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Settings, list[str]]:
    """SAMPLE's shots, the first with skimage's astronaut as its keyframe, and three people as the
    people step leaves them: P000001 in shots 0 and 6 (two assets), P000002 in 6, P000003 in 10."""
    from skimage import data

    home = tmp_path / "home"
    settings = Settings(home=str(home), catalog_url=None, api_token=TOKEN)
    picture = home / "keyframes" / "astronaut.jpg"
    picture.parent.mkdir(parents=True)
    Image.fromarray(data.astronaut()).save(picture, "JPEG", quality=92)
    specs = [ShotSpec(**{**SAMPLE[0].__dict__, "keyframe_uri": str(picture)}), *SAMPLE[1:]]
    ids = write_catalog(settings, specs)
    catalog = open_catalog(settings)
    tracks = [
        _track(ids[0], "reel-a", 0, ASTRONAUT_FACE, "P000001", 1),
        _track(ids[6], "reel-c", 6, (10.0, 8.0, 30.0, 30.0), "P000001", 1),
        _track(ids[6], "reel-c", 6, (34.0, 8.0, 54.0, 30.0), "P000002", 2, face=1),
        _track(ids[10], "reel-e", 10, (20.0, 10.0, 40.0, 34.0), "P000003", 3),
    ]
    people = [
        {"person_id": f"P00000{n}", "kind": "person", "centroid": identity(n), "track_count": 1,
         "created_run_id": "r1", "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "run_id": "r1"}
        for n in (1, 2, 3)
    ]  # fmt: skip
    replace_all(catalog, "people", pa.Table.from_pylist(people, schema=schema.PEOPLE), run_id="r1")
    replace_all(catalog, "face_tracks", pa.Table.from_pylist(tracks, schema=schema.FACE_TRACKS), run_id="r1")
    return settings, ids


def _track(
    shot: str, asset: str, at: int, box: tuple[float, ...], person: str, seed: int, face: int = 0
) -> dict:
    return {
        "track_id": f"{shot[:12]}-{face}",
        "shot_id": shot,
        "asset_id": asset_id(asset),
        "start_s": float(at),
        "end_s": float(at) + 2.0,
        "keyframe_indexes": [0],
        "face_indexes": [face],
        "box": list(box),
        "keyframe_index": 0,
        "score": 0.9 - 0.1 * face,
        "identity": identity(seed),
        "person_id": person,
        "run_id": "r1",
    }


def client_for(settings: Settings) -> TestClient:
    """The service as `archivist serve` runs it on 127.0.0.1: every other page open without a login."""
    engine = QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("car"))
    return TestClient(create_app(settings, engine=engine), base_url="http://127.0.0.1:8000")


@pytest.fixture
def client(archive) -> TestClient:
    return client_for(archive[0])


def logged_in(client: TestClient) -> TestClient:
    answer = client.post("/dashboard/people/login", data={"token": TOKEN}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def corrections(settings: Settings) -> list[dict]:
    return read(open_catalog(settings), "people_corrections").to_pylist()


def test_the_people_page_wants_the_token_on_loopback_too(client: TestClient, archive) -> None:
    track = f"{archive[1][0][:12]}-0"
    assert client.get("/dashboard/explore").status_code == 200  # the rest is open on loopback
    answer = client.get("/dashboard/people?show=named", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/people/login?next=%2Fdashboard%2Fpeople%3Fshow%3Dnamed"
    assert client.get(f"/dashboard/media/faces/{track}").status_code == 401
    refused = client.post("/dashboard/people/P000001/name", data={"curator": "Ada", "name": "Jane Doe"})
    assert "/dashboard/people/login" in str(refused.url) and not corrections(archive[0])

    wrong = client.post("/dashboard/people/login", data={"token": "guess"})
    assert wrong.status_code == 403 and "is not this service" in wrong.text
    answer = client.post(
        "/dashboard/people/login",
        data={"token": TOKEN, "next": "/dashboard/people?show=named"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/dashboard/people?show=named"
    assert client.get("/dashboard/people").status_code == 200
    assert client.get(f"/dashboard/media/faces/{track}").headers["content-type"] == "image/jpeg"


def test_without_a_token_the_page_is_off_and_says_how_to_turn_it_on(archive) -> None:
    settings = archive[0].model_copy(update={"api_token": None})
    client = client_for(settings)
    page = client.get("/dashboard/people")
    assert page.status_code == 403 and "ARCHIVIST_API_TOKEN" in page.text
    assert client.get("/dashboard/media/faces/anything").status_code == 401


def test_the_list_and_a_person_show_faces_appearances_and_assets(client: TestClient, archive) -> None:
    _, ids = archive
    logged_in(client)
    listing = client.get("/dashboard/people").text
    assert "<strong>3</strong> people" in listing and "0 named by curators" in listing
    cards = re.findall(r'data-person="(P\d+)"', listing)
    assert cards == ["P000001", "P000002", "P000003"]  # the most often seen first, then by id
    assert "2 appearances · 2 assets" in listing
    assert client.get("/dashboard/people?q=P000003").text.count("data-person=") == 1
    assert "Nobody matches" in client.get("/dashboard/people?show=named").text

    page = client.get("/dashboard/people/P000001").text
    assert "Person P000001" in page and "2 appearances in 2 shots of 2 assets" in page
    assert page.count('class="timeline"') == 2  # reel-a and reel-c
    assert f'href="/dashboard/shots/{ids[0]}"' in page and f'value="{ids[6][:12]}-0"' in page
    for perceived in ("perceived", "gender", "age band", "skin"):
        assert perceived not in page.lower()
    assert client.get("/dashboard/people/P999999").status_code == 404


def test_a_face_is_cut_from_its_keyframe(client: TestClient, archive) -> None:
    from skimage import data

    logged_in(client)
    answer = client.get(f"/dashboard/media/faces/{archive[1][0][:12]}-0")
    face = Image.open(io.BytesIO(answer.content))
    assert face.size == (CROP_PX, CROP_PX)
    left, top, right, bottom = square_around(ASTRONAUT_FACE, (512, 512))
    expected = Image.fromarray(data.astronaut()).crop((left, top, right, bottom)).resize(face.size)
    difference = np.abs(np.asarray(face, np.int16) - np.asarray(expected, np.int16)).mean()
    assert difference < 12, f"the crop is not the face's part of the keyframe ({difference:.1f} off)"
    whole = np.asarray(Image.fromarray(data.astronaut()).resize(face.size), np.int16)
    assert np.abs(np.asarray(face, np.int16) - whole).mean() > 3 * difference  # not the whole picture
    assert client.get("/dashboard/media/faces/not-a-track").status_code == 404


def test_a_curator_names_merges_splits_and_opts_out(client: TestClient, archive) -> None:
    settings, ids = archive
    logged_in(client)
    named = client.post(
        "/dashboard/people/P000001/name", data={"curator": "Ada", "name": " Jane   Doe ", "note": "the can"}
    )
    assert named.status_code == 200 and str(named.url).endswith("/dashboard/people/P000001")
    assert "<h1>Jane Doe</h1>" in named.text and "named by Ada" in named.text
    assert "named &#39;Jane Doe&#39;" in named.text and "the can" in named.text
    assert "/dashboard/search?q=Jane%20Doe" in named.text
    assert "1 named by curators" in client.get("/dashboard/people").text

    merged = client.post("/dashboard/people/P000001/merge", data={"curator": "Ada", "other": "P000003"})
    assert str(merged.url).endswith("/dashboard/people/P000001") and "3 appearances" in merged.text
    assert "P000003 merged into P000001" in merged.text
    gone = client.get("/dashboard/people/P000003")
    assert str(gone.url).endswith("/dashboard/people/P000001")  # the merged id leads to the person

    split = client.post(
        "/dashboard/people/P000001/split", data={"curator": "Ada", "track": [f"{ids[10][:12]}-0"]}
    )
    new = str(split.url).rsplit("/", 1)[1]
    assert new == "P000004" and "1 appearance in 1 shot of 1 asset" in split.text

    out = client.post("/dashboard/people/P000002/exclude", data={"curator": "Ada", "excluded": "yes"})
    assert "Opted out" in out.text and "/dashboard/media/faces/" not in out.text  # no face shown
    assert client.get(f"/dashboard/media/faces/{ids[6][:12]}-1").status_code == 404
    listing = client.get("/dashboard/people?show=excluded").text
    assert re.findall(r'data-person="(P\d+)"', listing) == ["P000002"] and "opted out" in listing
    back = client.post("/dashboard/people/P000002/exclude", data={"curator": "Ada", "excluded": "no"})
    assert "Opted out" not in back.text and client.get(f"/dashboard/media/faces/{ids[6][:12]}-1").is_success
    assert [p.excluded for p in list_people(open_catalog(settings))] == [False, False, False]


@pytest.mark.parametrize(
    ("path", "form", "says"),
    [
        ("P000001/name", {"curator": "Ada", "name": "   "}, "a name cannot be empty"),
        ("P000001/name", {"curator": "Ada", "name": "x" * 10_000}, "at most 200 characters"),
        ("P000001/name", {"curator": "", "name": "Jane Doe"}, "curator"),
        ("P000001/merge", {"curator": "Ada", "other": "P000001"}, "cannot merge P000001 with P000001"),
        ("P000001/merge", {"curator": "Ada", "other": "P424242"}, "not in the catalog"),
        ("P000001/split", {"curator": "Ada"}, "at least one track id"),
    ],
)
def test_bad_input_is_said_on_the_page_and_changes_nothing(
    client: TestClient, archive, path: str, form: dict, says: str
) -> None:
    logged_in(client)
    answer = client.post(f"/dashboard/people/{path}", data=form)
    assert answer.status_code in (404, 422) and says in answer.text
    if answer.status_code == 422:
        assert 'class="error-text"' in answer.text  # said beside the form, which is refilled
    assert not corrections(archive[0])


def test_a_name_for_nobody_and_a_post_from_elsewhere_are_refused(client: TestClient, archive) -> None:
    logged_in(client)
    nobody = client.post("/dashboard/people/P424242/name", data={"curator": "Ada", "name": "Jane Doe"})
    assert nobody.status_code == 404 and "not in the catalog" in nobody.text
    forged = client.post(
        "/dashboard/people/P000001/name",
        data={"curator": "Ada", "name": "Jane Doe"},
        headers={"origin": "https://elsewhere.example"},
    )
    assert forged.status_code == 403
    assert not corrections(archive[0])


def test_a_name_given_on_the_page_is_found_by_the_search_page_with_the_token(
    client: TestClient, archive
) -> None:
    settings, ids = archive
    stranger = client_for(settings)  # the same dashboard in a browser that has not logged in
    logged_in(client).post("/dashboard/people/P000001/name", data={"curator": "Ada", "name": "Jane Doe"})
    page = client.get("/dashboard/search", params={"q": "jane  DOE"}).text
    hits = re.findall(r'data-shot="([0-9a-f]+)".*?class="badge score">([\d.]+)<', page, re.S)
    assert [shot for shot, score in hits if score == "1.000"] == [ids[0], ids[6]]  # her shots, first
    elsewhere = stranger.get("/dashboard/search", params={"q": "Jane Doe"}).text
    found = re.findall(r'data-shot="([0-9a-f]+)".*?class="badge score">([\d.]+)<', elsewhere, re.S)
    assert not [shot for shot, score in found if score == "1.000"]  # a name is a face search


# -- in a browser, over a real run ------------------------------------------------------------------

NAME = "Jane Doe"
WAIT = 30


@pytest.fixture(scope="module")
def filmed(ray_session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A real run (every stage but speech) over the one man filmed twice: the carphone sample
    clean and distorted, two assets; its people step finds his face in each."""
    import shutil

    from jobs.run import run_job
    from jobs.samples import sample_file
    from jobs.spec import parse_spec_text

    root = tmp_path_factory.mktemp("people-page")
    footage = root / "footage"
    footage.mkdir()
    for name in ("carphone_pristine.mp4", "carphone_distorted.mp4"):
        shutil.copy(sample_file(name), footage / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHIVIST_HOME", str(root / "archive"))
        patch.delenv("ARCHIVIST_CATALOG_URL", raising=False)
        spec = f"name: people\nsource: {{uri: {footage}}}\nstages:\n  speech: {{enabled: false}}\n"
        run_job(parse_spec_text(spec, origin="people page"))
        settings = Settings(api_token=TOKEN)
    yield {"settings": settings, "people": list_people(open_catalog(settings))}


@pytest.fixture(scope="module")
def service(filmed) -> Iterator[str]:
    """`archivist serve`'s app on a free loopback port, with its real models and a token."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(filmed["settings"])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="people-page-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def chromium(service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from browser import CHROMEDRIVER, CHROMIUM, SCREENSHOTS, headless_chromium

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):  # the project's own set-up
        import subprocess

        script = Path(__file__).parents[2] / "infra" / "scripts" / "ensure-services.sh"
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"the set-up script failed:\n{done.stderr}"
    driver = headless_chromium(tmp_path_factory.mktemp("chromium-profile"), console_log=True)
    driver.set_page_load_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition, message=what)


def settled(driver: Any, base: str) -> None:
    """The page has loaded, says no error, logged none, and loaded nothing from elsewhere."""
    from selenium.webdriver.common.by import By

    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete", "the page loads")
    shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-error], [data-empty], .error-text")]
    assert not shown, f"{driver.current_url} shows {shown}"
    problems = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, f"{driver.current_url} logged errors: {problems}"
    elsewhere = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith(arguments[0]))",
        base,
    )
    assert not elsewhere, f"{driver.current_url} loaded from elsewhere: {elsewhere}"


def faces_shown(driver: Any, selector: str) -> list[tuple[int, int]]:
    """The natural sizes of the face crops the page shows that have loaded."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].filter(i => i.complete && i.naturalWidth > 0)"
        ".map(i => [i.naturalWidth, i.naturalHeight])",
        selector,
    )


def person_matches(driver: Any) -> list[str]:
    """The search page's hits found by a person's name (scored 1), in order."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#hits .card')]"
        ".filter(c => c.querySelector('.badge.score')?.textContent === '1.000').map(c => c.dataset.shot)"
    )


def screenshot(driver: Any, name: str) -> None:
    from browser import SCREENSHOTS

    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height, 800), 4000))
    assert driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.set_window_size(1400, 1000)


@pytest.mark.slow
def test_the_people_page_in_chromium_and_a_name_typed_there_found_by_search(
    chromium, service: str, filmed
) -> None:
    from selenium.webdriver.common.by import By

    people = filmed["people"]  # the man, in one person or two (the clips' faces may be told apart)
    assert people and all(p.name is None for p in people)
    person = max(people, key=lambda p: (p.appearances, -int(p.person_id[1:])))
    shots = set(shots_of(filmed["settings"], person.person_id))

    chromium.get(f"{service}/dashboard/search?q={NAME.replace(' ', '+')}")
    settled(chromium, service)
    assert chromium.find_elements(By.CSS_SELECTOR, "#hits .card") and not person_matches(chromium)

    chromium.get(f"{service}/dashboard/people")
    wait_for(
        chromium, lambda d: "/dashboard/people/login" in d.current_url, "the People page asks for the token"
    )
    chromium.find_element(By.NAME, "token").send_keys(TOKEN)
    chromium.find_element(By.CSS_SELECTOR, "#people-login button").click()
    wait_for(chromium, lambda d: d.find_elements(By.ID, "people"), "the list of people")
    settled(chromium, service)
    assert f"{len(people)} {'person' if len(people) == 1 else 'people'} found" in chromium.find_element(
        By.ID, "people-count"
    ).text.replace("\n", " ")
    cards = chromium.find_elements(By.CSS_SELECTOR, "#people [data-person]")
    assert cards[0].get_attribute("data-person") == person.person_id  # the most often seen first
    card = cards[0]
    assert "unnamed" in card.text and f"{person.appearances} appearance" in card.text
    every_face = [[CROP_PX, CROP_PX]] * len(people)
    wait_for(chromium, lambda d: faces_shown(d, "#people img.face") == every_face, "each face loads")
    screenshot(chromium, "people")

    card.find_element(By.CSS_SELECTOR, "a.person-name").click()
    wait_for(chromium, lambda d: d.find_elements(By.ID, "name-form"), "the person's page")
    settled(chromium, service)
    assert chromium.find_element(By.TAG_NAME, "h1").text == f"Person {person.person_id}"
    assert len(chromium.find_elements(By.CSS_SELECTOR, "#timelines .timeline")) == person.assets
    assert len(chromium.find_elements(By.CSS_SELECTOR, "#timelines .mark")) == person.appearances
    faces = min(person.shots, REPRESENTATIVES)
    wait_for(chromium, lambda d: len(faces_shown(d, "#faces img.face")) == faces, "a face per shot loads")
    for perceived in ("perceived", "gender", "skin"):
        assert perceived not in chromium.find_element(By.TAG_NAME, "main").text.lower()

    form = chromium.find_element(By.ID, "name-form")
    form.find_element(By.NAME, "name").send_keys(NAME)
    form.find_element(By.NAME, "curator").send_keys("Ada Archivist")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait_for(chromium, lambda d: d.find_element(By.TAG_NAME, "h1").text == NAME, "the page shows the name")
    settled(chromium, service)
    assert "named by Ada Archivist" in chromium.find_element(By.ID, "person-facts").text
    assert "named 'Jane Doe'" in chromium.find_element(By.ID, "history").text
    screenshot(chromium, "person")

    chromium.find_element(By.ID, "search-name").click()
    wait_for(chromium, lambda d: d.find_elements(By.ID, "results-title"), "the search for the name")
    settled(chromium, service)
    assert set(person_matches(chromium)) == shots  # every shot he is in, found by his name

    chromium.get(f"{service}/dashboard/search")
    box = chromium.find_element(By.NAME, "q")
    box.send_keys("jane  DOE")
    box.submit()
    wait_for(chromium, lambda d: d.find_elements(By.ID, "results-title"), "the search typed")
    settled(chromium, service)
    assert set(person_matches(chromium)) == shots
    screenshot(chromium, "people-search")


def shots_of(settings: Settings, person_id: str) -> list[str]:
    return roster(open_catalog(settings)).shots_of(person_id)


def test_behind_a_proxy_the_login_and_the_faces_follow_its_path(archive) -> None:
    settings, ids = archive
    engine = QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("car"))
    client = TestClient(create_app(settings, engine=engine), root_path="/archive")
    answer = client.get("/dashboard/people", follow_redirects=False)
    assert (
        answer.headers["location"] == "/archive/dashboard/people/login?next=%2Farchive%2Fdashboard%2Fpeople"
    )
    login = client.post(
        "/dashboard/people/login",
        data={"token": TOKEN, "next": "/archive/dashboard/people"},
        follow_redirects=False,
    )
    assert login.headers["location"] == "/archive/dashboard/people"
    bearer = {"authorization": f"Bearer {TOKEN}"}  # (the cookie's path is the proxy's: /archive/…)
    page = client.get("/dashboard/people/P000001", headers=bearer).text
    assert f'src="/archive/dashboard/media/faces/{ids[0][:12]}-0"' in page
    assert 'action="/archive/dashboard/people/P000001/name"' in page
