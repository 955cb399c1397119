"""Text-search benchmark: do typed queries find the shots that answer them?

Run ``python tests/benchmarks/bench_text_search.py`` (``--json`` for machine-readable output,
``--misses`` to list the queries whose first relevant shot is not first, ``--set held-out`` for the
held-out set, ``--cache FILE`` to keep the understanding stages' output between runs).

Two sets:

- ``tuning`` (``data/text_queries.yaml``): 28 shots (keyframes of the bundled clips' natural shots
  and skimage stills, see ``media.py``) and 40 queries a person would type, with the shots that
  answer each, judged by looking at the pictures. Everything in archivist that was tuned (the
  caption thresholds, the label texts, the query expansion's weight) was tuned on this set.
- ``held-out`` (``data/held_out_queries.yaml``): 8 pictures no part of archivist was tuned on
  (``held_out_keyframes`` below: scikit-learn's photographs, scikit-image test images media.py
  does not use, sklearn's digits drawn as a sheet, lfw faces tiled, a fish drawn here) and 19
  queries written for them before anything was tuned, searched among all 36 shots.

The bundled media holds no speech, so transcripts play no part here
(``tests/actors/test_text_embed.py`` covers speech in descriptions).

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

Queries are expanded through the concept hierarchy as the search engine expands them
(``indexes.query.expanded_query_vector``: "a fish" moves towards every fish label's text);
``rrf, no expansion`` scores the plain query vectors for comparison.

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
import pyarrow.parquet
import yaml
from media import jpeg, keyframes

from actors.concepts import load_hierarchy
from actors.models import ModelLoadError
from actors.text_embed import TextEmbedder
from actors.visual import VisualTagger
from indexes.query import expanded_query_vector

DATA = Path(__file__).parent / "data"
QUERIES = DATA / "text_queries.yaml"
HELD_OUT = DATA / "held_out_queries.yaml"
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


def held_out_keyframes() -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
    """The held-out pictures, named as ``data/held_out_queries.yaml`` names them, in a fixed order."""
    import importlib.util

    from PIL import Image, ImageDraw
    from sklearn.datasets import load_digits

    def package_file(package: str, *parts: str) -> Path:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"the held-out set needs the package {package!r}")
        return Path(spec.submodule_search_locations[0], *parts)

    def rgb(path: Path, scale: int = 1) -> np.ndarray:
        image = Image.open(path).convert("RGB")
        return np.asarray(image.resize((image.width * scale, image.height * scale), Image.BICUBIC))

    digits = load_digits().images[:120]  # 8×8, 0..16: a sheet of 10 rows of 12, dark ink on white
    sheet = np.ones((10 * 40, 12 * 40), np.float64)
    for i, digit in enumerate(digits):
        cell = np.kron(1.0 - digit / 16.0, np.ones((4, 4)))
        row, col = divmod(i, 12)
        sheet[row * 40 + 4 : row * 40 + 36, col * 40 + 4 : col * 40 + 36] = cell
    import skimage.data

    faces = skimage.data.lfw_subset()[:36]  # 25×25 face crops, 0..1: a 6×6 mosaic, 4× up
    mosaic = np.block([[np.kron(faces[r * 6 + c], np.ones((4, 4))) for c in range(6)] for r in range(6)])
    fish = Image.new("RGB", (480, 360), (40, 110, 200))
    draw = ImageDraw.Draw(fish)
    draw.ellipse((110, 120, 330, 250), fill=(250, 140, 20), outline=(120, 60, 0), width=4)
    draw.polygon([(320, 185), (420, 115), (420, 255)], fill=(240, 120, 10), outline=(120, 60, 0))
    draw.ellipse((150, 160, 180, 190), fill="white", outline="black", width=3)
    draw.ellipse((160, 170, 172, 182), fill="black")
    draw.arc((120, 200, 170, 230), 300, 60, fill=(120, 60, 0), width=3)
    for x, y, r in ((90, 100, 12), (70, 60, 8), (95, 30, 6)):
        draw.ellipse((x - r, y - r, x + r, y + r), outline="white", width=2)
    skimage_dir = package_file("skimage", "data")
    pictures = {
        "held:china": rgb(package_file("sklearn", "datasets", "images", "china.jpg")),
        "held:flower": rgb(package_file("sklearn", "datasets", "images", "flower.jpg")),
        "held:chessboard": rgb(skimage_dir / "chessboard_RGB.png", 2),
        "held:phantom": rgb(skimage_dir / "phantom.png"),
        "held:digits": np.dstack([(sheet * 255).astype(np.uint8)] * 3),
        "held:faces": np.dstack([(mosaic * 255).astype(np.uint8)] * 3),
        "held:fish": np.asarray(fish),
        "held:vessels": rgb(skimage_dir / "microaneurysms.png", 4),
    }
    return {name: (image, [image] * 5) for name, image in pictures.items()}


def understood(names: list[str], cache: Path | None = None) -> tuple[pa.Table, list[str], float]:
    """The named keyframes through the visual and other understanding stages (see the module doc),
    read from ``cache`` when it holds these shots; with the stages that did not load."""
    if cache is not None and cache.exists():
        table = pa.parquet.read_table(cache)
        rows = {name: i for i, name in enumerate(table.column("shot_id").to_pylist())}
        if set(names) <= set(rows):
            return table.take([rows[n] for n in names]), [], 0.0
    started = time.perf_counter()
    frames = {**keyframes(), **held_out_keyframes()}
    unknown = set(names) - set(frames)
    if unknown:
        raise SystemExit(f"the query sets name shots that are not made here: {sorted(unknown)}")
    batch = pa.table({"shot_id": names, "keyframe_jpeg": pa.array([jpeg(frames[n][0]) for n in names])})
    batch = VisualTagger(device="cpu")(batch)
    stages, missing = understanding_stages()
    for stage in stages:
        batch = stage(batch)
    if cache is not None and not missing:
        pa.parquet.write_table(batch, cache)
    return batch, missing, time.perf_counter() - started


def query_set(name: str) -> tuple[list[str], list[dict]]:
    """The shots searched and the queries of a set: the held-out set searches the tuning shots too."""
    tuning = yaml.safe_load(QUERIES.read_text(encoding="utf-8"))
    if name == "tuning":
        return list(tuning["shots"]), tuning["queries"]
    held = yaml.safe_load(HELD_OUT.read_text(encoding="utf-8"))
    return [*tuning["shots"], *held["shots"]], held["queries"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--set", choices=("tuning", "held-out"), default="tuning")
    parser.add_argument("--cache", type=Path, help="a parquet file keeping the stages' output")
    args = parser.parse_args()
    started = time.perf_counter()
    names, wanted = query_set(args.set)
    batch, missing, stage_seconds = understood(names, args.cache)

    embedder = TextEmbedder(device="cpu")
    index = {name: i for i, name in enumerate(names)}
    relevant = [[index[r] for r in q["relevant"]] for q in wanted]
    texts = [q["query"] for q in wanted]
    plain = embedder.encode(texts)
    hierarchy, cache = load_hierarchy(), {}
    queries = np.stack([expanded_query_vector(t, embedder.encode, hierarchy, cache) for t in texts])
    configurations = {"tags only": batch.drop_columns([c for c in UNDERSTANDING if c in batch.column_names]),
                      "all stages": batch}
    report: dict = {"set": args.set, "shots": len(names), "queries": len(relevant), "stages_missing": missing,
                    "results": {}}
    misses = {}
    for label, table in configurations.items():
        described = embedder(table)
        text = _vectors(described, "text_embedding", embedder.dim)
        concept = _vectors(described, "concept_embedding", embedder.dim)
        ranked = methods(queries, text, concept)
        ranked["rrf, no expansion"] = methods(plain, text, concept)["rrf"]
        report["results"][label] = {method: evaluate(rank, relevant) for method, rank in ranked.items()}
        misses[label] = {
            method: [
                (q["query"], int(min(rank[i][j] for j in right)), names[int(np.argmin(rank[i]))])
                for i, (q, right) in enumerate(zip(wanted, relevant, strict=True))
                if min(rank[i][j] for j in right) > 1
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
    print(f"{args.set} set: {report['shots']} shots, {report['queries']} queries")
    for line in missing:
        print(f"  stage not loaded: {line}")
    print(f"{'configuration':12s} {'method':18s} {'recall@5':>9s} {'MRR':>6s}")
    for label, results in report["results"].items():
        for method, figures in results.items():
            print(f"{label:12s} {method:18s} {figures['recall@5']:9.3f} {figures['mrr']:6.3f}")
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
