"""Near-duplicate grouping: shots that are the same material, across assets and copies.

Archives hold the same footage many times: re-transfers, broadcast copies,
re-encodes at other sizes, trims. Two shots are taken to be the same material
when their keyframes are

- nearly the same picture by perceptual hash (``actors.phash``: luma DCT,
  survives resizing, re-encoding and brightness shifts), or
- very close in the visual embedding *and* moderately close by hash: a crop
  moves the hash by up to 30 bits but the embedding little, while different
  pictures that embed alike (two patches of one texture, two faces) are
  mostly further apart by hash.

Candidate pairs come from FAISS: a Hamming range search over the hashes for
the first rule, an inner-product range search over the embeddings for the
second. Both rules are selective, so the candidates grow with the number of
true copies, not with n². Up to ``EXACT_LIMIT`` shots the searches are exact
brute force in FAISS's SIMD code (1.4 s for 5,000 shots, 18 s for 20,000 on
two busy cores); past it, multi-index hashing (still exact for the hash rule)
and HNSW neighbours (approximate, ``KNN`` nearest) keep the search
sub-quadratic; they cost more at small n (43 s at 20,000), hence the switch.
Groups are the connected components of the accepted pairs (union-find); a
group is named by its smallest ``shot_id``, so the name is the same on every
run over the same shots.

Thresholds: ``tests/benchmarks/bench_duplicates.py`` makes re-encoded,
resized, cropped, brightness-shifted, combined and offset-keyframe copies of
the bundled clips' shots and stills, mixed with look-alikes (halves of
texture-like stills, small faces of different people). Copies that keep the
framing stay within 8 bits; crops move 0-32 bits and keep cosine >= 0.81;
but look-alikes come as close as 12 bits and cosine 0.96, so the two signals
overlap and no threshold separates everything. The constants are the best
of a grid on one half of the originals by F0.5 (precision counts double: a
false merge hides distinct material, a missed copy only costs storage), and
the benchmark reports them on the other half, which they never saw: pairwise
precision 1.00, recall 0.86 there; 0.97 / 0.90 on the whole set, where the
hash alone gives 1.00 / 0.73 (it misses most crops).

Limits: transitivity can chain A~B~C; two shots of one static set-up (an
interview cut into pieces) are the same picture to these signals and are
grouped; blank frames all look alike, so pass ``exclude`` for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np

from actors.phash import hamming

MAX_HAMMING = 10
"""Hash distance (of 64 bits) at or below which two keyframes are the same picture."""
MIN_COSINE = 0.92
"""Visual cosine at or above which a pair within LOOSE_HAMMING is the same material."""
LOOSE_HAMMING = 24
"""How far apart the hashes of a visually near-identical pair may be (crops, trims)."""
EXACT_LIMIT = 50_000
KNN = 32
_HASH_SPLITS = 4  # multi-index hashing: 4 substrings of 16 bits


def group_duplicates(
    shot_ids: Sequence[str],
    phashes: Sequence[int | None],
    visual_embeddings: np.ndarray | Sequence[Sequence[float] | None],
    *,
    max_hamming: int = MAX_HAMMING,
    min_cosine: float = MIN_COSINE,
    loose_hamming: int = LOOSE_HAMMING,
    exclude: Sequence[bool] | None = None,
    exact_limit: int = EXACT_LIMIT,
) -> dict[str, str]:
    """``dup_group`` for every shot: the smallest shot_id of the material it is a copy of (itself if none).

    ``visual_embeddings`` are unit-length rows (``catalog.schema.VISUAL``);
    a shot missing its hash or embedding (no keyframe) can only match by the
    signal it has. ``exclude`` marks shots never to group (e.g. ``is_blank``).
    """
    n = len(shot_ids)
    if len(phashes) != n or len(visual_embeddings) != n or (exclude is not None and len(exclude) != n):
        raise ValueError("shot_ids, phashes, visual_embeddings (and exclude) must have one entry per shot")
    skip = list(exclude) if exclude is not None else [False] * n
    hashes = {i: h for i, h in enumerate(phashes) if h is not None and not skip[i]}
    vectors_of = {i: v for i, v in enumerate(visual_embeddings) if v is not None and not skip[i]}
    hashed, embedded = list(hashes), list(vectors_of)
    codes = np.zeros(n, np.uint64)
    codes[hashed] = [int(h) for h in hashes.values()]
    vectors = _matrix(list(vectors_of.values()))

    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    for a, b in _hash_pairs(codes[hashed], max_hamming, exact_limit):
        join(hashed[a], hashed[b])
    has_hash = set(hashed)
    for a, b in _vector_pairs(vectors, min_cosine, exact_limit):
        i, j = embedded[a], embedded[b]
        if i in has_hash and j in has_hash and hamming(codes[i], codes[j]) <= loose_hamming:
            join(i, j)

    name: dict[int, str] = {}
    for i in range(n):
        r = root(i)
        name[r] = min(name.get(r, shot_ids[i]), shot_ids[i])
    return {shot_ids[i]: name[root(i)] for i in range(n)}


def _hash_pairs(codes: np.ndarray, max_hamming: int, exact_limit: int) -> list[tuple[int, int]]:
    """Index pairs (a < b) of hashes at most ``max_hamming`` bits apart."""
    if len(codes) < 2:
        return []
    packed = np.ascontiguousarray(codes.astype(np.uint64)).view(np.uint8).reshape(-1, 8)
    index: faiss.IndexBinary
    if len(codes) <= exact_limit:
        index = faiss.IndexBinaryFlat(64)
    else:
        # Exact too: a pair within r bits agrees within r // 4 bits on one of the four substrings.
        multihash = faiss.IndexBinaryMultiHash(64, _HASH_SPLITS, 64 // _HASH_SPLITS)
        multihash.nflip = max_hamming // _HASH_SPLITS
        index = multihash
    index.add(packed)
    limits, _, found = index.range_search(packed, max_hamming + 1)  # radius is exclusive
    return _upper_pairs(limits, found)


def _vector_pairs(vectors: np.ndarray, min_cosine: float, exact_limit: int) -> list[tuple[int, int]]:
    """Index pairs (a < b) of vectors with inner product at least ``min_cosine``."""
    if len(vectors) < 2:
        return []
    if len(vectors) <= exact_limit:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        limits, _, found = index.range_search(vectors, min_cosine - 1e-6)
        pairs = _upper_pairs(limits, found)
    else:
        graph = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        graph.add(vectors)
        _, neighbours = graph.search(vectors, min(KNN, len(vectors)))
        pairs = sorted(
            {
                (min(a, int(b)), max(a, int(b)))
                for a, row in enumerate(neighbours)
                for b in row
                if b >= 0 and b != a
            }
        )
    return [(a, b) for a, b in pairs if float(vectors[a] @ vectors[b]) >= min_cosine]


def _upper_pairs(limits: np.ndarray, found: np.ndarray) -> list[tuple[int, int]]:
    return [(a, int(b)) for a in range(len(limits) - 1) for b in found[limits[a] : limits[a + 1]] if b > a]


def _matrix(rows: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    if len(rows) == 0:
        return np.zeros((0, 1), np.float32)
    return np.ascontiguousarray(np.asarray([np.asarray(r, np.float32) for r in rows], np.float32))
