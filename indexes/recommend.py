"""Recommendations: "more like this" for a shot and "for you" from a user's events, re-ranked so
that the list is varied and no few works take every slot.

- **Candidates.** A pool of `POOL × top` shots (duplicates folded) nearest the
  seeds in the visual and the description spaces, fused by reciprocal rank. "More
  like this" has one seed, the shot; "for you" has up to `MAX_SEEDS`: the shots
  the user viewed, liked or saved, each weighted by what they did (view < like <
  save) and how long ago (halved every `HALF_LIFE_DAYS`). A candidate's score in
  a space is its weighted mean cosine to the seeds, so several interests are kept
  apart rather than averaged into one vector between them. Shots the user has
  seen, and their copies, are left out.
- **Re-ranking**, one greedy pass over the pool, slot by slot. A candidate's value is
  ``diversity · relevance − (1 − diversity) · max similarity to what is already
  chosen − fairness · its asset's share of the exposure given so far`` (MMR,
  Carbonell & Goldstein 1998, plus an exposure penalty), and no asset may take
  more than ``ceil(top · (1 − fairness))`` slots while another asset below that
  has a candidate left (then each may take that many more, round by round).
  Exposure is position-weighted (1 / log2(1 + rank), the attention a rank gets
  in DCG), so the first slots count most. `diversity=1, fairness=0` is the
  plain ranking.
- **Reported with every list** (and for the plain ranking beside it), over the
  assets of the candidate pool: *coverage*, the share of the pool's assets that
  get a slot; *gini*, the Gini coefficient of the exposure the pool's assets get
  (0: all alike; near 1: one asset takes it all); and *catalog_coverage*, the
  share of all the catalog's assets with shots that get a slot.

Exposure is balanced within one list; balancing it across many requests (amortised
fairness) would need a shared ledger of what each asset has been shown, left for
when there is traffic to measure it on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

from catalog.iceberg import append, read
from catalog.schema import EVENTS, TEXT_SPACE, VISUAL_SPACE
from indexes.defaults import DEFAULT_TOP, DIVERSITY, FAIRNESS
from indexes.filters import Filters, shorten
from indexes.query import Candidate, EngineState, QueryEngine, QueryError, Result, check_top
from indexes.search import UnknownShotError

KIND_WEIGHTS = {"view": 1.0, "like": 3.0, "save": 5.0}
HALF_LIFE_DAYS = 30.0
MAX_SEEDS = 20
MAX_EVENTS = 2000
"""A user's most recent events that make the profile."""
RECOMMEND_SPACES = (VISUAL_SPACE, TEXT_SPACE)
"""Where candidates are found: what shots look like and what they are said to show."""
RERANK_SPACE = VISUAL_SPACE
"""Whose vectors measure how alike two candidates are when re-ranking (the first space queried if absent)."""
POOL = 5
MIN_POOL = 50


class UnknownUserError(LookupError):
    pass


def more_like_this(
    engine: QueryEngine,
    shot_id: str,
    *,
    top: int = DEFAULT_TOP,
    diversity: float = DIVERSITY,
    fairness: float = FAIRNESS,
    filters: Filters | None = None,
) -> Result:
    """Shots like this one, varied and spread over works; the shot and its copies are left out."""
    _check(top, diversity, fairness)
    state = engine.state
    row = state.row(shot_id)
    spaces = [s for s in state.require(RECOMMEND_SPACES) if state.spaces[s].positions[row] >= 0]
    if not spaces:
        state.shot_vector(RECOMMEND_SPACES[0], shot_id)  # raises, naming the index to rebuild
    queries = {space: state.vectors(space, [row]) for space in spaces}
    return _recommend(
        state,
        queries,
        None,
        [int(state.view.group[row])],
        top,
        diversity,
        fairness,
        filters,
        basis={"shot_id": shot_id},
    )


