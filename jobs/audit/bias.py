"""Bias: who the catalog shows, who search puts in front of people, and whom the face models serve worse.

All three look at perceived attributes (gender, age band, skin-tone group),
which are a model's estimates from pixels: they say nothing about who any
person is, they are wrong for some people, and they are used here only in
aggregate, as shares of many faces. No per-person attribute leaves this
module, and none is shown in search results or the API.

- Representation: each group's share of the catalog's detected faces,
  against a reference the configuration names (a target distribution, or
  uniform). Attributes without a reference are reported, not judged.
- Exposure: the same shares among the faces in ranked lists, weighted by
  rank (1/log2(rank + 1), as in DCG), against the catalog itself: do search
  (shots like a query shot) and recommendations ("more like this", "for
  you") put some groups in front more than the catalog holds them? And how
  concentrated exposure is across assets over all lists (Gini over every
  asset, coverage = share of assets ever shown), where the recommender's own
  figures are per list.
- Quality parity: on a labelled set (the bundled LFW faces, perceived
  gender annotated by hand in ``ANNOTATED_GENDER``), the face model's
  detection rate and how often its perceived gender agrees with the
  annotation, per annotated group.

Group metrics are computed with fairlearn's ``MetricFrame``. Their
confidence intervals come from a bootstrap that resamples whole units
(shots, assets or queries: faces of one shot are largely one person seen
repeatedly, so resampling single faces would make intervals too narrow),
vectorised over the metric's per-unit sums, since building a MetricFrame
per resample costs ~20 ms and an audit needs thousands. A gap is flagged
only when its whole interval clears the configured threshold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from fairlearn.metrics import MetricFrame

from actors.faces import AGE_BANDS, ITA_GROUPS
from jobs.audit.config import BiasConfig

GROUPS: dict[str, tuple[str, ...]] = {
    "perceived_gender": ("female", "male"),
    "perceived_age_band": tuple(name for _, name in AGE_BANDS),
    "skin_tone_group": (*(name for _, name in ITA_GROUPS), "dark"),
}
"""Every group of each perceived attribute, so that a group with no face at all shows as 0, not as absent."""

ANNOTATED_GENDER = (
    "mmmmmmmmmmmmmmmmmmfmmm?mmmmmm??fmmmmmfmmmmmmmffmmmfmffmmmfmmmmmmmmm?mmmmmmffmmmmmm?mm?mmmmmfmffmmmmf"
)
"""Perceived gender of ``lfw_subset`` faces 0-99 as one annotator (an engineer of this project) saw
them in the 25x25 grey patches: f, m, or ? where the patch did not let them tell. An annotation
is a perception too; it is the reference here only because it does not come from the model."""


def reference_shares(attribute: str, reference: str | Mapping[str, float] | None) -> dict[str, float] | None:
    if reference is None:
        return None
    groups = GROUPS[attribute]
    if reference == "uniform":
        return {group: 1.0 / len(groups) for group in groups}
    return {group: float(reference.get(group, 0.0)) for group in groups}  # type: ignore[union-attr]


def _weighted_count(y_true: Any, y_pred: Any, sample_weight: Any) -> float:
    return float(np.sum(sample_weight))


def metric_shares(groups: Sequence[str], weights: Sequence[float]) -> pd.Series:
    """Each group's share of the total weight, by fairlearn's MetricFrame."""
    frame = MetricFrame(
        metrics=_weighted_count,
        y_true=np.zeros(len(groups)),
        y_pred=np.zeros(len(groups)),
        sensitive_features=pd.Series(list(groups), name="group"),
        sample_params={"sample_weight": np.asarray(weights, float)},
    )
    return frame.by_group / frame.overall


def bootstrap_ratio(
    numerator: np.ndarray, denominator: np.ndarray, *, n_boot: int, confidence: float, seed: int
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Interval of ``sum(numerator) / sum(denominator)`` per group, resampling units (rows) with replacement.

    ``numerator`` and ``denominator`` are (units, groups) sums of one metric
    per unit. Returns the lower and upper bounds per group, and the interval
    of the largest gap between groups (max - min over groups with data).
    """
    units = numerator.shape[0]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(units, np.full(units, 1.0 / units), size=n_boot).astype(float)
    num, den = weights @ numerator, weights @ denominator
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    tail = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(ratio, tail, axis=0), np.nanquantile(ratio, 1.0 - tail, axis=0)
    gaps = np.nanmax(ratio, axis=1) - np.nanmin(ratio, axis=1)
    return low, high, (float(np.quantile(gaps, tail)), float(np.quantile(gaps, 1.0 - tail)))


