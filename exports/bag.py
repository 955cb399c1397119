"""BagIt bags (RFC 8493) per preservation master, made and validated with the `bagit` library.

A bag is what a repository's ingest takes whole (Archivematica's transfers, the Library of
Congress's): a payload, a manifest of every payload file's SHA-256, and tag files. Each
asset's bag, at `{asset}/bag/` under the export target, holds in `data/` the master, its
frame checksums, the access copy (where one was made), both remaster manifests, METS/PREMIS
(with package-relative hrefs) and PBCore; `bag-info.txt` names the asset, its source and the
pipeline version.

Masters are large (FFV1 is several GB an hour), so a bag is never rendered into memory like the
other formats' files: its payload is streamed from storage into a local staging folder (the
master's bytes hashed on the way and held against the catalog's SHA-256: a master that has
changed since it was written is not packaged, nor one whose frame checksums differ from
their SHA-256 in its manifest), `bagit.make_bag` writes the manifests, and
`bagit.Bag(...).validate()` checks the result before it is published:

- to a folder, the staging folder is made beside the bag and renamed into place (one rename:
  a reader sees the old bag or the new one, never a part of one);
- to S3, which has no rename, every file is put and `bagit.txt`, the file that makes a folder a
  bag, is put last (and, when a bag is replaced, removed first): a prefix without `bagit.txt`
  is not a bag.

An asset without a master is refused before anything is written, in one line.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import bagit

from exports import mets, pbcore
from exports.record import AssetRecord, title

BAG_DIR = "bag"
CHUNK = 8 << 20


class BagError(ValueError):
    """A bag that cannot be made: one line, nothing written."""


def refuse(record: AssetRecord) -> str | None:
    """Why the asset cannot be bagged, or None."""
    if record.remaster("master") is None:
        return f"asset {record.asset_id} has no preservation master: a bag needs one"
    return None


def _copy(uri: str, target: Path, options: dict[str, Any]) -> str:
    """Stream `uri` into `target`; its SHA-256."""
    import fsspec

    digest = hashlib.sha256()
    with fsspec.open(uri, "rb", **options) as source, target.open("wb") as sink:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            sink.write(chunk)
    return digest.hexdigest()


def stage(record: AssetRecord, folder: Path, options: dict[str, Any]) -> bagit.Bag:
    """Fill `folder` with the asset's payload and make it a bag (validated); raise BagError."""
    why = refuse(record)
    if why:
        raise BagError(why)
    stored = mets.read_stored(record, options)
    names = mets.package_names(record)
    for kind in ("master", "access"):
        row = record.remaster(kind)
        if row is None:
            continue
        try:
            sha = _copy(str(row["output_uri"]), folder / names[kind], options)
        except OSError as exc:
            raise BagError(f"asset {record.asset_id}: the {kind} cannot be read: {exc}") from None
        if row.get("output_sha256") and sha != row["output_sha256"]:
            raise BagError(
                f"asset {record.asset_id}: the {kind}'s bytes no longer match its SHA-256 in the catalog"
            )
        if kind in stored.raw:
            (folder / names[f"{kind}.manifest"]).write_bytes(stored.raw[kind])
    frames = (stored.manifests.get("master") or {}).get("fixity") or {}
    if frames.get("frame_checksums_uri"):
        try:
            sha = _copy(str(frames["frame_checksums_uri"]), folder / names["master.framemd5"], options)
        except OSError as exc:
            raise BagError(f"asset {record.asset_id}: the frame checksums cannot be read: {exc}") from None
        if frames.get("sha256") and sha != frames["sha256"]:
            raise BagError(
                f"asset {record.asset_id}: the master's frame checksums no longer match their SHA-256 "
                "in its manifest"
            )
    (folder / "mets.xml").write_bytes(mets.to_bytes(record, stored, packaged=True))
    (folder / "pbcore.xml").write_bytes(pbcore.to_bytes(record))
    info = {
        "Source-Organization": "archivist",
        "External-Identifier": record.asset_id,
        "External-Description": f"{title(record)}: preservation master, access copy, manifests, METS, PBCore",
        "Archivist-Source-URI": str(record.asset.get("uri")),
        "Archivist-Pipeline-Version": str(record.asset.get("pipeline_version")),
    }
    bag = bagit.make_bag(str(folder), bag_info=info, checksums=["sha256"])
    bag.validate()
    return bag


def write(record: AssetRecord, out: str, options: dict[str, Any]) -> list[str]:
    """Make the asset's bag and publish it under `out` (see the module's docstring); the
    files written, relative to `out`. Raises BagError (refusals, unreadable payload) or OSError
    (a target that cannot be written), having written nothing."""
    import fsspec

    why = refuse(record)
    if why:
        raise BagError(why)
    fs, root = fsspec.core.url_to_fs(out, **options)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    relative = f"{record.asset_id}/{BAG_DIR}"
    if local:
        parent = Path(root) / record.asset_id
        made_parent = not parent.exists()
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".bag-", dir=parent))
    else:
        staging = Path(tempfile.mkdtemp(prefix="archivist-bag-"))
    try:
        stage(record, staging, options)
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        if local:
            _rename_into_place(staging, parent / BAG_DIR)
        else:
            _upload(fs, staging, f"{root.rstrip('/')}/{relative}", files)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if local and made_parent and not any(parent.iterdir()):
            parent.rmdir()
        raise
    if not local:
        shutil.rmtree(staging, ignore_errors=True)
    return [f"{relative}/{name}" for name in files]


def _rename_into_place(staging: Path, final: Path) -> None:
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the bag from its readers
    if not final.exists():
        staging.rename(final)
        return
    old = final.with_name(f".{final.name}-old-{uuid.uuid4().hex[:8]}")
    final.rename(old)
    try:
        staging.rename(final)
    except OSError:
        old.rename(final)  # the bag that was there stays
        raise
    shutil.rmtree(old, ignore_errors=True)


def _upload(fs: Any, staging: Path, prefix: str, files: list[str]) -> None:
    if fs.exists(f"{prefix}/bagit.txt"):
        fs.rm_file(f"{prefix}/bagit.txt")
    for name in [f for f in files if f != "bagit.txt"] + ["bagit.txt"]:
        fs.put_file(str(staging / name), f"{prefix}/{name}")
