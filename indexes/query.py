"""The query engine: text, image and shot queries over the current indexes, answered with catalog rows.

- **One state, swapped whole.** The catalog view (`indexes.view`) and the
  loaded index of every space form an immutable `EngineState`; `refresh`
  builds a new one when a `CURRENT.json` pointer or a table snapshot moves and
  replaces the reference in one assignment. A query takes the state once and
  uses only it, so queries keep answering from the old indexes while a rebuild
  runs and never mix an old index with a new view.
- **Text meets two spaces.** A typed query is embedded once (MiniLM) and
  searched in `text` (shot descriptions) and `concept` (images placed in the
  text space); the two rankings are fused by reciprocal rank (1 / (60 + rank)),
  which needs no calibration between two cosine scales and did best in
  `tests/benchmarks/bench_text_search.py`.
- **Queries reach through the concept hierarchy.** A query naming a concept
  above several labels ("a fish", "animals") is moved towards the mean of those
  labels' texts ("goldfish, a fish, an animal", "tench, …"; `actors.concepts`),
  so it meets shots tagged with any kind of it, not only those whose words say it.
- **Filters never starve results.** With filters, a search over-fetches and
  widens (×4 at a time, up to `MAX_CANDIDATES`) until enough hits pass; when the
  filters leave few shots (`EXACT_FILTER_ROWS`), those shots are scored exactly
  instead, so a narrow filter still finds its best matches however far down
  the unfiltered ranking they sit.
- **Copies fold.** Hits of one near-duplicate group (`dup_groups`) fold under
  the best of them as `duplicates`, so a shot broadcast five times takes one slot.
- **Keyframes fold.** A long take has a vector per keyframe; the shot is found by
  whichever matches best, takes one slot, and its hit names that keyframe.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from pydantic import Field
from pyiceberg.catalog.sql import SqlCatalog

from actors.concepts import ConceptHierarchy, expansion_texts, load_hierarchy
from catalog.iceberg import open_catalog
from catalog.people import normal_name
from catalog.query import QueryError as CatalogQueryError
from catalog.schema import CONCEPT_SPACE, EMBEDDING_SPACES, TEXT_SPACE, VISUAL_SPACE
from catalog.settings import Settings
from catalog.versions import latest_version
from indexes.build import read_index_files
from indexes.defaults import DEFAULT_TOP, MAX_TOP
from indexes.filters import Filters, shorten

# A query image is read by `indexes.query_image`; its reader is also named here, where the API, the
# dashboard and the CLI import it from with the engine.
from indexes.query_image import decode_query_image as decode_query_image
from indexes.search import UnknownShotError
from indexes.store import IndexMissingError, IndexVersion, current
from indexes.view import CatalogView, table_snapshots, view_key

SPACES = tuple(EMBEDDING_SPACES)
"""The spaces the engine loads an index of: every one there is."""
TEXT_SPACES = (TEXT_SPACE, CONCEPT_SPACE)
"""Where typed words are searched: shot descriptions, and images placed in the text space."""
IMAGE_SPACES = (VISUAL_SPACE,)
"""Where a query image is searched."""
SHOT_SPACES = (VISUAL_SPACE,)
"""Where shots like a shot are searched, unless the caller names others."""
MAX_QUERY_CHARS = 500
"""A query longer than a paragraph is a mistake (or an attack), not a search; MiniLM reads 256 tokens."""
RRF_K = 60
EXPANSION_WEIGHT = 1.0
"""How far a query naming a concept moves towards its labels' mean (1: as far as its own words)."""
OVERFETCH = 4
MIN_FETCH = 32
EXACT_FILTER_ROWS = 4096
MAX_CANDIDATES = 16_384

TextEncoder = Callable[[list[str]], np.ndarray]
ImageEmbedder = Callable[[np.ndarray], np.ndarray]


class QueryError(CatalogQueryError):
    """A query the caller can fix: empty, too long, asking for too many hits."""


@dataclass(frozen=True)
class Duplicate:
    """A near-duplicate of a hit that matched too, folded under it."""

    shot_id: str
    asset_id: str | None
    score: float