def _unit_sums(
    units: Sequence[Any], groups: Sequence[str], values: np.ndarray, order: Sequence[str]
) -> tuple[np.ndarray, list[Any]]:
    """(units, groups) sums of ``values``: the matrix the bootstrap resamples."""
    unit_index = {u: i for i, u in enumerate(dict.fromkeys(units))}
    group_index = {g: j for j, g in enumerate(order)}
    sums = np.zeros((len(unit_index), len(order)))
    np.add.at(sums, ([unit_index[u] for u in units], [group_index[g] for g in groups]), values)
    return sums, list(unit_index)


def _gap_flag(low: float, high: float, reference: float, threshold: float) -> bool:
    """Flag only when the whole interval lies more than ``threshold`` away from the reference."""
    return low - reference > threshold or reference - high > threshold


def _row(
    audit: str,
    subject: str,
    metric: str,
    value: float | None,
    low: float | None,
    high: float | None,
    threshold: float | None,
    flagged: bool,
    detail: dict[str, Any],
) -> dict[str, Any]:
    def clean(v: float | None) -> float | None:
        return None if v is None or not np.isfinite(v) else round(float(v), 4)

    return {
        "audit": audit,
        "subject": subject,
        "metric": metric,
        "value": clean(value),
        "ci_low": clean(low),
        "ci_high": clean(high),
        "threshold": threshold,
        "flagged": bool(flagged),
        "detail": json.dumps(detail, sort_keys=True),
    }


def _faces_frame(faces: pa.Table | pd.DataFrame) -> pd.DataFrame:
    return faces.to_pandas() if isinstance(faces, pa.Table) else faces


def representation(faces: pa.Table | pd.DataFrame, config: BiasConfig) -> list[dict[str, Any]]:
    """Shares of each perceived group among the catalog's faces, against the configured reference."""
    frame = _faces_frame(faces)
    rows = []
    for attribute in config.attributes:
        known = frame[frame[attribute].notna()] if attribute in frame else frame.iloc[0:0]
        reference = reference_shares(attribute, config.reference.get(attribute))
        base = {
            "attribute": attribute,
            "faces": len(known),
            "unit": config.unit,
            "faces_without_estimate": int(len(frame) - len(known)),
        }
        if len(known) < config.min_faces:
            rows.append(
                _row(
                    "bias",
                    attribute,
                    "representation",
                    None,
                    None,
                    None,
                    None,
                    False,
                    {**base, "note": f"fewer than {config.min_faces} faces with this estimate"},
                )
            )
            continue
        order = GROUPS[attribute]
        units = (known.index if config.unit == "face" else known[f"{config.unit}_id"]).tolist()
        shares = metric_shares(known[attribute].tolist(), [1.0] * len(known))
        counts, _ = _unit_sums(units, known[attribute].tolist(), np.ones(len(known)), order)
        totals = np.repeat(counts.sum(axis=1, keepdims=True), len(order), axis=1)
        low, high, _ = bootstrap_ratio(
            counts, totals, n_boot=config.bootstrap, confidence=config.confidence, seed=config.seed
        )
        for j, group in enumerate(order):
            share = float(shares.get(group, 0.0))
            target = None if reference is None else reference[group]
            flagged = target is not None and _gap_flag(low[j], high[j], target, config.disparity_threshold)
            rows.append(
                _row(
                    "bias",
                    f"{attribute}={group}",
                    "representation_share",
                    share,
                    low[j],
                    high[j],
                    None if target is None else config.disparity_threshold,
                    flagged,
                    {**base, "group": group, "count": int(counts[:, j].sum()), "reference": target},
                )
            )
    return rows


