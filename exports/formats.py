"""The export formats, by name: each renders the files of one asset (relative path → bytes).

A format is a class with a `name`, a one-line `describe`, and `files(record, base_url)`;
`FORMATS` is the registry the command, the HTTP routes and the tests read. Rendering never
writes: the caller decides where the bytes go, so a format that fails leaves nothing behind.
A format may also render files about several assets at once (`collection_files`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from exports.record import AssetRecord

FORMAT_VERSION = "1"
"""Bumped when a format's output changes for the same rows, so incremental exports redo it."""


class UnknownFormatError(ValueError):
    pass


class ExportFormat(Protocol):
    name: ClassVar[str]
    describe: ClassVar[str]

    def files(self, record: AssetRecord, base_url: str) -> dict[str, bytes]: ...

    def collection_files(self, records: Sequence[AssetRecord], base_url: str) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class CollectionPart:
    """Collection-level files rendered together (a WebDataset shard and its sidecars), with a
    hash of everything they are rendered from: an incremental export renders and writes only
    the parts whose key changed. A format offers them by a `collection_parts` method
    (`exports.run` falls back to `collection_files`, written every time, where there is none)."""

    files: tuple[str, ...]
    key: str
    render: Callable[[], dict[str, bytes]]


class WebVTTFormat:
    name: ClassVar[str] = "webvtt"
    describe: ClassVar[str] = "WebVTT sidecars: transcript, shot captions, a chapter per shot"

    def files(self, record: AssetRecord, base_url: str) -> dict[str, bytes]:
        from exports import webvtt

        return {f"{record.asset_id}/{kind}.vtt": webvtt.render(record, kind) for kind in webvtt.KINDS}

    def collection_files(self, records: Sequence[AssetRecord], base_url: str) -> dict[str, bytes]:
        return {}


IIIF_INSTALL = "pip install --no-deps iiif-prezi3==3.1.1"
"""iiif-prezi3 pins Pillow<=12.0.0, which the faces audit's Pillow>=12.3 refuses: installed apart."""


def iiif_available() -> bool:
    return importlib.util.find_spec("iiif_prezi3") is not None


class IIIFFormat:
    name: ClassVar[str] = "iiif"
    describe: ClassVar[str] = "IIIF Presentation 3: a manifest per asset (shots as ranges), a collection"

    def files(self, record: AssetRecord, base_url: str) -> dict[str, bytes]:
        from exports import iiif

        return {f"{record.asset_id}/manifest.json": iiif.to_bytes(iiif.manifest(record, base_url))}

    def collection_files(self, records: Sequence[AssetRecord], base_url: str) -> dict[str, bytes]:
        from exports import iiif

        return {"collection.json": iiif.to_bytes(iiif.collection(records, base_url))}


class PBCoreFormat:
    name: ClassVar[str] = "pbcore"
    describe: ClassVar[str] = "PBCore 2.1 XML: identifiers, technical metadata, instantiations, shots"

    def files(self, record: AssetRecord, base_url: str) -> dict[str, bytes]:
        from exports import pbcore

        return {f"{record.asset_id}/pbcore.xml": pbcore.to_bytes(record)}

    def collection_files(self, records: Sequence[AssetRecord], base_url: str) -> dict[str, bytes]:
        return {}


class EBUCoreFormat:
    name: ClassVar[str] = "ebucore"
    describe: ClassVar[str] = "EBUCore 1.10 XML: identifiers, technical metadata, formats per copy, shots"

    def files(self, record: AssetRecord, base_url: str) -> dict[str, bytes]:
        from exports import ebucore

        return {f"{record.asset_id}/ebucore.xml": ebucore.to_bytes(record)}

    def collection_files(self, records: Sequence[AssetRecord], base_url: str) -> dict[str, bytes]:
        return {}


class METSFormat:
    """Reads the remaster manifests from storage, with the storage options of the environment's
    settings (the ones `archivist export` runs with)."""

    name: ClassVar[str] = "mets"
    describe: ClassVar[str] = "METS with PREMIS 3.0: objects with fixity, events, agents, per master"

    def files(self, record: AssetRecord, base_url: str) -> dict[str, bytes]:
        from catalog.settings import Settings
        from exports import mets

        stored = mets.read_stored(record, Settings().storage_options())
        return {f"{record.asset_id}/mets.xml": mets.to_bytes(record, stored)}

    def collection_files(self, records: Sequence[AssetRecord], base_url: str) -> dict[str, bytes]:
        return {}


