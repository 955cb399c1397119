"""Caption benchmark: are the nouns a caption names in the picture, and how often does it name none?

Run ``python tests/benchmarks/bench_captions.py`` (``--json``; ``--calibrate`` to sweep the
thresholds on the calibration set; ``--cache FILE`` to keep the understanding stages' output, the
same file as bench_text_search.py's).

Two labelled sets, kept apart:

- calibration: the 28 pictures of ``data/text_queries.yaml`` with the things in each
  (``data/caption_labels.yaml``). ``--calibrate`` sweeps ``CONCEPT_MIN_SCORE`` (summed tag score at
  which a concept is named) and ``OBJECT_MIN_SCORE`` (detector score at which an object is named)
  over it; ``actors.describe`` ships the pair chosen there.
- evaluation: the 8 held-out pictures of ``data/held_out_queries.yaml`` (their ``nouns``), which
  nothing was tuned on. Only its figures are the measurement.

Every keyframe goes through the real understanding stages (see bench_text_search.py), then
``actors.describe.compose``. A noun is right when the labels list it, or when it is a WordNet
hypernym of a listed thing ("an animal" for a listed cat). Noun precision counts each kind a
caption names once ("two people" is one noun); the no-object share is the share of pictures whose
caption names nothing (vague but true: "A black-and-white shot.").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from bench_text_search import DATA, HELD_OUT, QUERIES, understood

from actors.concepts import ConceptHierarchy, load_hierarchy
from actors.describe import CONCEPT_MIN_SCORE, OBJECT_MIN_SCORE, Noun, compose

LABELS = DATA / "caption_labels.yaml"
CONCEPT_GRID = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
OBJECT_GRID = [0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]
PRECISION_GOAL = 0.9


def labelled_sets() -> dict[str, dict[str, list[str]]]:
    calibration = yaml.safe_load(LABELS.read_text(encoding="utf-8"))["shots"]
    tuning = set(yaml.safe_load(QUERIES.read_text(encoding="utf-8"))["shots"])
    if set(calibration) != tuning:
        raise SystemExit(f"{LABELS} must label exactly the shots of {QUERIES}")
    held = yaml.safe_load(HELD_OUT.read_text(encoding="utf-8"))["shots"]
    return {"calibration": calibration, "evaluation": {name: shot["nouns"] for name, shot in held.items()}}


def is_right(noun: Noun, truth: list[str], hierarchy: ConceptHierarchy) -> bool:
    """Listed, or a hypernym of something listed."""
    listed = {t.lower() for t in truth}
    if noun.name.lower() in listed:
        return True
    said = set(hierarchy.find(noun.name)) | ({noun.concept} if noun.concept else set())
    return any(said & set(hierarchy.ancestors(c)) for t in truth for c in hierarchy.find(t))


def score(
    rows: list[dict], truth: dict[str, list[str]], hierarchy: ConceptHierarchy, **thresholds: float
) -> dict:
    named = right = empty = 0
    captions, wrong = {}, []
    for row in rows:
        caption = compose(row, hierarchy=hierarchy, **thresholds)
        nouns = caption.nouns if caption else ()
        captions[row["shot_id"]] = caption.text if caption else None
        empty += not nouns
        for noun in nouns:
            named += 1
            if is_right(noun, truth[row["shot_id"]], hierarchy):
                right += 1
            else:
                wrong.append(f"{row['shot_id']}: {noun.name} ({noun.confidence:.2f})")
    return {
        "noun_precision": right / named if named else 1.0,
        "nouns": named,
        "right_nouns": right,
        "no_object_share": empty / len(rows),
        "wrong": wrong,
        "captions": captions,
    }


def calibrate(rows: list[dict], truth: dict[str, list[str]], hierarchy: ConceptHierarchy) -> dict:
    """The pair that names the most right nouns at the goal's precision (ties: the lower pair)."""
    grid = []
    for concept in CONCEPT_GRID:
        for obj in OBJECT_GRID:
            figures = score(rows, truth, hierarchy, concept_min_score=concept, object_min_score=obj)
            grid.append(
                {
                    "concept_min_score": concept,
                    "object_min_score": obj,
                    **{k: figures[k] for k in ("noun_precision", "nouns", "right_nouns", "no_object_share")},
                }
            )
    meeting = [g for g in grid if g["noun_precision"] >= PRECISION_GOAL] or grid
    best = max(meeting, key=lambda g: (g["right_nouns"], -g["concept_min_score"], -g["object_min_score"]))
    return {"grid": grid, "chosen": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--cache", type=Path, help="a parquet file keeping the stages' output")
    args = parser.parse_args()
    sets = labelled_sets()
    names = [*sets["calibration"], *sets["evaluation"]]
    batch, missing, seconds = understood(names, args.cache)
    rows = {row["shot_id"]: row for row in batch.to_pylist()}
    hierarchy = load_hierarchy()
    report: dict = {
        "stages_missing": missing,
        "stage_seconds": round(seconds, 1),
        "thresholds": {"concept_min_score": CONCEPT_MIN_SCORE, "object_min_score": OBJECT_MIN_SCORE},
    }
    if args.calibrate:
        report["sweep"] = calibrate(
            [rows[n] for n in sets["calibration"]], sets["calibration"], hierarchy
        )
    for name, truth in sets.items():
        report[name] = score([rows[n] for n in truth], truth, hierarchy)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for line in missing:
        print(f"  stage not loaded: {line}")
    if args.calibrate:
        print("calibration sweep (concept, object): precision, right/named, no-object share")
        for g in report["sweep"]["grid"]:
            print(
                f"  {g['concept_min_score']:.2f} {g['object_min_score']:.2f}: {g['noun_precision']:.3f} "
                f"{g['right_nouns']}/{g['nouns']} {g['no_object_share']:.3f}"
            )
        print(f"chosen: {report['sweep']['chosen']}")
    print(f"shipped thresholds: {report['thresholds']}")
    for name in sets:
        figures = report[name]
        print(
            f"\n{name} ({len(sets[name])} pictures): noun precision {figures['noun_precision']:.3f} "
            f"({figures['right_nouns']}/{figures['nouns']}), no-object share {figures['no_object_share']:.3f}"
        )
        for line in figures["wrong"]:
            print(f"  wrong: {line}")
        for shot, caption in figures["captions"].items():
            print(f"  {shot}: {caption}")


if __name__ == "__main__":
    main()