def exposure(
    lists: Mapping[str, Sequence[str]],
    faces: pa.Table | pd.DataFrame,
    shot_assets: Mapping[str, str],
    config: BiasConfig,
    *,
    source: str = "search",
) -> list[dict[str, Any]]:
    """Rank-weighted group shares in ranked result lists against the catalog, and concentration over assets.

    ``lists`` maps each query to its ranked shot ids; ``shot_assets`` maps
    every shot of the catalog to its asset (assets never shown count, as
    zeros, in the Gini and the coverage).
    """
    frame = _faces_frame(faces)
    rows = []
    queries = [q for q, shots in lists.items() if shots]
    if not queries:
        return [
            _row(
                "bias",
                source,
                "exposure",
                None,
                None,
                None,
                None,
                False,
                {"source": source, "note": "no query returned results"},
            )
        ]
    assets = sorted(set(shot_assets.values()))
    asset_index = {a: i for i, a in enumerate(assets)}
    per_query_assets = np.zeros((len(queries), len(assets)))
    for qi, query in enumerate(queries):
        for rank, shot in enumerate(lists[query], start=1):
            if shot in shot_assets:
                per_query_assets[qi, asset_index[shot_assets[shot]]] += 1.0 / np.log2(rank + 1)
    rows.extend(_concentration(per_query_assets, config, source, len(queries)))

    for attribute in config.attributes:
        known = frame[frame[attribute].notna()] if attribute in frame else frame.iloc[0:0]
        if len(known) < config.min_faces:
            continue
        order = GROUPS[attribute]
        # Each shot's faces as group fractions: a shot shown once is one exposure, however many faces it has.
        by_shot = pd.crosstab(known["shot_id"], known[attribute]).reindex(columns=list(order), fill_value=0)
        fractions = by_shot.div(by_shot.sum(axis=1), axis=0)
        catalog = fractions.mean(axis=0)
        unit_rows, groups, weights = [], [], []
        for query in queries:
            for rank, shot in enumerate(lists[query], start=1):
                if shot in fractions.index:
                    for group in order:
                        unit_rows.append(query)
                        groups.append(group)
                        weights.append(fractions.at[shot, group] / np.log2(rank + 1))
        if not weights or sum(weights) == 0:
            continue
        shares = metric_shares(groups, weights)
        sums, _ = _unit_sums(unit_rows, groups, np.asarray(weights), order)
        totals = np.repeat(sums.sum(axis=1, keepdims=True), len(order), axis=1)
        low, high, _ = bootstrap_ratio(
            sums, totals, n_boot=config.bootstrap, confidence=config.confidence, seed=config.seed
        )
        for j, group in enumerate(order):
            reference = float(catalog[group])
            rows.append(
                _row(
                    "bias",
                    f"{source}:{attribute}={group}",
                    "exposure_share",
                    float(shares.get(group, 0.0)),
                    low[j],
                    high[j],
                    config.disparity_threshold,
                    _gap_flag(low[j], high[j], reference, config.disparity_threshold),
                    {
                        "source": source,
                        "attribute": attribute,
                        "group": group,
                        "reference": round(reference, 4),
                        "reference_is": "the catalog's shots with faces",
                        "queries": len(queries),
                        "top_k": config.top_k,
                        "unit": "query",
                    },
                )
            )
    return rows


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative amounts (0: all equal; near 1: one holds everything)."""
    v = np.sort(np.asarray(values, float))
    if v.size == 0 or v.sum() == 0:
        return 0.0
    n = v.size
    return float((2 * np.arange(1, n + 1) - n - 1) @ v / (n * v.sum()))


def _concentration(
    per_query_assets: np.ndarray, config: BiasConfig, source: str, queries: int
) -> list[dict[str, Any]]:
    totals = per_query_assets.sum(axis=0)
    rng = np.random.default_rng(config.seed)
    picks = rng.integers(0, per_query_assets.shape[0], (config.bootstrap, per_query_assets.shape[0]))
    resampled = per_query_assets[picks].sum(axis=1)
    ginis = np.array([gini(r) for r in resampled])
    coverage = (resampled > 0).mean(axis=1)
    tail = (1 - config.confidence) / 2
    detail = {
        "source": source,
        "assets": int(per_query_assets.shape[1]),
        "queries": queries,
        "top_k": config.top_k,
        "unit": "query",
    }
    g_low, g_high = np.quantile(ginis, [tail, 1 - tail])
    c_low, c_high = np.quantile(coverage, [tail, 1 - tail])
    return [
        _row(
            "bias",
            source,
            "exposure_gini",
            gini(totals),
            g_low,
            g_high,
            config.max_gini,
            g_low > config.max_gini,
            detail,
        ),
        _row(
            "bias",
            source,
            "exposure_coverage",
            float((totals > 0).mean()),
            c_low,
            c_high,
            None,
            False,
            {**detail, "note": "share of assets shown at least once"},
        ),
    ]


# -- quality parity on the labelled set -------------------------------------------------------------


def labelled_outcomes(analyzer: Any) -> pd.DataFrame:
    """The face model run over the labelled set: per face, detected? and perceived gender agrees?"""
    from jobs.audit import synth

    rows = []
    faces = synth.lfw_faces()
    for index, label in enumerate(ANNOTATED_GENDER):
        if label == "?":
            continue
        image, _ = synth.face_canvas(faces[index])
        found = analyzer.analyse(image)
        perceived = found[0]["perceived_gender"] if found else None
        rows.append(
            {
                "face_id": index,
                "group": {"f": "female", "m": "male"}[label],
                "detected": bool(found),
                "agrees": None if perceived is None else perceived == {"f": "female", "m": "male"}[label],
            }
        )
    return pd.DataFrame(rows)


def quality_parity(outcomes: pd.DataFrame, config: BiasConfig, *, model: str) -> list[dict[str, Any]]:
    """Detection and perceived-gender agreement rates per annotated group, and the gap between groups."""
    rows = []
    order = GROUPS["perceived_gender"]
    for metric, column, base in (
        ("detection_rate", "detected", outcomes),
        ("gender_agreement", "agrees", outcomes[outcomes["agrees"].notna()]),
    ):
        values = base[column].astype(float).to_numpy()
        frame = MetricFrame(
            metrics=lambda t, p: float(np.mean(p)),
            y_true=values,
            y_pred=values,
            sensitive_features=base["group"].rename("group"),
        )
        hits, _ = _unit_sums(base["face_id"].tolist(), base["group"].tolist(), values, order)
        trials, _ = _unit_sums(base["face_id"].tolist(), base["group"].tolist(), np.ones(len(base)), order)
        low, high, (gap_low, gap_high) = bootstrap_ratio(
            hits, trials, n_boot=config.bootstrap, confidence=config.confidence, seed=config.seed
        )
        detail = {
            "labelled_set": "lfw_subset faces 0-99, perceived gender annotated by hand (unsure left out)",
            "model": model,
            "unit": "face",
        }
        for j, group in enumerate(order):
            rows.append(
                _row(
                    "bias",
                    f"quality:{metric}:{group}",
                    metric,
                    float(frame.by_group.get(group, np.nan)),
                    low[j],
                    high[j],
                    None,
                    False,
                    {**detail, "group": group, "faces": int(trials[:, j].sum())},
                )
            )
        gap = float(frame.difference())
        rows.append(
            _row(
                "bias",
                f"quality:{metric}",
                f"{metric}_gap",
                gap,
                gap_low,
                gap_high,
                config.disparity_threshold,
                gap_low > config.disparity_threshold,
                {**detail, "between": list(order)},
            )
        )
    return rows
