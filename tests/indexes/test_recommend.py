"""Recommendations: more like this, for you from events, MMR and fair exposure with their figures."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from catalog_helpers import FakeText, ShotSpec, write_catalog
from typer.testing import CliRunner

from catalog.settings import Settings
from indexes.query import QueryEngine, QueryError
from indexes.recommend import (
    exposure_report,
    for_you,
    gini,
    more_like_this,
    profile,
    record_events,
    rerank,
    user_events,
)
from jobs.cli import app

# One work dominates the neighbourhood: 24 tight shots of one asset, then six smaller works.
DOMINATED = [ShotSpec("big", "dog", spread=0.03) for _ in range(24)] + [
    ShotSpec(f"small-{i}", "dog", spread=0.1) for i in range(6) for _ in range(3)
]
# A clump of near-identical shots nearest the query, and shots that are partly like it, each differently.
CLUMPED = [ShotSpec("clump", "dog", spread=0.02) for _ in range(7)] + [
    ShotSpec(f"mixed-{other}", f"dog+{other}", spread=0.05)
    for other in ("car", "beach", "city", "forest")
    for _ in range(2)
]
VARIED = [
    ShotSpec("reel-a", "dog"),  # 0
    ShotSpec("reel-a", "dog"),  # 1
    ShotSpec("reel-b", "dog", copy_of=1),  # 2: a copy of 1
    ShotSpec("reel-b", "dog"),  # 3
    ShotSpec("reel-c", "car"),  # 4
    ShotSpec("reel-c", "car"),  # 5
    ShotSpec("reel-d", "car"),  # 6
    ShotSpec("reel-d", "beach"),  # 7
    ShotSpec("reel-e", "city"),  # 8
    ShotSpec("reel-e", "forest"),  # 9
]


@pytest.fixture(scope="module")
def dominated(tmp_path_factory: pytest.TempPathFactory) -> tuple[QueryEngine, list[str]]:
    settings = Settings(home=str(tmp_path_factory.mktemp("dominated") / "home"), catalog_url=None)
    ids = write_catalog(settings, DOMINATED, spaces=("visual", "text"))
    return QueryEngine(settings, encode_text=FakeText()), ids


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> tuple[QueryEngine, list[str]]:
    settings = Settings(home=str(tmp_path_factory.mktemp("varied") / "home"), catalog_url=None)
    ids = write_catalog(settings, VARIED)
    return QueryEngine(settings, encode_text=FakeText()), ids


def assets_of(engine: QueryEngine, result) -> list[str]:
    return [hit.asset_id for hit in result.hits]


def test_fairness_spreads_the_slots_over_more_works_and_lowers_the_gini(dominated) -> None:
    engine, ids = dominated
    plain = more_like_this(engine, ids[0], top=10, diversity=1.0, fairness=0.0)
    assert len(set(assets_of(engine, plain))) == 1, "the raw neighbours should all be the big work"
    fair = more_like_this(engine, ids[0], top=10)
    fairest = more_like_this(engine, ids[0], top=10, fairness=1.0)
    assert max(assets_of(engine, fair).count(a) for a in assets_of(engine, fair)) <= 5
    assert len(set(assets_of(engine, fairest))) == 7  # one slot per work while works remain
    figures = [r.meta["exposure"] for r in (plain, fair, fairest)]
    assert figures[0]["assets"] < figures[1]["assets"] <= figures[2]["assets"]
    assert figures[0]["gini"] > figures[1]["gini"] > figures[2]["gini"]
    assert figures[0]["coverage"] == pytest.approx(1 / 7, abs=1e-3)
    assert figures[2]["coverage"] == 1.0 and figures[2]["catalog_coverage"] == 1.0
    assert fair.meta["exposure_before_rerank"] == figures[0]
    assert fair.meta["max_per_asset"] == 5 and fair.meta["pool"] == 41  # all but the shot itself


def test_mmr_makes_the_list_less_redundant(tmp_path) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None)
    ids = write_catalog(settings, CLUMPED, spaces=("visual",))
    engine = QueryEngine(settings)
    state = engine.state

    def redundancy(result) -> float:
        rows = [state.view.row_of[h.shot_id] for h in result.hits]
        vectors = state.vectors("visual", rows)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        sims = vectors @ vectors.T
        return float(sims[np.triu_indices(len(rows), 1)].mean())

    relevant = more_like_this(engine, ids[0], top=8, diversity=1.0, fairness=0.0)
    varied = more_like_this(engine, ids[0], top=8, diversity=0.3, fairness=0.0)
    assert redundancy(varied) < redundancy(relevant) - 0.1
    assert varied.hits[0].shot_id == relevant.hits[0].shot_id  # the best match still leads
    assert sum(h.asset_id == relevant.hits[0].asset_id for h in varied.hits) < 6


def test_rerank_without_diversity_or_fairness_keeps_the_ranking() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(12, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = np.linspace(1, 0, 12)
    assets = np.array([0] * 6 + [1] * 6)
    assert rerank(relevance, assets, vectors, top=5, diversity=1.0, fairness=0.0) == [0, 1, 2, 3, 4]
    capped = rerank(relevance, assets, vectors, top=4, diversity=1.0, fairness=1.0)
    assert [int(assets[i]) for i in capped] == [0, 1, 0, 1]  # one slot per work per round


def test_gini_and_exposure_figures() -> None:
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 5]) == pytest.approx(0.75)
    assert gini([]) == 0.0
    report = exposure_report([7, 7, 8], pool=[7, 8, 9, 9], catalog_assets=6)
    assert report["assets"] == 2 and report["coverage"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["catalog_coverage"] == pytest.approx(1 / 3, abs=1e-4)


def test_profile_weighs_save_over_like_over_view_and_fades_with_age() -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    events = [
        {"shot_id": "viewed", "kind": "view", "at": now},
        {"shot_id": "liked", "kind": "like", "at": now},
        {"shot_id": "saved", "kind": "save", "at": now},
        {"shot_id": "saved-long-ago", "kind": "save", "at": now - dt.timedelta(days=60)},
    ]
    weights = profile(events, now)
    assert weights["viewed"] < weights["liked"] < weights["saved"]
    assert weights["saved-long-ago"] == pytest.approx(weights["saved"] / 4)


def test_for_you_follows_the_events_and_leaves_out_what_was_seen(varied) -> None:
    engine, ids = varied
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    events = [
        {"user_id": "ana", "shot_id": ids[1], "kind": "save", "at": at},
        {"user_id": "ana", "shot_id": ids[4], "kind": "view", "at": at},
    ]
    assert record_events(engine.catalog, events) == 2
    record_events(engine.catalog, events[:1])  # a retried post
    assert len(user_events(engine.catalog, "ana")) == 2
    result = for_you(engine, "ana", top=4, diversity=1.0, fairness=0.0)
    shown = [ids.index(h.shot_id) for h in result.hits]
    assert not {1, 2, 4} & set(shown), "a seen shot (or a copy of one) came back"
    assert set(shown[:2]) == {0, 3}, "the saved dog should outweigh the viewed car"
    assert result.meta["basis"] == {"user_id": "ana", "events": 2, "seeds": 2}


def test_unknown_users_and_bad_settings_are_named(varied) -> None:
    engine, ids = varied
    from indexes.recommend import UnknownUserError

    with pytest.raises(UnknownUserError, match="'nobody' has no views, likes or saves"):
        for_you(engine, "nobody")
    with pytest.raises(QueryError, match="diversity must be between 0 and 1"):
        more_like_this(engine, ids[0], diversity=2.0)


def test_cli_recommend(settings: Settings) -> None:
    ids = write_catalog(settings, VARIED, spaces=("visual",))
    done = CliRunner().invoke(app, ["recommend", "--like", ids[4], "--top", "3", "--json"])
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert ids.index(answer["hits"][0]["shot_id"]) in (5, 6)
    assert {"coverage", "gini", "catalog_coverage"} <= set(answer["meta"]["exposure"])
    done = CliRunner().invoke(app, ["recommend", "--user", "nobody"])
    assert done.exit_code == 2 and "has no views" in done.output
