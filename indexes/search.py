"""Finding shots like a given image or shot in the current index."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import In

from catalog.iceberg import read
from catalog.settings import Settings
from indexes.build import read_index_files
from indexes.store import IndexVersion, current


class UnknownShotError(LookupError):
    pass


@dataclass(frozen=True)
class Hit:
    shot_id: str
    asset_id: str
    uri: str
    start_s: float
    end_s: float
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Searcher:
    """The space's current index, loaded once, answering nearest-neighbour queries
    with catalog rows."""

    def __init__(self, settings: Settings, catalog: SqlCatalog, *, space: str = "visual") -> None:
        self.catalog = catalog
        self.version: IndexVersion = current(settings, space)
        self.index, self.shot_ids = read_index_files(settings, self.version)
        self.position = {shot: i for i, shot in enumerate(self.shot_ids)}

    def by_vector(
        self, vector: np.ndarray, *, top: int = 10, exclude: frozenset[str] = frozenset()
    ) -> list[Hit]:
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        k = min(top + len(exclude), self.index.ntotal)
        scores, positions = self.index.search(query, k)
        ranked = [
            (self.shot_ids[p], float(s)) for p, s in zip(positions[0], scores[0], strict=True) if p >= 0
        ]
        ranked = [(shot, score) for shot, score in ranked if shot not in exclude][:top]
        return self._join(ranked)

    def by_shot(self, shot_id: str, *, top: int = 10) -> list[Hit]:
        if shot_id not in self.position:
            raise UnknownShotError(
                f"shot {shot_id!r} is not in the {self.version.space} index (snapshot "
                f'{self.version.snapshot_id}); check the id with: archivist sql "SELECT shot_id FROM shots"'
            )
        vector = self.index.reconstruct(self.position[shot_id])
        return self.by_vector(vector, top=top, exclude=frozenset({shot_id}))

    def _join(self, ranked: list[tuple[str, float]]) -> list[Hit]:
        if not ranked:
            return []
        ids = [shot for shot, _ in ranked]
        shots = read(
            self.catalog,
            "shots",
            columns=("shot_id", "asset_id", "start_s", "end_s"),
            row_filter=In("shot_id", ids),
        ).to_pylist()
        by_shot = {row["shot_id"]: row for row in shots}
        asset_ids = sorted({row["asset_id"] for row in shots})
        uris = (
            {
                row["asset_id"]: row["uri"]
                for row in read(
                    self.catalog, "assets", columns=("asset_id", "uri"), row_filter=In("asset_id", asset_ids)
                ).to_pylist()
            }
            if asset_ids
            else {}
        )
        hits = []
        for shot, score in ranked:
            row = by_shot.get(shot)
            if row is None:  # the index is older than a commit that removed the shot
                continue
            hits.append(
                Hit(shot, row["asset_id"], uris.get(row["asset_id"], ""), row["start_s"], row["end_s"], score)
            )
        return hits