# The one definition of a search hit: the API answers it (`serve.schemas` names this class, so its
# docstring and field descriptions are the OpenAPI document's), the CLI prints it, the dashboard shows it.
@dataclass(frozen=True)
class Hit:
    """A shot found for a query, with what a client needs to show it."""

    shot_id: str
    asset_id: str | None
    uri: Annotated[str | None, Field(description="the asset's source file, as the catalog records it")]
    start_s: float
    end_s: float
    caption: str | None
    thumbnail_url: Annotated[str | None, Field(description="the shot's keyframe, relative to this service")]
    score: Annotated[
        float, Field(description="cosine similarity, or the reciprocal-rank fusion score (see meta.score)")
    ]
    keyframe_index: Annotated[
        int,
        Field(
            description="the keyframe that matched: 0 is the shot's own, a long take has more "
            "(the `keyframes` table); the thumbnail is of it"
        ),
    ]
    dup_group: str
    duplicates: Annotated[
        tuple[Duplicate, ...], Field(description="near-duplicates of this shot that also matched, folded")
    ]

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["duplicates"] = list(row["duplicates"])
        return row


@dataclass(frozen=True)
class Candidate:
    """A shot found for a query, by its row in the state's view, with the copies folded under it."""

    row: int
    score: float
    keyframe: int = 0
    duplicates: tuple[tuple[int, float], ...] = ()


@dataclass
class Result:
    hits: list[Hit]
    meta: dict[str, Any]


@dataclass(frozen=True, eq=False)
class LoadedSpace:
    version: IndexVersion
    index: Any
    ids: pa.Table
    """Each index position's `shot_id` and `keyframe_index` (`indexes.build.read_index_files`)."""
    rows: np.ndarray
    """View row of each index position; -1 where the view lacks the shot (the index is newer)."""
    keyframes: np.ndarray
    """Keyframe of each index position: a long take's shot has several positions."""
    positions: np.ndarray
    """Index position of each view row's own keyframe (0; else its first); -1 where the index
    lacks the shot (the index is older). What a shot is like is its own keyframe's vector."""

    @classmethod
    def attach(cls, version: IndexVersion, index: Any, ids: pa.Table, view: CatalogView) -> LoadedSpace:
        shot_ids = ids["shot_id"].to_pylist()
        rows = np.fromiter((view.row_of.get(shot, -1) for shot in shot_ids), np.int64, len(shot_ids))
        keyframes = ids["keyframe_index"].to_numpy(zero_copy_only=False).astype(np.int32)
        positions = np.full(view.size, -1, np.int64)
        present = np.flatnonzero(rows >= 0)
        # Later assignments win: the shot's own keyframe is written last, after its others.
        order = present[np.lexsort((-keyframes[present], rows[present]))]
        positions[rows[order]] = order
        return cls(version, index, ids, rows, keyframes, positions)


