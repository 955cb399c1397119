"""`archivist export`: the chosen assets, in the chosen formats, into a folder or S3.

Every asset's files are rendered in memory first, then each is written atomically
(`catalog.storage.write_atomic`: a temporary name and a rename, or one PUT); an asset enters
the target's manifest (`.archivist-export.json`: per format, per asset, the hash of the rows
its export read) only once all its files are written, so an export that stops half way redoes
that asset next time, and one whose rows have not changed is skipped. The target is tried
before anything is rendered: one that cannot be written is one error and nothing written.

Collection-level files (a IIIF collection, WebDataset shards, a Parquet of shots) are the
selection's. A format that offers `collection_parts` keys each part on what it is rendered
from, and the manifest keeps those keys (`collections`): a part whose key is unchanged is
neither rendered nor written, and the files of parts an earlier export wrote that this one no
longer has (a shard past the new last) are removed, so the target holds one dataset.
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


def _remove(uri: str, options: dict[str, Any], out: str) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri, **options)
    try:
        fs.rm(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ExportError(f"cannot write to the export target {out}: {exc.strerror or exc}") from None


def _collections(
    fmt: Any,
    records: Sequence[Any],
    manifest: dict[str, Any],
    *,
    out: str,
    options: dict[str, Any],
    base_url: str,
    shard_size: int,
    force: bool,
) -> tuple[list[str], list[str]]:
    """Write the format's collection-level files; return those written and those unchanged."""
    if not hasattr(fmt, "collection_parts"):
        files = fmt.collection_files(records, base_url)
        for relative, data in files.items():
            _write(_join(out, relative), data, options, out)
        return sorted(files), []
    held: dict[str, str] = manifest.setdefault("collections", {}).get(fmt.name, {})
    now: dict[str, str] = {}
    written: list[str] = []
    unchanged: list[str] = []
    for part in fmt.collection_parts(records, storage_options=options, shard_size=shard_size):
        if not force and all(held.get(relative) == part.key for relative in part.files):
            unchanged.extend(part.files)
        else:
            for relative, data in part.render().items():
                _write(_join(out, relative), data, options, out)
            written.extend(part.files)
        now.update(dict.fromkeys(part.files, part.key))
    for stale in sorted(set(held) - set(now)):
        _remove(_join(out, stale), options, out)
    manifest["collections"][fmt.name] = now
    return written, unchanged


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
    shard_size: int = 0,
) -> dict[str, Any]:
    """Export and return what was done: `exported`, `skipped` (unchanged), the collection-level
    files `written` and `unchanged`, and timings. `shard_size`: samples per WebDataset shard
    (0: the format's default)."""
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
    if shard_size < 0:
        raise ExportError(f"--shard-size must be positive (it is {shard_size})")
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
    vectors = any(getattr(fmt, "reads_embeddings", False) for fmt in chosen)
    for i in range(0, len(wanted), BATCH):
        records = load_records(catalog, wanted[i : i + BATCH], embeddings=vectors)
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
    written: list[str] = []
    unchanged: list[str] = []
    for fmt in chosen:
        new, same = _collections(
            fmt,
            records_seen,
            manifest,
            out=out,
            options=options,
            base_url=base_url,
            shard_size=shard_size,
            force=force,
        )
        written.extend(new)
        unchanged.extend(same)
    _write(_join(out, MANIFEST), _dump(manifest), options, out)
    seconds = time.perf_counter() - started
    return {
        "out": out,
        "formats": [f.name for f in chosen],
        "assets": len(wanted),
        "shots": shots,
        "exported": done,
        "skipped": skipped,
        "written": written,
        "unchanged": unchanged,
        "seconds": round(seconds, 4),
    }


def _dump(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def export_command(
    asset_ids: Annotated[list[str] | None, typer.Argument(help="asset ids to export")] = None,
    query: Annotated[str | None, typer.Option(help="SQL whose asset_id column names the assets")] = None,
    everything: Annotated[bool, typer.Option("--all", help="every asset in the catalog")] = False,
    formats: Annotated[
        list[str],
        typer.Option(
            "--format",
            help="webvtt, iiif, pbcore, ebucore, mets, bagit, webdataset, parquet (repeat for several)",
        ),
    ] = [],  # noqa: B006
    out: Annotated[str, typer.Option(help="target: a folder or an s3:// URL")] = "",
    base_url: Annotated[str, typer.Option(help="where `archivist serve` publishes the exports")] = (
        "http://127.0.0.1:8000"
    ),
    force: Annotated[bool, typer.Option(help="export again even what has not changed")] = False,
    shard_size: Annotated[int, typer.Option(help="samples per WebDataset shard (0: 1000)")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Export assets in archive formats (WebVTT, IIIF, PBCore, EBUCore, METS, BagIt) or as training
    sets (WebDataset shards, Parquet), into a folder or S3 (only what changed)."""
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
            shard_size=shard_size,
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