class WritingFormat(Protocol):
    """A format whose files cannot be rendered in memory: a bag holds the master (FFV1, GBs an
    hour), so `files`' bytes-in-a-dict would hold it whole. Such a format writes its files
    itself, streamed from storage and published atomically per asset, and `exports.run` calls
    `write_files` (the paths written, relative to `out`) instead of `files`; `check` refuses
    bad input for the whole selection before anything is written (raising `ExportError`)."""

    def check(self, records: Sequence[AssetRecord]) -> None: ...

    def write_files(
        self, record: AssetRecord, base_url: str, *, out: str, options: dict[str, Any]
    ) -> list[str]: ...


class BagItFormat:
    name: ClassVar[str] = "bagit"
    describe: ClassVar[str] = "BagIt bags per master: master, access copy, manifests, METS, PBCore"

    def files(self, record: AssetRecord, base_url: str) -> dict[str, bytes]:
        return {}  # written by `write_files` (see WritingFormat)

    def check(self, records: Sequence[AssetRecord]) -> None:
        from exports.bag import refuse
        from exports.run import ExportError

        for record in records:
            why = refuse(record)
            if why:
                raise ExportError(f"{why}; nothing was exported")

    def write_files(
        self, record: AssetRecord, base_url: str, *, out: str, options: dict[str, Any]
    ) -> list[str]:
        from exports import bag
        from exports.run import ExportError

        try:
            return bag.write(record, out, options)
        except bag.BagError as exc:
            raise ExportError(str(exc)) from None
        except OSError as exc:
            raise ExportError(f"cannot write to the export target {out}: {exc.strerror or exc}") from None

    def collection_files(self, records: Sequence[AssetRecord], base_url: str) -> dict[str, bytes]:
        return {}


class WebDatasetFormat:
    """Collection-level only: shards hold many assets' shots, so `files` is empty."""

    name: ClassVar[str] = "webdataset"
    describe: ClassVar[str] = "WebDataset shards, video2dataset layout: keyframe, caption, metadata, vectors"
    reads_embeddings: ClassVar[bool] = True

    def files(self, record: AssetRecord, base_url: str) -> dict[str, bytes]:
        return {}

    def collection_parts(
        self, records: Sequence[AssetRecord], *, storage_options: dict | None = None, shard_size: int = 0
    ) -> list[CollectionPart]:
        from exports import dataset

        return dataset.shard_parts(records, storage_options or {}, shard_size or dataset.SHARD_SIZE)

    def collection_files(self, records: Sequence[AssetRecord], base_url: str) -> dict[str, bytes]:
        return {k: v for part in self.collection_parts(records) for k, v in part.render().items()}


class ParquetFormat:
    """Collection-level only: one file of every selected shot."""

    name: ClassVar[str] = "parquet"
    describe: ClassVar[str] = "Parquet of shots: captions, tags, transcript, embeddings as fixed-size lists"
    reads_embeddings: ClassVar[bool] = True

    def files(self, record: AssetRecord, base_url: str) -> dict[str, bytes]:
        return {}

    def collection_parts(
        self, records: Sequence[AssetRecord], *, storage_options: dict | None = None, shard_size: int = 0
    ) -> list[CollectionPart]:
        from exports import dataset

        return [dataset.parquet_part(records)]

    def collection_files(self, records: Sequence[AssetRecord], base_url: str) -> dict[str, bytes]:
        return {k: v for part in self.collection_parts(records) for k, v in part.render().items()}


FORMATS: dict[str, ExportFormat] = {
    f.name: f for f in (WebVTTFormat(), IIIFFormat(), PBCoreFormat(), WebDatasetFormat(), ParquetFormat())
}

FORMATS.update({f.name: f for f in (EBUCoreFormat(), METSFormat(), BagItFormat())})


def get_format(name: str) -> ExportFormat:
    if name not in FORMATS:
        raise UnknownFormatError(f"no export format {name!r}: the formats are {', '.join(FORMATS)}")
    if name == IIIFFormat.name and not iiif_available():
        raise UnknownFormatError(
            f"the iiif format needs iiif-prezi3, which is not installed ({IIIF_INSTALL})"
        )
    return FORMATS[name]