def for_you(
    engine: QueryEngine,
    user_id: str,
    *,
    top: int = DEFAULT_TOP,
    diversity: float = DIVERSITY,
    fairness: float = FAIRNESS,
    filters: Filters | None = None,
    now: dt.datetime | None = None,
) -> Result:
    """Shots for a user from what they viewed, liked and saved, leaving out what they have seen."""
    _check(top, diversity, fairness)
    state = engine.state
    events = user_events(engine.catalog, user_id)
    weights = profile(events, now or dt.datetime.now(dt.UTC))
    known = {shot: w for shot, w in weights.items() if shot in state.view.row_of}
    if not known:
        raise UnknownUserError(
            f"user {shorten(user_id, 64)} has no views, likes or saves of shots in the catalog yet: "
            "post some to /events, or ask for shots like one shot"
        )
    seen_groups = {int(state.view.group[state.view.row_of[shot]]) for shot in known}
    seeds = sorted(known, key=lambda shot: (-known[shot], shot))[:MAX_SEEDS]
    rows = [state.view.row_of[shot] for shot in seeds]
    seed_weights = np.array([known[shot] for shot in seeds], np.float32)
    queries, query_weights = {}, {}
    for space in state.require(RECOMMEND_SPACES):
        present = state.spaces[space].positions[rows] >= 0
        if present.any():
            queries[space] = state.vectors(space, np.asarray(rows)[present])
            query_weights[space] = seed_weights[present]
    if not queries:
        raise UnknownShotError(
            f"none of user {shorten(user_id, 64)}'s shots is in the indexes; rebuild them "
            f"with: archivist index build --space {RECOMMEND_SPACES[0]}"
        )
    return _recommend(
        state,
        queries,
        query_weights,
        seen_groups,
        top,
        diversity,
        fairness,
        filters,
        basis={"user_id": user_id, "events": len(events), "seeds": len(seeds)},
    )


def profile(events: Iterable[Mapping[str, Any]], now: dt.datetime) -> dict[str, float]:
    """Interest per shot: each event's kind weight, halved for every `HALF_LIFE_DAYS` of its age."""
    weights: dict[str, float] = {}
    for event in events:
        age_days = max(0.0, (now - event["at"]).total_seconds() / 86_400)
        weight = KIND_WEIGHTS.get(event["kind"], 0.0) * 0.5 ** (age_days / HALF_LIFE_DAYS)
        weights[event["shot_id"]] = weights.get(event["shot_id"], 0.0) + weight
    return weights


def user_events(catalog: SqlCatalog, user_id: str) -> list[dict[str, Any]]:
    """The user's most recent events, each once (a retried post writes the same event id again)."""
    rows = read(
        catalog,
        "events",
        columns=("event_id", "shot_id", "kind", "at"),
        row_filter=EqualTo(term="user_id", value=user_id),
    ).to_pylist()
    unique = {row["event_id"]: row for row in rows}
    return sorted(unique.values(), key=lambda row: row["at"], reverse=True)[:MAX_EVENTS]


