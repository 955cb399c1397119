"""The remaster stage as a column of asset rows.

`Remasterer` maps an asset to its output rows (master, access copy, or one
failed row). Here those rows ride on the asset's own row, so they are staged,
committed and resumed together with the asset's shots.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa

from actors.keyframes import append_columns
from actors.remaster import Remasterer
from catalog.schema import REMASTERED


class AssetRemaster:
    """Adds `remasters` to asset rows; the restoration and encoding happen in `Remasterer`."""

    def __init__(self, **remasterer: Any) -> None:
        self.remasterer = Remasterer(**remasterer)

    def __call__(self, batch: pa.Table) -> pa.Table:
        outputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.remasterer(batch.select(["asset_id", "uri"])).to_pylist():
            outputs[row["asset_id"]].append(row)
        ids = batch["asset_id"].to_pylist()
        return append_columns(batch, REMASTERED, {"remasters": [outputs.get(a, []) for a in ids]})