@dataclass(frozen=True)
class EngineState:
    """The catalog view and the indexes loaded with it: everything one query reads."""

    view: CatalogView
    spaces: Mapping[str, LoadedSpace]
    tables: Mapping[str, tuple[int | None, int]] = field(default_factory=dict)
    """(snapshot id, rows) per catalog table when this state was made."""
    catalog_version: int | None = None
    """The catalog version the tables were read at (`catalog.versions`): every answer from this
    state is of that one version."""

    def require(self, spaces: Sequence[str]) -> list[str]:
        """The loaded spaces among `spaces`; IndexMissingError, naming the snapshot to index and
        the command, when none is."""
        loaded = [space for space in spaces if space in self.spaces]
        if loaded:
            return loaded
        snapshot = self.tables.get("embeddings", (None, 0))[0]
        space = spaces[0]
        if snapshot is None:
            raise IndexMissingError(
                f"the catalog has no embeddings yet, so there is no {space} index: run a job "
                f"(archivist run FOLDER), then: archivist index build --space {space}"
            )
        raise IndexMissingError(
            f"no {' or '.join(spaces)} index is built: build one from embeddings snapshot {snapshot} "
            f"with: archivist index build --space {space}"
        )

    def row(self, shot_id: str) -> int:
        row = self.view.row_of.get(shot_id)
        if row is None:
            raise UnknownShotError(
                f"shot {shorten(shot_id, 64)} is not in the catalog; list shot ids with: "
                'archivist sql "SELECT shot_id FROM shots"'
            )
        return row

    def vectors(self, space: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The space's vectors of these view rows; zeros for rows the index lacks."""
        loaded = self.spaces[space]
        rows = np.asarray(rows, np.int64)
        out = np.zeros((len(rows), loaded.version.dim), np.float32)
        positions = loaded.positions[rows] if len(rows) else rows
        present = positions >= 0
        if present.any():
            out[present] = loaded.index.reconstruct_batch(positions[present])
        return out

    def shot_vector(self, space: str, shot_id: str) -> np.ndarray:
        row = self.row(shot_id)
        loaded = self.spaces[space]
        if loaded.positions[row] < 0:
            raise UnknownShotError(
                f"shot {shot_id} has no vector in the {space} index (embeddings snapshot "
                f"{loaded.version.snapshot_id}); rebuild it with: archivist index build --space {space}"
            )
        return self.vectors(space, [row])[0]

    def candidates(
        self,
        queries: Mapping[str, np.ndarray],
        *,
        want: int,
        filters: Filters,
        weights: Mapping[str, np.ndarray] | None = None,
        exclude_groups: Iterable[int] = (),
        fold: bool = True,
    ) -> tuple[list[Candidate], dict[str, Any]]:
        """The best `want` shots (or duplicate groups, folded) for query vectors per space, best first.

        `queries[space]` is one vector or a matrix of several, combined by `weights[space]`
        (the score is the weighted mean cosine). Spaces are fused by reciprocal rank."""
        spaces = self.require(list(queries))
        view = self.view
        allowed = view.mask(filters)
        # Scoring the allowed shots one by one beats searching only when filters leave few.
        exact = allowed is not None and int(allowed.sum()) <= EXACT_FILTER_ROWS
        excluded = np.asarray(sorted(set(exclude_groups)), np.int64)
        if len(excluded):
            allowed = np.ones(view.size, bool) if allowed is None else allowed
            allowed &= ~np.isin(view.group, excluded)
        largest = max(self.spaces[space].index.ntotal for space in spaces)
        ceiling = min(largest, MAX_CANDIDATES)
        k = min(ceiling, max(want * OVERFETCH, MIN_FETCH))
        while True:
            rankings = [
                _ranking(self.spaces[s], _matrix(queries[s]), (weights or {}).get(s), k, allowed, exact)
                for s in spaces
            ]
            ranked = fuse(rankings)
            found = fold_duplicates(view, ranked) if fold else [Candidate(r, s, k) for r, s, k in ranked]
            if exact or len(found) >= want or k >= ceiling:
                break
            k = min(ceiling, k * OVERFETCH)
        meta = {
            "spaces": {s: _space_meta(self.spaces[s]) for s in spaces},
            "missing_spaces": [s for s in queries if s not in self.spaces],
            "score": "rrf" if len(spaces) > 1 else "cosine",
            "filters": filters.as_params(),
            "searched": "every shot the filters allow" if exact else f"{k} nearest per space",
            "notes": view.notes(filters) + self.stale(spaces),
        }
        return found[:want], meta

    def stale(self, spaces: Iterable[str]) -> list[str]:
        snapshot = self.tables.get("embeddings", (None, 0))[0]
        return [
            f"the {s} index is of embeddings snapshot {self.spaces[s].version.snapshot_id}, the catalog "
            f"is at {snapshot}: archivist index build --space {s}"
            for s in spaces
            if snapshot is not None and self.spaces[s].version.snapshot_id != snapshot
        ]

    def hits(self, candidates: Iterable[Candidate]) -> list[Hit]:
        view = self.view
        return [
            Hit(
                shot_id=view.shot_ids[c.row],
                asset_id=self._asset_id(c.row),
                uri=view.asset_uris[view.shot_asset[c.row]] if view.shot_asset[c.row] >= 0 else None,
                start_s=float(view.start_s[c.row]),
                end_s=float(view.end_s[c.row]),
                caption=view.captions[c.row],
                thumbnail_url=keyframe_url(view.shot_ids[c.row], c.keyframe)
                if view.keyframe_uris[c.row]
                else None,
                score=round(float(c.score), 6),
                keyframe_index=c.keyframe,
                dup_group=view.group_names[c.row],
                duplicates=tuple(
                    Duplicate(view.shot_ids[row], self._asset_id(row), round(float(score), 6))
                    for row, score in c.duplicates
                ),
            )
            for c in candidates
        ]

    def _asset_id(self, row: int) -> str | None:
        asset = self.view.shot_asset[row]
        return self.view.asset_ids[asset] if asset >= 0 else None


class BatchedEncoder:
    """Encodes the words of concurrent queries in one batch.

    A transformer's forward pass costs about the same for one short text as for a
    few, so under load encoding one query at a time wastes most of it: on two cores
    MiniLM takes ~15 ms for one query and ~80 ms for 32. One worker thread takes
    whatever queries are waiting (up to `max_batch`) and encodes them together; a
    query arriving while a batch runs waits for the next. No query waits for others
    to arrive, so a lone query is as fast as before."""

    def __init__(self, encode: TextEncoder, *, max_batch: int = 32) -> None:
        self.encode = encode
        self.max_batch = max_batch
        self._waiting: queue.SimpleQueue[tuple[list[str], Future[np.ndarray]]] = queue.SimpleQueue()
        threading.Thread(target=self._work, name="archivist-text-encoder", daemon=True).start()

    def __call__(self, texts: list[str]) -> np.ndarray:
        answer: Future[np.ndarray] = Future()
        self._waiting.put((list(texts), answer))
        return answer.result()

    def _work(self) -> None:
        while True:
            batch = [self._waiting.get()]
            while len(batch) < self.max_batch and not self._waiting.empty():
                batch.append(self._waiting.get())
            try:
                vectors = self.encode([text for texts, _ in batch for text in texts])
            except Exception as exc:  # each waiting query gets the error, the worker goes on
                for _, answer in batch:
                    answer.set_exception(exc)
                continue
            start = 0
            for texts, answer in batch:
                answer.set_result(vectors[start : start + len(texts)])
                start += len(texts)


class QueryEngine:
    """Loads the indexes once, reloads them when they or the catalog move, and answers queries.

    `encode_text` and `embed_image` default to the pipeline's own models (MiniLM,
    EfficientNet), loaded on first use; tests pass small stand-ins."""

    def __init__(
        self,
        settings: Settings,
        catalog: SqlCatalog | None = None,
        *,
        encode_text: TextEncoder | None = None,
        embed_image: ImageEmbedder | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog if catalog is not None else open_catalog(settings)
        self._encode_text = BatchedEncoder(encode_text) if encode_text is not None else None
        self._embed_image = embed_image
        self._state: EngineState | None = None
        self._refreshing = threading.Lock()
        self._loading = threading.Lock()
        self._concepts: ConceptHierarchy | None = None
        self._expansions: dict[str, np.ndarray] = {}  # label texts of expanded queries, encoded once

    @property
    def state(self) -> EngineState:
        state = self._state
        if state is None:
            self.refresh()
            state = self._state
        assert state is not None
        return state

    @property
    def loaded(self) -> EngineState | None:
        """The state if one is loaded, without loading one (for health checks and metrics)."""
        return self._state

    def refresh(self) -> bool:
        """Load what changed since the last call; True when the state changed."""
        with self._refreshing:
            old = self._state
            read_at = latest_version(self.catalog)
            tables = table_snapshots(self.catalog, read_at)
            view = old.view if old is not None and view_key(tables) == old.view.key else None
            if view is None:
                view = CatalogView.load(self.catalog, tables)
            spaces: dict[str, LoadedSpace] = {}
            for space in SPACES:
                try:
                    version = current(self.settings, space)
                except IndexMissingError:
                    continue
                before = old.spaces.get(space) if old is not None else None
                if old is not None and before is not None and before.version == version:
                    spaces[space] = (
                        before
                        if view is old.view
                        else LoadedSpace.attach(version, before.index, before.ids, view)
                    )
                    continue
                index, ids = read_index_files(self.settings, version)
                spaces[space] = LoadedSpace.attach(version, index, ids, view)
            self._state = EngineState(view, spaces, tables, read_at.number if read_at else None)
            if old is None or view is not old.view:
                return True
            return any(spaces.get(s) is not old.spaces.get(s) for s in SPACES)

    def warm(self) -> None:
        """Load the text encoder now rather than on the first query (it takes seconds)."""
        self._text_encoder()

    def by_text(
        self,
        text: str,
        *,
        top: int = DEFAULT_TOP,
        filters: Filters | None = None,
        fold: bool = True,
        people: bool = False,
    ) -> Result:
        """Shots described by the words. With `people` (a caller allowed a face or voice search: the
        CLI, a token holder), words that are exactly a curator's name of a person or a voice (case
        and spacing aside) find the shots the person appears in and the voice speaks in first,
        scored 1, before what the words' meaning finds."""
        check_top(top)
        query = text.strip()
        if not query:
            raise QueryError("the query is empty: give some words to search for")
        if len(query) > MAX_QUERY_CHARS:
            raise QueryError(
                f"the query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are searched"
            )
        state = self.state
        state.require(TEXT_SPACES)
        vector = self._query_vector(query)
        result = self._answer(state, {s: vector for s in TEXT_SPACES}, top, filters, fold, query=query)
        named = state.view.people_rows.get(normal_name(query)) if people else None
        if named is None or not len(named):
            return result
        allowed = state.view.mask(filters or Filters())
        rows = [int(r) for r in named if allowed is None or allowed[r]]
        first = state.hits([Candidate(r, 1.0) for r in rows])
        ids = {h.shot_id for h in first}
        rest = [h for h in result.hits if h.shot_id not in ids]
        return Result([*first, *rest][:top], {**result.meta, "person_matches": len(first)})

    def by_image(
        self, image: np.ndarray, *, top: int = DEFAULT_TOP, filters: Filters | None = None, fold: bool = True
    ) -> Result:
        check_top(top)
        state = self.state
        state.require(IMAGE_SPACES)
        vector = self._image_embedder()(image)
        return self._answer(state, {s: vector for s in IMAGE_SPACES}, top, filters, fold, query="image")

    def by_shot(
        self,
        shot_id: str,
        *,
        top: int = DEFAULT_TOP,
        filters: Filters | None = None,
        fold: bool = True,
        spaces: Sequence[str] = SHOT_SPACES,
    ) -> Result:
        """Shots like this one; the shot and its own copies are left out (they are the query)."""
        check_top(top)
        state = self.state
        row = state.row(shot_id)
        loaded = state.require(spaces)
        queries = {space: state.shot_vector(space, shot_id) for space in loaded}
        return self._answer(
            state, queries, top, filters, fold, query=shot_id, exclude_groups=[int(state.view.group[row])]
        )

    def _answer(
        self,
        state: EngineState,
        queries: Mapping[str, np.ndarray],
        top: int,
        filters: Filters | None,
        fold: bool,
        *,
        query: str,
        exclude_groups: Iterable[int] = (),
    ) -> Result:
        found, meta = state.candidates(
            queries, want=top, filters=filters or Filters(), exclude_groups=exclude_groups, fold=fold
        )
        return Result(
            state.hits(found), {"query": query, "top": top, "catalog_version": state.catalog_version, **meta}
        )

    def _query_vector(self, query: str) -> np.ndarray:
        return expanded_query_vector(query, self._text_encoder(), self._hierarchy(), self._expansions)

    def _hierarchy(self) -> ConceptHierarchy:
        with self._loading:
            if self._concepts is None:
                self._concepts = load_hierarchy()
            return self._concepts

    def _text_encoder(self) -> TextEncoder:
        with self._loading:
            if self._encode_text is None:
                self._encode_text = BatchedEncoder(default_text_encoder())
            return self._encode_text

    def _image_embedder(self) -> ImageEmbedder:
        with self._loading:
            if self._embed_image is None:
                self._embed_image = default_image_embedder()
            return self._embed_image


def default_text_encoder() -> TextEncoder:
    """MiniLM, as the pipeline embeds descriptions (`actors.text_embed`)."""
    from actors.text_embed import TextEmbedder

    return TextEmbedder().encode


def default_image_embedder() -> ImageEmbedder:
    """EfficientNet, as the pipeline embeds keyframes (`actors.visual`)."""
    from actors.visual import VisualTagger

    tagger = VisualTagger()
    return lambda image: tagger.embed_images([image])[0][0]


def expanded_query_vector(
    query: str, encode: TextEncoder, hierarchy: ConceptHierarchy, cache: dict[str, np.ndarray]
) -> np.ndarray:
    """The query's vector, moved towards the mean of the label texts of the concepts it names;
    ``cache`` keeps the label texts' vectors (a dict is safe to share: one key's value never changes)."""
    vector = np.asarray(encode([query])[0], np.float32)
    texts = expansion_texts(hierarchy, query)
    if not texts:
        return vector
    missing = [t for t in texts if t not in cache]
    if missing:
        cache.update(zip(missing, np.asarray(encode(missing), np.float32), strict=True))
    mean = np.mean([cache[t] for t in texts], axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-12)
    moved = vector + EXPANSION_WEIGHT * mean
    return (moved / max(float(np.linalg.norm(moved)), 1e-12)).astype(np.float32)


def check_top(top: int) -> None:
    if not 1 <= top <= MAX_TOP:
        raise QueryError(f"top must be between 1 and {MAX_TOP}, not {top}")


Ranking = tuple[np.ndarray, np.ndarray, np.ndarray]
"""View rows, scores and matching keyframes, best first, each row once."""


def keyframe_url(shot_id: str, keyframe: int = 0) -> str:
    """Where the service serves a keyframe of a shot, relative to its root."""
    return f"/media/keyframes/{shot_id}" + (f"?keyframe={keyframe}" if keyframe else "")


def fuse(rankings: Sequence[Ranking]) -> list[tuple[int, float, int]]:
    """One ranking from several: the scores themselves for one, reciprocal-rank fusion for more
    (a shot's keyframe is the one its best rank came from)."""
    if len(rankings) == 1:
        rows, scores, keyframes = rankings[0]
        return list(zip(rows.tolist(), scores.tolist(), keyframes.tolist(), strict=True))
    fused: dict[int, float] = {}
    best: dict[int, tuple[int, int]] = {}
    for rows, _, keyframes in rankings:
        for rank, (row, keyframe) in enumerate(zip(rows.tolist(), keyframes.tolist(), strict=True), start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank)
            if row not in best or rank < best[row][0]:
                best[row] = (rank, keyframe)
    ordered = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    return [(row, score, best[row][1]) for row, score in ordered]


def fold_duplicates(view: CatalogView, ranked: Iterable[tuple[int, float, int]]) -> list[Candidate]:
    """Best first, one candidate per duplicate group, the group's other hits under it."""
    heads: dict[int, int] = {}
    found: list[tuple[int, float, int, list[tuple[int, float]]]] = []
    for row, score, keyframe in ranked:
        group = int(view.group[row])
        if group in heads:
            found[heads[group]][3].append((row, score))
        else:
            heads[group] = len(found)
            found.append((row, score, keyframe, []))
    return [Candidate(row, score, keyframe, tuple(dups)) for row, score, keyframe, dups in found]


def _ranking(
    space: LoadedSpace,
    queries: np.ndarray,
    weights: np.ndarray | None,
    k: int,
    allowed: np.ndarray | None,
    exact: bool,
) -> Ranking:
    """The space's shots for the queries, best first; a shot with several keyframes is ranked
    by the best of them, once."""
    w = np.ones(len(queries), np.float32) if weights is None else np.asarray(weights, np.float32)
    w = w / max(float(w.sum()), 1e-12)
    if exact and allowed is not None:  # exact is chosen only for a filter that leaves few rows
        known = space.rows >= 0
        positions = np.flatnonzero(known & allowed[np.where(known, space.rows, 0)])  # every keyframe
        rows = space.rows[positions]
        scores = (space.index.reconstruct_batch(positions) @ queries.T) @ w if len(rows) else np.zeros(0)
    else:
        sims, found = space.index.search(queries, min(k, space.index.ntotal))
        if len(queries) == 1:
            positions, scores = found[0][found[0] >= 0], sims[0][found[0] >= 0]
        else:  # several queries: score the union of their neighbours against all of them
            positions = np.unique(found[found >= 0])
            scores = (space.index.reconstruct_batch(positions) @ queries.T) @ w
        rows = space.rows[positions]
        keep = rows >= 0
        if allowed is not None:
            keep &= allowed[np.where(keep, rows, 0)]
        rows, scores, positions = rows[keep], scores[keep], positions[keep]
    order = np.argsort(-scores, kind="stable")
    rows, scores, positions = rows[order], np.asarray(scores, np.float64)[order], positions[order]
    _, first = np.unique(rows, return_index=True)  # each shot at its best keyframe
    first.sort()
    return rows[first], scores[first], space.keyframes[positions[first]].astype(np.int64)


def _matrix(vectors: np.ndarray) -> np.ndarray:
    matrix = np.atleast_2d(np.asarray(vectors, np.float32))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12))


def _space_meta(space: LoadedSpace) -> dict[str, Any]:
    return {
        "snapshot_id": space.version.snapshot_id,
        "count": space.version.count,
        "kind": space.version.kind,
    }
