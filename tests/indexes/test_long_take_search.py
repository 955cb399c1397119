"""A long take is found by any of its keyframes, takes one slot in the results, and its hit
shows the keyframe that matched."""

from __future__ import annotations

import numpy as np
import pytest
from catalog_helpers import FakeText, ShotSpec, asset_id, fake_image, write_catalog
from fastapi.testclient import TestClient

from catalog.settings import Settings
from indexes.filters import Filters
from indexes.query import QueryEngine
from serve.app import create_app
from serve.dashboard.data import DashboardData
from serve.dashboard.explore import hit_card, shot_page
from serve.dashboard.urls import keyframe_url

SPECS = [
    ShotSpec("rushes", "beach", duration=80, later=["dog", "city"]),  # 0: a take that pans on
    ShotSpec("reel-a", "dog"),  # 1
    ShotSpec("reel-a", "dog"),  # 2
    ShotSpec("reel-b", "beach"),  # 3
    ShotSpec("reel-b", "forest"),  # 4
    ShotSpec("reel-b", "car"),  # 5
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[str], QueryEngine]:
    settings = Settings(home=str(tmp_path_factory.mktemp("long-take") / "home"), catalog_url=None)
    ids = write_catalog(settings, SPECS)
    return settings, ids, QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("dog"))


def test_a_later_keyframe_finds_the_take_once_and_names_itself(archive) -> None:
    _, ids, engine = archive
    hits = engine.by_text("a dog", top=6).hits
    shots = [hit.shot_id for hit in hits]
    assert ids[0] in shots[:3] and shots.count(ids[0]) == 1, "the take is found by its second keyframe, once"
    take = hits[shots.index(ids[0])]
    assert take.keyframe_index == 1 and take.thumbnail_url == f"/media/keyframes/{ids[0]}?keyframe=1"
    assert take.end_s - take.start_s == 80
    assert {hit.keyframe_index for hit in hits if hit.shot_id != ids[0]} == {0}


def test_the_take_is_found_by_its_own_keyframe_too(archive) -> None:
    _, ids, engine = archive
    take = next(hit for hit in engine.by_text("a beach", top=3).hits if hit.shot_id == ids[0])
    assert take.keyframe_index == 0 and take.thumbnail_url == f"/media/keyframes/{ids[0]}"


def test_an_image_query_reaches_a_later_keyframe(archive) -> None:
    _, ids, engine = archive
    hits = engine.by_image(np.zeros((8, 8, 3), np.uint8), top=6).hits  # the fake embedder sees a dog
    take = next(hit for hit in hits if hit.shot_id == ids[0])
    assert take.keyframe_index == 1


def test_a_narrow_filter_scores_every_keyframe_of_the_shots_it_leaves(archive) -> None:
    _, ids, engine = archive
    only = Filters.from_pairs([("asset", asset_id("rushes"))])
    result = engine.by_text("a city", top=3, filters=only)
    assert [hit.shot_id for hit in result.hits] == [ids[0]] and result.hits[0].keyframe_index == 2
    assert result.meta["searched"] == "every shot the filters allow"


def test_shots_like_a_take_are_like_its_own_keyframe(archive) -> None:
    _, ids, engine = archive
    hits = engine.by_shot(ids[0], top=2).hits
    assert hits[0].shot_id == ids[3], "the take's own keyframe is a beach: the other beach comes first"


def test_the_service_serves_the_keyframe_a_hit_names(archive) -> None:
    settings, ids, engine = archive
    client = TestClient(create_app(settings, engine=engine))
    own = client.get(f"/media/keyframes/{ids[0]}")
    later = client.get(f"/media/keyframes/{ids[0]}?keyframe=1")
    assert own.status_code == 200 and later.status_code == 200 and own.content != later.content
    missing = client.get(f"/media/keyframes/{ids[0]}?keyframe=7")
    assert missing.status_code == 404 and "keyframe 7" in missing.text


def test_the_dashboard_shows_every_keyframe_of_a_take_and_the_one_a_search_matched(archive) -> None:
    settings, ids, engine = archive
    page = shot_page(DashboardData(settings, engine), ids[0])
    assert page["further_keyframes"] == [keyframe_url(ids[0], 1), keyframe_url(ids[0], 2)]
    hit = next(h for h in engine.by_text("a dog", top=6).hits if h.shot_id == ids[0])
    assert hit_card(engine, hit)["thumbnail_url"] == keyframe_url(ids[0], 1)
