"""The commit: a run's spooled rows become the catalog's, replacing only what its stages own.

Each table gets one Iceberg commit, which removes the rows this run's stages
own for the run's assets and adds the new ones, so readers see the old rows or
the new, never both. What other stages own stays as it was: a run of only
`remaster` leaves an asset's shots and tags alone, a run of only the safety
model rewrites the safety columns of the shots and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import And, BooleanExpression, In

from actors.stage import Owned, PlanError, Stage, registry
from catalog.iceberg import read, replace_matching
from catalog.schema import PROVENANCE, ROW_KEYS, TABLES
from catalog.state import retry_database
from catalog.versions import committing, record_version
from jobs.rows import conform, join_columns

STAMP = [f.name for f in PROVENANCE]


def commit_order(stages: list[type[Stage]]) -> list[str]:
    """The tables these stages own, `assets` last: a reader that finds an asset row finds its
    shots, tags and vectors too."""
    owned = {o.table for s in stages for o in s.owns}
    return sorted(owned - {"assets"}) + (["assets"] if "assets" in owned else [])


def commit_tables(
    catalog: SqlCatalog,
    tables: dict[str, pa.Table],
    stages: list[type[Stage]],
    asset_ids: Iterable[str],
    *,
    run_id: str,
) -> dict[str, int | None]:
    """Commit the run's rows of each table its stages own, then record the catalog version
    that holds them all (readers see none of it before); the new snapshot id of each table."""
    ids = sorted(set(asset_ids))
    if not ids:
        return {}
    snapshots = {}
    url = catalog.properties.get("uri", "")  # a database that drops out mid-commit is waited for
    with committing(catalog):
        for name in commit_order(stages):
            rows, replacing = retry_database(
                partial(_replacement, catalog, name, tables.get(name), stages, ids),
                url,
                what=f"reading table {name} to commit",
            )
            if rows is not None:
                snapshots[name] = replace_matching(catalog, name, rows, replacing, run_id=run_id)
        retry_database(lambda: record_version(catalog, run_id), url, what="recording the catalog version")
    return snapshots


def _replacement(
    catalog: SqlCatalog, name: str, rows: pa.Table | None, stages: list[type[Stage]], ids: list[str]
) -> tuple[pa.Table | None, BooleanExpression]:
    """The rows to write to table `name` and the rows they replace."""
    schema = TABLES[name]
    of_assets = In(term="asset_id", literals=ids)
    ran = {s.name for s in stages}
    claims = [(s, o) for s in registry().values() for o in s.owns if o.table == name]
    mine = [o for s, o in claims if s.name in ran]
    if any(o.where is not None for o in mine):
        column = next(o.where[0] for o in mine if o.where is not None)
        values = sorted({v for o in mine if o.where is not None for v in o.where[1]})
        return _whole(rows, schema), And(of_assets, In(term=column, literals=values))
    key = ROW_KEYS.get(name)
    if any(o.columns is None for o in mine):
        new = _whole(rows, schema)
        others = _columns_of([o for s, o in claims if s.name not in ran])
        if others and key is None:
            raise PlanError(f"table {name} has stages owning its columns but no row key in ROW_KEYS")
        if others and key is not None and new.num_rows:
            kept = read(catalog, name, columns=(key, *others), row_filter=of_assets, current=True)
            new = conform(join_columns(new, kept, key), schema)
        return new, of_assets
    if rows is None or key is None:
        return None, of_assets
    # Only stages that own columns of these rows ran: their columns, on the rows as they are.
    existing = read(catalog, name, row_filter=of_assets, current=True)
    return conform(join_columns(existing, rows.drop_columns(STAMP), key), schema), of_assets


def _whole(rows: pa.Table | None, schema: pa.Schema) -> pa.Table:
    return schema.empty_table() if rows is None else conform(rows, schema)


def _columns_of(claims: list[Owned]) -> list[str]:
    return [c for o in claims if o.columns is not None for c in o.columns]
