"""`archivist export`: the chosen assets, in the chosen formats, into a folder or S3.

Every asset's files are rendered in memory first, then each is written atomically
(`catalog.storage.write_atomic`: a temporary name and a rename, or one PUT); an asset enters
the target's manifest (`.archivist-export.json`: per format, per asset, the hash of the rows
its export read) only once all its files are written, so an export that stops half way redoes
that asset next time, and one whose rows have not changed is skipped. The target is tried
before anything is rendered: one that cannot be written is one error and nothing written.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from catalog.settings import Settings

MANIFEST = ".archivist-export.json"
BATCH = 200
"""Assets read from the catalog at once."""


class ExportError(ValueError):
    """Bad input to an export: one line, nothing half-written."""


def _join(out: str, relative: str) -> str:
    return f"{out.rstrip('/')}/{relative}"


def _read_manifest(out: str, options: dict[str, Any]) -> dict[str, Any]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(_join(out, MANIFEST), **options)
    try:
        with fs.open(path, "rb") as handle:
            data = json.loads(handle.read())
    except FileNotFoundError:
        return {"formats": {}}
    except OSError as exc:
        raise ExportError(f"cannot write to the export target {out}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ExportError(f"the export manifest {MANIFEST} in {out} is not JSON: {exc}") from None
    return data if isinstance(data, dict) and isinstance(data.get("formats"), dict) else {"formats": {}}


def _write(uri: str, data: bytes, options: dict[str, Any], out: str) -> None:
    from catalog.storage import write_atomic

    try:
        write_atomic(uri, data, options)
    except OSError as exc:
        raise ExportError(f"cannot write to the export target {out}: {exc.strerror or exc}") from None


def select(catalog: Any, asset_ids: Sequence[str], query: str | None, everything: bool) -> list[str]:
    """The asset ids named, those a SQL query returns (its `asset_id` column), or all."""
    from catalog.query import sql
    from exports.record import all_asset_ids

    if sum(bool(x) for x in (asset_ids, query, everything)) != 1:
        raise ExportError("give asset ids, or --query SQL, or --all (exactly one of them)")
    if everything:
        return all_asset_ids(catalog)
    if query:
        result = sql(catalog, query)
        if "asset_id" not in result.column_names:
            raise ExportError(
                f"the query must return an asset_id column (it returned: {', '.join(result.column_names)})"
            )
        return list(dict.fromkeys(str(a) for a in result.column("asset_id").to_pylist() if a))
    return list(dict.fromkeys(asset_ids))


def export(
    settings: Settings,
    *,
    out: str,
    formats: Sequence[str],
    asset_ids: Sequence[str] = (),
    query: str | None = None,
    everything: bool = False,
    base_url: str = "http://127.0.0.1:8000",
    force: bool = False,
) -> dict[str, Any]:
    """Export and return what was done: `exported`, `skipped` (unchanged) and timings."""
    from catalog.iceberg import open_catalog
    from exports.formats import FORMAT_VERSION, UnknownFormatError, get_format
    from exports.record import all_asset_ids, load_records

    started = time.perf_counter()
    try:
        chosen = [get_format(name) for name in dict.fromkeys(formats)]
    except UnknownFormatError as exc:
        raise ExportError(str(exc)) from None
    if not chosen:
        raise ExportError("give at least one --format")
    options = settings.storage_options()
    catalog = open_catalog(settings)
    wanted = select(catalog, asset_ids, query, everything)
    done: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    records_seen = []
    shots = 0
    known = set(all_asset_ids(catalog))
    unknown = [a for a in wanted if a not in known]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ExportError(f"asset {unknown[0][:80]!r} is not in the catalog{more}; nothing was exported")
    for fmt in [f for f in chosen if hasattr(f, "check")]:  # refusals (a bag without a master) first
        for i in range(0, len(wanted), BATCH):
            fmt.check(load_records(catalog, wanted[i : i + BATCH]))
    manifest = _read_manifest(out, options)
    _write(_join(out, MANIFEST), _dump(manifest), options, out)  # can the target be written at all?
    for i in range(0, len(wanted), BATCH):
        records = load_records(catalog, wanted[i : i + BATCH])
        records_seen.extend(records)
        for record in records:
            shots += len(record.shots)
            for fmt in chosen:
                key = hashlib.sha256(
                    f"{record.content_hash()}|{fmt.name}|{FORMAT_VERSION}|{base_url}".encode()
                ).hexdigest()
                held = manifest["formats"].setdefault(fmt.name, {})
                if not force and held.get(record.asset_id, {}).get("hash") == key:
                    skipped.append({"asset_id": record.asset_id, "format": fmt.name})
                    continue
                if hasattr(fmt, "write_files"):  # too large for memory: the format writes (a bag)
                    files = dict.fromkeys(fmt.write_files(record, base_url, out=out, options=options), b"")
                else:
                    files = fmt.files(record, base_url)
                    for relative, data in files.items():
                        _write(_join(out, relative), data, options, out)
                held[record.asset_id] = {"hash": key, "files": sorted(files)}
                done.append({"asset_id": record.asset_id, "format": fmt.name, "files": sorted(files)})
    for fmt in chosen:
        for relative, data in fmt.collection_files(records_seen, base_url).items():
            _write(_join(out, relative), data, options, out)
    _write(_join(out, MANIFEST), _dump(manifest), options, out)
    seconds = time.perf_counter() - started
    return {
        "out": out,
        "formats": [f.name for f in chosen],
        "assets": len(wanted),
        "shots": shots,
        "exported": done,
        "skipped": skipped,
        "seconds": round(seconds, 4),
    }


def _dump(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def export_command(
    asset_ids: Annotated[list[str] | None, typer.Argument(help="asset ids to export")] = None,
    query: Annotated[str | None, typer.Option(help="SQL whose asset_id column names the assets")] = None,
    everything: Annotated[bool, typer.Option("--all", help="every asset in the catalog")] = False,
    formats: Annotated[
        list[str], typer.Option("--format", help="webvtt, iiif, pbcore (repeat for several)")
    ] = [],  # noqa: B006
    out: Annotated[str, typer.Option(help="target: a folder or an s3:// URL")] = "",
    base_url: Annotated[str, typer.Option(help="where `archivist serve` publishes the exports")] = (
        "http://127.0.0.1:8000"
    ),
    force: Annotated[bool, typer.Option(help="export again even what has not changed")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Export assets as WebVTT, IIIF manifests and PBCore XML, into a folder or S3 (only what changed)."""
    from catalog.query import QueryError

    try:
        if not out:
            raise ExportError("give --out FOLDER_OR_S3_URL")
        summary = export(
            Settings(),
            out=out,
            formats=formats,
            asset_ids=asset_ids or [],
            query=query,
            everything=everything,
            base_url=base_url,
            force=force,
        )
    except (ExportError, QueryError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"exported {len(summary['exported'])}, unchanged {len(summary['skipped'])} "
        f"(assets x formats; {summary['assets']} assets, {summary['shots']} shots) to {out} "
        f"in {summary['seconds']:.2f} s"
    )
