"""The export formats, by name: each renders the files of one asset (relative path → bytes).

A format is a class with a `name`, a one-line `describe`, and `files(record, base_url)`;
`FORMATS` is the registry the command, the HTTP routes and the tests read. Rendering never
writes: the caller decides where the bytes go, so a format that fails leaves nothing behind.
A format may also render files about several assets at once (`collection_files`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import ClassVar, Protocol

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


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (WebVTTFormat(), IIIFFormat(), PBCoreFormat())}


def get_format(name: str) -> ExportFormat:
    if name not in FORMATS:
        raise UnknownFormatError(f"no export format {name!r}: the formats are {', '.join(FORMATS)}")
    if name == IIIFFormat.name and not iiif_available():
        raise UnknownFormatError(
            f"the iiif format needs iiif-prezi3, which is not installed ({IIIF_INSTALL})"
        )
    return FORMATS[name]
