"""Near-duplicate groups over the whole catalog, refreshed after each commit.

Grouping needs every shot at once (a copy made today is a copy of a shot
catalogued years ago), so it is derived from the committed snapshot like an
index, and written whole in one commit.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

from actors.duplicates import group_duplicates
from catalog.iceberg import read, replace_all
from catalog.schema import DUP_GROUPS, VISUAL_SPACE


def refresh_dup_groups(catalog: SqlCatalog, *, run_id: str) -> int:
    """Regroup every shot; returns how many shots have at least one duplicate."""
    shots = read(catalog, "shots", columns=("shot_id", "phash", "is_blank")).to_pylist()
    vectors = read(
        catalog,
        "embeddings",
        columns=("shot_id", "vector"),
        row_filter=EqualTo(term="space", value=VISUAL_SPACE),
    )
    by_shot = dict(zip(vectors["shot_id"].to_pylist(), vectors["vector"].to_pylist(), strict=True))
    ids = [s["shot_id"] for s in shots]
    # phash is stored as a signed long (Iceberg has no unsigned types): the same 64 bits
    hashes = [None if s["phash"] is None else int(np.int64(s["phash"]).view(np.uint64)) for s in shots]
    groups = (
        group_duplicates(
            ids, hashes, [by_shot.get(i) for i in ids], exclude=[bool(s["is_blank"]) for s in shots]
        )
        if ids
        else {}
    )
    sizes = Counter(groups.values())
    rows = pa.Table.from_pylist(
        [
            {"shot_id": shot, "dup_group": group, "group_size": sizes[group], "run_id": run_id}
            for shot, group in groups.items()
        ],
        schema=DUP_GROUPS,
    )
    replace_all(catalog, "dup_groups", rows, run_id=run_id)
    return sum(size for size in sizes.values() if size > 1)
