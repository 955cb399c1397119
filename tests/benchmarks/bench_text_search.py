"""Text-search benchmark: do typed queries find the shots that answer them?

Run ``python tests/benchmarks/bench_text_search.py`` (``--json`` for machine-readable output,
``--misses`` to list the queries whose first relevant shot is not first).

The set is ``data/text_queries.yaml``: 28 shots (keyframes of the bundled clips' natural shots and
skimage stills, see ``media.py``) and 40 queries a person would type, with the shots that answer
each, judged by looking at the pictures. The bundled media holds no speech, so transcripts play no
part here (``tests/actors/test_text_embed.py`` covers speech in descriptions).

Every keyframe goes through the understanding stages as the pipeline runs them: stored as a JPEG
(quality 90), then ImageNet tags (``actors.visual``), and where they load, COCO objects
(``actors.objects``), on-screen text (``actors.ocr``), faces (``actors.faces``) and technical tags
(``actors.technical``); then ``actors.text_embed`` writes captions, descriptions and both vectors.
Two configurations are scored: ``tags only`` (the visual stage alone) and ``all stages``.

Methods, each ranking all 28 shots by the query's MiniLM vector:

- ``text``: cosine with the description's embedding
- ``concept``: cosine with the ConSE vector (the image placed in the text space by its labels)
- ``rrf``: reciprocal-rank fusion of the two rankings, 1/(60 + rank) summed
- ``sum``: the sum of the two cosines

recall@5 is the share of a query's relevant shots in its top 5, averaged over queries; MRR the
mean of 1 / rank of the first relevant shot.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml
from media import jpeg, keyframes

from actors.models import ModelLoadError
from actors.text_embed import TextEmbedder
from actors.visual import VisualTagger

QUERIES = Path(__file__).parent / "data" / "text_queries.yaml"
RRF_K = 60
UNDERSTANDING = ("objects", "texts", "faces", "technical")


def understanding_stages() -> tuple[list, list[str]]:
    """The other understanding stages that load here, and why any did not."""
    stages, missing = [], []
    for module, name, kwargs in (
        ("actors.objects", "ObjectDetector", {"device": "cpu"}),
        ("actors.ocr", "TextReader", {"device": "cpu"}),
        ("actors.faces", "FaceAnalyzer", {"device": "cpu"}),
        ("actors.technical", "TechnicalTagger", {}),
    ):
        try:
            stages.append(getattr(__import__(module, fromlist=[name]), name)(**kwargs))
        except (ImportError, AttributeError, ModelLoadError) as exc:
            missing.append(f"{module}: {exc}")
    return stages, missing


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every shot per query (row), best first."""
    order = np.argsort(-scores, axis=1, kind="stable")
    result = np.empty_like(order)
    rows = np.arange(scores.shape[0])[:, None]
    result[rows, order] = np.arange(1, scores.shape[1] + 1)
    return result


def evaluate(rank: np.ndarray, relevant: list[list[int]]) -> dict[str, float]:
    recall, reciprocal = [], []
    for row, wanted in zip(rank, relevant, strict=True):
        recall.append(sum(row[i] <= 5 for i in wanted) / len(wanted))
        reciprocal.append(1.0 / min(row[i] for i in wanted))
    return {"recall@5": float(np.mean(recall)), "mrr": float(np.mean(reciprocal))}


def methods(queries: np.ndarray, text: np.ndarray, concept: np.ndarray) -> dict[str, np.ndarray]:
    """Each method's rank of every shot for every query."""
    text_scores, concept_scores = queries @ text.T, queries @ concept.T
    text_rank, concept_rank = ranks(text_scores), ranks(concept_scores)
    fused = 1.0 / (RRF_K + text_rank) + 1.0 / (RRF_K + concept_rank)
    return {"text": text_rank, "concept": concept_rank, "rrf": ranks(fused),
            "sum": ranks(text_scores + concept_scores)}


def _vectors(table: pa.Table, column: str, dim: int) -> np.ndarray:
    """Rows as a matrix; a shot without a vector (nothing seen) scores 0 against every query."""
    rows = table.column(column).to_pylist()
    return np.array([v if v is not None else [0.0] * dim for v in rows], np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--misses", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    spec = yaml.safe_load(QUERIES.read_text(encoding="utf-8"))
    frames = keyframes()
    names = list(spec["shots"])
    unknown = set(names) - set(frames)
    if unknown:
        raise SystemExit(f"{QUERIES} names shots media.py does not make: {sorted(unknown)}")
    batch = pa.table({"shot_id": names, "keyframe_jpeg": pa.array([jpeg(frames[n][0]) for n in names])})
    batch = VisualTagger(device="cpu")(batch)
    stages, missing = understanding_stages()
    for stage in stages:
        batch = stage(batch)
    stage_seconds = time.perf_counter() - started

    embedder = TextEmbedder(device="cpu")
    index = {name: i for i, name in enumerate(names)}
    relevant = [[index[r] for r in q["relevant"]] for q in spec["queries"]]
    queries = embedder.encode([q["query"] for q in spec["queries"]])
    configurations = {"tags only": batch.drop_columns([c for c in UNDERSTANDING if c in batch.column_names]),
                      "all stages": batch}
    report: dict = {"shots": len(names), "queries": len(relevant), "stages_missing": missing, "results": {}}
    misses = {}
    for label, table in configurations.items():
        described = embedder(table)
        text = _vectors(described, "text_embedding", embedder.dim)
        concept = _vectors(described, "concept_embedding", embedder.dim)
        ranked = methods(queries, text, concept)
        report["results"][label] = {method: evaluate(rank, relevant) for method, rank in ranked.items()}
        misses[label] = {
            method: [
                (q["query"], int(min(rank[i][j] for j in wanted)), names[int(np.argmin(rank[i]))])
                for i, (q, wanted) in enumerate(zip(spec["queries"], relevant, strict=True))
                if min(rank[i][j] for j in wanted) > 1
            ]
            for method, rank in ranked.items()
        }
        report.setdefault("captions", {})[label] = dict(
            zip(names, described.column("caption").to_pylist(), strict=True)
        )
    report["seconds"] = {"stages": round(stage_seconds, 1), "total": round(time.perf_counter() - started, 1)}
    if args.json:
        print(json.dumps({**report, "misses": misses}, indent=2))
        return
    print(f"{report['shots']} shots, {report['queries']} queries")
    for line in missing:
        print(f"  stage not loaded: {line}")
    print(f"{'configuration':12s} {'method':8s} {'recall@5':>9s} {'MRR':>6s}")
    for label, results in report["results"].items():
        for method, figures in results.items():
            print(f"{label:12s} {method:8s} {figures['recall@5']:9.3f} {figures['mrr']:6.3f}")
    if args.misses:
        for label, by_method in misses.items():
            for method, rows in by_method.items():
                print(f"\n{label} / {method}: first relevant shot below rank 1")
                for query, rank, top in rows:
                    print(f"  {query!r}: rank {rank} (top: {top})")
        print("\ncaptions (all stages):")
        for name, caption in report["captions"]["all stages"].items():
            print(f"  {name}: {caption}")
    print(f"{report['seconds']} s")


if __name__ == "__main__":
    main()
