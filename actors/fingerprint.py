"""Fingerprinting: an asset is named by the sha256 of its bytes.

Naming by content makes runs idempotent (the same file found under a new
path, or again tomorrow, is the same asset) at the price of reading every new
file once, which this stage spreads over the cluster.
"""

from __future__ import annotations

import hashlib
from typing import Any

import fsspec
import pyarrow as pa

CHUNK = 8 << 20

FINGERPRINTED = pa.schema(
    [
        pa.field("uri", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("version", pa.string()),
        pa.field("asset_id", pa.string()),  # null when the file could not be read
        pa.field("error", pa.string()),
    ]
)


def sha256_of(uri: str, storage_options: dict[str, Any] | None = None) -> str:
    digest = hashlib.sha256()
    with fsspec.open(uri, "rb", **(storage_options or {})) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Fingerprinter:
    """Adds `asset_id` to rows of `uri`, `size_bytes`, `version`."""

    def __init__(self, *, storage_options: dict[str, Any] | None = None) -> None:
        self.storage_options = storage_options or {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = []
        for row in batch.select(["uri", "size_bytes", "version"]).to_pylist():
            try:
                rows.append({**row, "asset_id": sha256_of(row["uri"], self.storage_options), "error": None})
            except OSError as exc:
                rows.append({**row, "asset_id": None, "error": f"cannot read {row['uri']}: {exc}"})
        return pa.Table.from_pylist(rows, schema=FINGERPRINTED)
