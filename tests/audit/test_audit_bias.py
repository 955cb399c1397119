"""Bias: a catalog with a planted skew is flagged and a balanced one is not; the same for search exposure
and for quality parity; intervals agree with fairlearn's own bootstrap."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from audit_helpers import face_rows, skewed
from fairlearn.metrics import MetricFrame, count

from jobs.audit.bias import (
    ANNOTATED_GENDER,
    GROUPS,
    bootstrap_ratio,
    exposure,
    gini,
    metric_shares,
    quality_parity,
    reference_shares,
    representation,
)
from jobs.audit.config import BiasConfig

CONFIG = BiasConfig(attributes=["perceived_gender"], bootstrap=400)


def _by_subject(rows: list[dict]) -> dict[str, dict]:
    return {row["subject"]: row for row in rows}


def test_planted_skew_is_flagged_and_balance_is_not() -> None:
    skew = _by_subject(representation(face_rows({"perceived_gender": skewed(200, 0.8)}, shots=100), CONFIG))
    male, female = skew["perceived_gender=male"], skew["perceived_gender=female"]
    assert male["value"] == pytest.approx(0.8) and female["value"] == pytest.approx(0.2)
    assert male["ci_low"] < 0.8 < male["ci_high"] and male["ci_low"] > 0.6, (
        "the interval clears 50 % + 10 points"
    )
    assert male["flagged"] and female["flagged"]
    assert json.loads(male["detail"])["reference"] == 0.5

    balanced = representation(face_rows({"perceived_gender": skewed(200, 0.5)}, shots=100), CONFIG)
    assert not any(row["flagged"] for row in balanced)
    slight = representation(face_rows({"perceived_gender": skewed(200, 0.58)}, shots=100), CONFIG)
    assert not any(row["flagged"] for row in slight), "8 points off with an interval that reaches the band"


def test_small_samples_and_unreferenced_attributes_are_reported_not_judged() -> None:
    few = representation(face_rows({"perceived_gender": ["male"] * 10}, shots=5), CONFIG)
    assert [(r["metric"], r["flagged"]) for r in few] == [("representation", False)]
    assert "fewer than 20 faces" in json.loads(few[0]["detail"])["note"]
    bands = ["20-34"] * 100 + ["65+"] * 20
    rows = representation(
        face_rows({"perceived_age_band": bands}, shots=60), BiasConfig(attributes=["perceived_age_band"])
    )
    assert len(rows) == len(GROUPS["perceived_age_band"]) and not any(r["flagged"] for r in rows)
    assert all(json.loads(r["detail"])["reference"] is None for r in rows)
    target = BiasConfig(
        attributes=["perceived_age_band"],
        reference={"perceived_age_band": {"20-34": 0.5, "35-49": 0.3, "65+": 0.2}},
    )
    flagged = {
        r["subject"]
        for r in representation(face_rows({"perceived_age_band": bands}, shots=60), target)
        if r["flagged"]
    }
    assert flagged == {"perceived_age_band=20-34", "perceived_age_band=35-49"}


def test_shares_come_from_metricframe_and_intervals_match_fairlearns_bootstrap() -> None:
    values = skewed(300, 0.7, seed=3)
    shares = metric_shares(values, np.ones(300))
    assert shares["male"] == pytest.approx(0.7)
    # With single faces as the unit, the vectorised bootstrap is the bootstrap fairlearn runs itself.
    counts = np.array([[v == "female", v == "male"] for v in values], float)
    low, high, _ = bootstrap_ratio(counts, np.ones_like(counts), n_boot=2000, confidence=0.95, seed=0)
    frame = MetricFrame(
        metrics=count,
        y_true=np.zeros(300),
        y_pred=np.zeros(300),
        sensitive_features=pd.Series(values, name="g"),
        n_boot=400,
        ci_quantiles=[0.025, 0.975],
        random_state=0,
    )
    theirs_low, theirs_high = (frame.by_group_ci[k]["male"] / 300 for k in (0, 1))
    assert low[1] == pytest.approx(theirs_low, abs=0.02) and high[1] == pytest.approx(theirs_high, abs=0.02)


def test_resampling_shots_widens_intervals_when_faces_cluster() -> None:
    """Ten faces per shot, all of one group: the shot, not the face, is the unit of evidence."""
    values = [g for g in skewed(30, 0.5) for _ in range(10)]
    faces = face_rows({"perceived_gender": values}, shots=30, faces_per_shot=10)
    by_shot = _by_subject(representation(faces, CONFIG))["perceived_gender=male"]
    by_face = _by_subject(representation(faces, CONFIG.model_copy(update={"unit": "face"})))[
        "perceived_gender=male"
    ]
    assert by_shot["ci_high"] - by_shot["ci_low"] > 2 * (by_face["ci_high"] - by_face["ci_low"])


def test_search_that_favours_a_group_is_flagged() -> None:
    genders = skewed(200, 0.5)
    faces = face_rows({"perceived_gender": genders}, shots=200, faces_per_shot=1)
    shots = faces.to_pandas()
    shot_assets = dict(zip(shots["shot_id"], shots["asset_id"], strict=True))
    male_shots = shots[shots["perceived_gender"] == "male"]["shot_id"].tolist()
    rng = np.random.default_rng(0)
    favouring = {f"q{k}": list(rng.choice(male_shots, 10, replace=False)) for k in range(30)}
    fair = {f"q{k}": list(rng.choice(shots["shot_id"], 10, replace=False)) for k in range(30)}
    flagged = {r["subject"] for r in exposure(favouring, faces, shot_assets, CONFIG) if r["flagged"]}
    assert {"search:perceived_gender=male", "search:perceived_gender=female"} <= flagged
    assert not any(r["flagged"] for r in exposure(fair, faces, shot_assets, CONFIG))
    share = _by_subject(exposure(fair, faces, shot_assets, CONFIG))["search:perceived_gender=male"]
    assert json.loads(share["detail"])["reference"] == pytest.approx(0.5)


def test_exposure_concentration_over_assets() -> None:
    faces = face_rows({"perceived_gender": skewed(100, 0.5)}, shots=100, faces_per_shot=1, asset_count=20)
    shots = faces.to_pandas()
    shot_assets = dict(zip(shots["shot_id"], shots["asset_id"], strict=True))
    one_asset = shots[shots["asset_id"] == "asset0"]["shot_id"].tolist()
    concentrated = {f"q{k}": one_asset[:5] for k in range(20)}
    rows = {r["metric"]: r for r in exposure(concentrated, faces, shot_assets, CONFIG)}
    gini_row, coverage = rows["exposure_gini"], rows["exposure_coverage"]
    assert gini_row["value"] == pytest.approx(0.95) and gini_row["flagged"]
    assert coverage["value"] == pytest.approx(0.05)
    assert gini(np.ones(10)) == 0.0 and gini(np.array([0, 0, 0, 1.0])) == pytest.approx(0.75)
    assert exposure({"q": []}, faces, shot_assets, CONFIG)[0]["value"] is None


def test_quality_gap_is_flagged_only_when_it_clears_the_threshold() -> None:
    rng = np.random.default_rng(0)

    def outcomes(rate_f: float, rate_m: float, n: int = 150) -> pd.DataFrame:
        rows = [
            {"face_id": k, "group": g, "detected": bool(rng.random() < rate), "agrees": True}
            for g, rate in (("female", rate_f), ("male", rate_m))
            for k in range(n)
        ]
        for k, row in enumerate(rows):
            row["face_id"] = k
        return pd.DataFrame(rows)

    unequal = _by_subject(quality_parity(outcomes(0.5, 0.95), CONFIG, model="m"))
    assert unequal["quality:detection_rate"]["flagged"] and unequal["quality:detection_rate"]["value"] > 0.3
    assert not unequal["quality:gender_agreement"]["flagged"]
    equal = quality_parity(outcomes(0.9, 0.9), CONFIG, model="m")
    assert not any(r["flagged"] for r in equal)


def test_reference_and_labels() -> None:
    assert reference_shares("perceived_gender", "uniform") == {"female": 0.5, "male": 0.5}
    assert reference_shares("skin_tone_group", None) is None
    assert len(ANNOTATED_GENDER) == 100 and set(ANNOTATED_GENDER) == {"f", "m", "?"}
    with pytest.raises(ValueError, match="sum to 1"):
        BiasConfig(reference={"perceived_gender": {"male": 0.7}})


@pytest.mark.slow
def test_quality_parity_on_the_labelled_set() -> None:
    from actors.faces import FaceAnalyzer
    from jobs.audit.bias import labelled_outcomes

    outcomes = labelled_outcomes(FaceAnalyzer(device="cpu", threads=1))
    assert len(outcomes) == ANNOTATED_GENDER.count("f") + ANNOTATED_GENDER.count("m")
    assert outcomes["detected"].mean() > 0.9
    rows = _by_subject(quality_parity(outcomes, CONFIG, model="centerface"))
    assert rows["quality:gender_agreement:male"]["value"] > 0.7