def record_events(catalog: SqlCatalog, events: Sequence[Mapping[str, Any]]) -> int:
    """Append events in one commit. An event's id is a hash of what it says, so posting the same
    event twice (a client retrying) counts it once."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    for event in events:
        at = event.get("at") or now
        at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
        key = f"{event['user_id']}\x00{event['shot_id']}\x00{event['kind']}\x00{at.isoformat()}"
        rows.append(
            {
                "event_id": hashlib.sha256(key.encode()).hexdigest()[:32],
                "user_id": event["user_id"],
                "shot_id": event["shot_id"],
                "kind": event["kind"],
                "at": at,
            }
        )
    append(catalog, "events", pa.Table.from_pylist(rows, schema=EVENTS))
    return len(rows)


def rerank(
    relevance: np.ndarray,
    assets: np.ndarray,
    vectors: np.ndarray,
    *,
    top: int,
    diversity: float = DIVERSITY,
    fairness: float = FAIRNESS,
) -> list[int]:
    """Indices into the pool, in the order to show them (see the module docstring for the rule).

    `relevance` is a positive score, higher better (cosine, or fused rank); it enters as a share of
    the best candidate's, so either kind weighs against the cosine similarity between candidates
    on one scale. `assets` is an integer per candidate; `vectors` are unit rows."""
    n = len(relevance)
    if n == 0:
        return []
    best = float(relevance.max())
    rel = relevance / best if best > 0 else np.ones(n)
    similarity = vectors @ vectors.T
    cap = level = max_per_asset(top, fairness)
    closest = np.zeros(n)
    exposure = np.zeros(int(assets.max()) + 1)
    slots = np.zeros_like(exposure, dtype=np.int64)
    free = np.ones(n, bool)
    chosen: list[int] = []
    for rank in range(1, min(top, n) + 1):
        share = exposure[assets] / exposure.sum() if exposure.sum() > 0 else np.zeros(n)
        value = diversity * rel - (1 - diversity) * closest - fairness * share
        open_ = free & (slots[assets] < level)
        while not open_.any():  # every work with candidates left is at the cap: allow a round more
            level += cap
            open_ = free & (slots[assets] < level)
        pick = int(np.argmax(np.where(open_, value, -np.inf)))
        chosen.append(pick)
        free[pick] = False
        closest = np.maximum(closest, similarity[pick])
        exposure[assets[pick]] += position_weight(rank)
        slots[assets[pick]] += 1
    return chosen


def max_per_asset(top: int, fairness: float) -> int:
    return max(1, math.ceil(top * (1 - fairness)))


def position_weight(rank: int) -> float:
    return 1.0 / math.log2(1 + rank)


def gini(values: Sequence[float] | np.ndarray) -> float:
    """0 when every value is the same, (n − 1) / n when one holds everything."""
    x = np.sort(np.asarray(values, np.float64))
    n, total = len(x), float(x.sum()) if len(x) else 0.0
    if n < 2 or total <= 0:
        return 0.0
    return float(2 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def exposure_report(shown: Sequence[int], pool: Sequence[int], catalog_assets: int) -> dict[str, float | int]:
    """Coverage and Gini of exposure of a list's assets (`shown`, in rank order) over the pool's."""
    assets = sorted(set(pool))
    exposure = dict.fromkeys(assets, 0.0)
    for rank, asset in enumerate(shown, start=1):
        exposure[asset] += position_weight(rank)
    distinct = len(set(shown))
    return {
        "assets": distinct,
        "coverage": round(distinct / len(assets), 4) if assets else 0.0,
        "catalog_coverage": round(distinct / catalog_assets, 4) if catalog_assets else 0.0,
        "gini": round(gini(list(exposure.values())), 4),
    }


def _recommend(
    state: EngineState,
    queries: Mapping[str, np.ndarray],
    weights: Mapping[str, np.ndarray] | None,
    exclude_groups: Iterable[int],
    top: int,
    diversity: float,
    fairness: float,
    filters: Filters | None,
    *,
    basis: dict[str, Any],
) -> Result:
    pool, meta = state.candidates(
        queries,
        want=max(POOL * top, MIN_POOL),
        filters=filters or Filters(),
        weights=weights,
        exclude_groups=exclude_groups,
    )
    view = state.view
    assets = np.array([view.shot_asset[c.row] for c in pool], np.int64)
    assets[assets < 0] = len(view.asset_ids)  # a shot whose asset row is missing counts as one unknown asset
    space = RERANK_SPACE if RERANK_SPACE in queries else next(iter(queries))
    vectors = state.vectors(space, [c.row for c in pool])
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    order = rerank(
        np.array([c.score for c in pool]), assets, vectors, top=top, diversity=diversity, fairness=fairness
    )
    chosen: list[Candidate] = [pool[i] for i in order]
    catalog_assets = len(set(view.shot_asset[view.shot_asset >= 0].tolist()))
    meta.update(
        basis=basis,
        top=top,
        pool=len(pool),
        diversity=diversity,
        fairness=fairness,
        max_per_asset=max_per_asset(top, fairness),
        exposure=exposure_report(assets[order].tolist(), assets.tolist(), catalog_assets),
        exposure_before_rerank=exposure_report(assets[:top].tolist(), assets.tolist(), catalog_assets),
    )
    return Result(state.hits(chosen), meta)


def _check(top: int, diversity: float, fairness: float) -> None:
    check_top(top)
    for name, value in (("diversity", diversity), ("fairness", fairness)):
        if not 0.0 <= value <= 1.0:
            raise QueryError(f"{name} must be between 0 and 1, not {value}")
