"""The query engine: text, image and shot queries, filters, folding of copies, reloads, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from catalog_helpers import SAMPLE, FakeText, ShotSpec, asset_id, fake_image, jpeg, write_catalog
from typer.testing import CliRunner

from catalog.settings import Settings
from indexes import query
from indexes.filters import FilterError, Filters
from indexes.query import QueryEngine, QueryError
from indexes.query_image import ImageTooLargeError, QueryImageError, decode_query_image
from indexes.search import UnknownShotError
from indexes.store import IndexMissingError
from jobs.cli import app

SHOTS = SAMPLE


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[str]]:
    settings = Settings(home=str(tmp_path_factory.mktemp("query") / "home"), catalog_url=None)
    return settings, write_catalog(settings, SHOTS)


@pytest.fixture(scope="module")
def engine(archive: tuple[Settings, list[str]]) -> QueryEngine:
    return QueryEngine(archive[0], encode_text=FakeText(), embed_image=fake_image("car"))


def where(**params: object) -> Filters:
    pairs = []
    for name, value in params.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append((name, str(one).lower() if isinstance(one, bool) else str(one)))
    return Filters.from_pairs(pairs)


def test_text_finds_the_topic_in_both_spaces_and_folds_copies(engine: QueryEngine, archive) -> None:
    _, ids = archive
    result = engine.by_text("a dog", top=3)
    assert result.meta["score"] == "rrf" and set(result.meta["spaces"]) == {"text", "concept"}
    assert len(result.hits) == 3
    assert all(hit.caption == "A shot of a dog." for hit in result.hits)
    found = [hit.shot_id for hit in result.hits] + [d.shot_id for hit in result.hits for d in hit.duplicates]
    assert len(found) == len(set(found)), "a copy is shown twice"
    copies = next(hit for hit in result.hits if hit.dup_group == min(ids[0], ids[3], ids[4]))
    assert {copies.shot_id, *(d.shot_id for d in copies.duplicates)} == {ids[0], ids[3], ids[4]}
    hit = result.hits[0]
    assert hit.thumbnail_url == f"/media/keyframes/{hit.shot_id}" and hit.uri.startswith("/footage/")
    assert hit.end_s > hit.start_s


def test_without_folding_copies_take_their_own_slots(engine: QueryEngine, archive) -> None:
    _, ids = archive
    shown = [hit.shot_id for hit in engine.by_text("dog", top=5, fold=False).hits]
    assert {ids[0], ids[3], ids[4]} <= set(shown)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"tag": "Golden Retriever"}, {0, 1, 3}),
        ({"min_duration": 5}, {1, 7}),
        ({"object": ["car", "person"]}, {6}),
        ({"object": "car", "monochrome": True}, {5}),
        ({"has_faces": True}, {0, 6}),
        ({"safe": True, "tag": "golden retriever"}, {0, 1, 3}),
        ({"safe": False}, {2, 7, 9, 10, 11, 12}),
        ({"asset": asset_id("reel-d")}, {8, 9}),
        ({"after": "2000-01-01", "max_duration": 2}, set(range(13)) - {1, 7}),
        ({"before": "2000-01-01"}, set()),
    ],
)
def test_filters(engine: QueryEngine, archive, filters: dict, expected: set[int]) -> None:
    _, ids = archive
    result = engine.by_text("dog", top=20, filters=where(**filters), fold=False)
    assert {ids.index(hit.shot_id) for hit in result.hits} == expected
    assert result.meta["filters"]


def test_a_narrow_filter_still_finds_shots_far_down_the_ranking(
    engine: QueryEngine, archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ids = archive
    exact = engine.by_text("dog", top=2, filters=where(object="person"))
    assert {ids.index(h.shot_id) for h in exact.hits} == {6, 10}
    assert exact.meta["searched"] == "every shot the filters allow"
    monkeypatch.setattr(query, "EXACT_FILTER_ROWS", 0)  # force the widening search
    monkeypatch.setattr(query, "MIN_FETCH", 1)
    widened = engine.by_text("dog", top=2, filters=where(object="person"))
    assert {ids.index(h.shot_id) for h in widened.hits} == {6, 10}
    assert widened.meta["searched"] == "13 nearest per space"  # widened from 8 to every shot


def test_a_filter_that_can_match_nothing_says_why(engine: QueryEngine) -> None:
    result = engine.by_text("dog", filters=where(tag="unicorn"))
    assert result.hits == [] and "no shot carries tag 'unicorn'" in result.meta["notes"]


def test_by_shot_leaves_out_the_shot_and_its_copies(engine: QueryEngine, archive) -> None:
    _, ids = archive
    result = engine.by_shot(ids[0], top=5)
    shown = {h.shot_id for h in result.hits} | {d.shot_id for h in result.hits for d in h.duplicates}
    assert not shown & {ids[0], ids[3], ids[4]}
    assert {ids.index(h.shot_id) for h in result.hits[:2]} == {1, 2}
    assert result.meta["score"] == "cosine"


def test_by_image(engine: QueryEngine, archive) -> None:
    _, ids = archive
    image = decode_query_image(jpeg((200, 10, 10)))
    assert image.shape == (48, 64, 3)
    hits = engine.by_image(image, top=3).hits
    assert {ids.index(h.shot_id) for h in hits} == {5, 6, 7}


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda e: e.by_text("   "), QueryError, "empty"),
        (lambda e: e.by_text("dog " * 200), QueryError, "at most 500"),
        (lambda e: e.by_text("dog", top=0), QueryError, "top must be between 1 and 100"),
        (lambda e: e.by_shot("0" * 32), UnknownShotError, "not in the catalog"),
        (lambda e: e.by_shot("../../etc/passwd" * 100), UnknownShotError, "…"),
    ],
)
def test_bad_queries_are_named(engine: QueryEngine, call, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call(engine)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("min_duration", "abc")], "min_duration: Input should be a valid number"),
        ([("colour", "red")], "unknown filter 'colour'; the filters are: asset, min_duration"),
        ([("has_faces", "maybe")], "has_faces: Input should be a valid boolean"),
        ([("after", "yesterday")], "after: Input should be a valid date"),
        ([("asset", "../../etc")], "asset: String should match pattern"),
        ([("safe", "true"), ("safe", "false")], "given twice"),
        ([("tag", "x" * 101)], "a label is 1 to 100 characters"),
    ],
)
def test_malformed_filters(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(FilterError, match=message):
        Filters.from_pairs(pairs)


def test_images_that_are_not_or_are_too_large() -> None:
    import io

    from PIL import Image

    with pytest.raises(QueryImageError, match="not an image"):
        decode_query_image(b"%PDF-1.4 not a picture")
    bomb = io.BytesIO()
    Image.new("1", (8000, 6000)).save(bomb, "PNG")  # 48 megapixels in a few kB
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(ImageTooLargeError, match="8000x6000"):
        decode_query_image(bomb.getvalue())


def test_a_missing_index_names_the_snapshot_and_the_command(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None)
    empty = QueryEngine(settings, encode_text=FakeText())
    with pytest.raises(IndexMissingError, match=r"no embeddings yet.*archivist index build --space text"):
        empty.by_text("dog")
    write_catalog(settings, SHOTS[:3], spaces=("visual",))
    engine = QueryEngine(settings, encode_text=FakeText())
    snapshot = engine.state.tables["embeddings"][0]
    with pytest.raises(
        IndexMissingError, match=f"snapshot {snapshot} with: archivist index build --space text"
    ):
        engine.by_text("dog")
    assert engine.by_shot(engine.state.view.shot_ids[0], top=1).hits


def test_a_rebuild_is_picked_up_and_queries_on_the_old_state_keep_working(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None)
    write_catalog(settings, SHOTS[:3])
    engine = QueryEngine(settings, encode_text=FakeText())
    old = engine.state
    assert not engine.refresh()
    ids = write_catalog(settings, [*SHOTS[:3], ShotSpec("reel-z", "dog", spread=0.0)])
    assert engine.refresh()
    assert engine.state is not old and engine.state.view.size == 4
    assert ids[3] in {h.shot_id for h in engine.by_text("dog", top=4).hits}
    found, _ = old.candidates({"text": engine.state.vectors("text", [0])[0]}, want=3, filters=Filters())
    assert len(old.hits(found)) == 3  # the old state still answers from the old index


def test_cli_search_by_text_shot_and_filter(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = write_catalog(settings, SHOTS)
    monkeypatch.setattr(query, "default_text_encoder", FakeText)
    runner = CliRunner()
    done = runner.invoke(app, ["search", "--text", "car", "--filter", "has_faces=true", "--json"])
    assert done.exit_code == 0, done.output
    hits = json.loads(done.stdout)["hits"]
    assert [h["shot_id"] for h in hits] == [ids[6], ids[0]]
    assert {"shot_id", "asset_id", "uri", "start_s", "end_s", "score", "caption", "thumbnail_url"} <= set(
        hits[0]
    )
    done = runner.invoke(app, ["search", "--like", ids[5], "--top", "2", "--json"])
    assert done.exit_code == 0 and {h["shot_id"] for h in json.loads(done.stdout)["hits"]} == {ids[6], ids[7]}
    done = runner.invoke(app, ["search", "--text", "car", "--filter", "min_duration=abc"])
    assert done.exit_code == 2 and "min_duration: Input should be a valid number" in done.output
    done = runner.invoke(app, ["search", "--like", "nope"])
    assert done.exit_code == 2 and "not in the catalog" in done.output


def test_cli_search_reports_a_missing_index(settings: Settings) -> None:
    done = CliRunner().invoke(app, ["search", "--text", "dog"])
    assert done.exit_code == 2 and "archivist index build --space text" in done.output
