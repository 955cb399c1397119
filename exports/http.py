"""The exports, served where IIIF viewers and players fetch them (`archivist serve`).

`/iiif/{asset}/manifest.json`, `/iiif/collection.json`, `/vtt/{asset}/{kind}.vtt` and the
asset's XML documents (`/exports/{asset}/pbcore.xml`, `ebucore.xml`, `mets.xml`) are rendered
from the catalog's current rows on each request (the same code as `archivist export`), with ids
under the URL the request came to, and `Access-Control-Allow-Origin: *` so a viewer on any site
can read them. An unknown asset or track is a 404 in the API's error shape. The access copy and
keyframes the manifests name are the API's own ranged media routes (`/media/video/{asset}`,
`/media/keyframes/{shot}`).

`/viewer?manifest=URL` is a real IIIF viewer (Universal Viewer, pinned in `viewer/package.json`)
opening a manifest, served from the project's own files (`viewer/index.html`, and UV's prebuilt
`dist/` under `/viewer/uv/`), so an archivist can see an asset as a IIIF site would show it, and
the tests can open one in Chromium. `npm ci` installs UV into `viewer/node_modules`; until it has,
the page is a 503 saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.params import Depends as Dependency
from fastapi.responses import FileResponse, Response

from catalog.iceberg import open_catalog, read
from catalog.settings import Settings
from exports import webvtt
from exports.formats import FORMATS, IIIF_INSTALL, iiif_available
from exports.record import AssetRecord, UnknownAssetError, load_records

CORS = {"Access-Control-Allow-Origin": "*"}
XML_DOCUMENTS = {"pbcore.xml": "pbcore", "ebucore.xml": "ebucore", "mets.xml": "mets"}
"""The per-asset XML documents served, by file name, with the format that renders each."""
IIIF_JSON = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
VIEWER = Path(__file__).resolve().parents[1] / "viewer"
"""The viewer's own files: its page, and the `package.json` + lock that pin Universal Viewer."""
VIEWER_INSTALL = "make viewer (npm ci --ignore-scripts --prefix viewer)"


def viewer_dist(root: Path = VIEWER) -> Path:
    """Universal Viewer's prebuilt files, where `npm ci` puts them."""
    return root / "node_modules" / "universalviewer" / "dist"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def exports_router(settings: Settings, dependencies: Sequence[Dependency] = ()) -> APIRouter:
    """The exports behind `dependencies` (the API's read rule), and the viewer, open to all: its
    files are Universal Viewer's, not the archive's, and the manifests it fetches keep the rule."""
    router = APIRouter(dependencies=list(dependencies), tags=["exports"])
    catalog: dict[str, Any] = {}

    def opened() -> Any:
        if "catalog" not in catalog:
            catalog["catalog"] = open_catalog(settings)
        return catalog["catalog"]

    def record(asset_id: str) -> AssetRecord:
        try:
            return load_records(opened(), [asset_id])[0]
        except UnknownAssetError as exc:
            raise HTTPException(404, detail=str(exc), headers=CORS) from None

    def iiif_module() -> Any:
        if not iiif_available():
            raise HTTPException(
                503, detail=f"IIIF needs iiif-prezi3, which is not installed ({IIIF_INSTALL})"
            )
        from exports import iiif

        return iiif

    @router.get("/iiif/collection.json", response_class=Response)
    def iiif_collection(request: Request) -> Response:
        """Every asset's manifest, as one IIIF Presentation 3 Collection."""
        iiif = iiif_module()
        rows = read(opened(), "assets", columns=("asset_id", "uri")).to_pylist()
        records = [AssetRecord(row, None, [], [], []) for row in sorted(rows, key=lambda r: r["asset_id"])]
        body = iiif.to_bytes(iiif.collection(records, _base(request)))
        return Response(body, media_type=IIIF_JSON, headers=CORS)

    @router.get("/iiif/{asset_id}/manifest.json", response_class=Response)
    def iiif_manifest(asset_id: str, request: Request) -> Response:
        """The asset as a IIIF Presentation 3 Manifest: one Canvas, its shots as Ranges."""
        iiif = iiif_module()
        body = iiif.to_bytes(iiif.manifest(record(asset_id), _base(request)))
        return Response(body, media_type=IIIF_JSON, headers=CORS)

    @router.get("/vtt/{asset_id}/{kind}.vtt", response_class=Response)
    def vtt_track(asset_id: str, kind: str) -> Response:
        """A WebVTT track of the asset: `transcript`, `captions` or `chapters`."""
        if kind not in webvtt.KINDS:
            raise HTTPException(
                404, detail=f"no track {kind[:40]!r}: the tracks are {', '.join(webvtt.KINDS)}"
            )
        body = webvtt.render(record(asset_id), kind)
        return Response(body, media_type="text/vtt; charset=utf-8", headers=CORS)

    @router.get("/exports/{asset_id}/{document}", response_class=Response)
    def xml_document(asset_id: str, document: str, request: Request) -> Response:
        """The asset's `pbcore.xml`, `ebucore.xml` or `mets.xml`, as `archivist export` writes it.
        (Bags, shards and Parquet are whole folders or many assets: `archivist export` only.)"""
        name = XML_DOCUMENTS.get(document)
        if name is None:
            raise HTTPException(
                404, detail=f"no document {document[:40]!r}: the documents are {', '.join(XML_DOCUMENTS)}"
            )
        rendered = FORMATS[name].files(record(asset_id), _base(request))
        return Response(rendered[f"{asset_id}/{document}"], media_type="application/xml", headers=CORS)

    outer = APIRouter()
    outer.include_router(router)
    outer.include_router(viewer_router())
    return outer


def viewer_router(root: Path = VIEWER) -> APIRouter:
    """`/viewer` (the page) and `/viewer/uv/{path}` (Universal Viewer's dist/, nothing outside it)."""
    router = APIRouter(tags=["viewer"])

    def installed() -> Path:
        dist = viewer_dist(root)
        if not (dist / "umd" / "UV.js").is_file():
            raise HTTPException(
                503,
                detail=f"the IIIF viewer is not installed in {root}/node_modules: run {VIEWER_INSTALL}",
            )
        return dist

    @router.get("/viewer", response_class=Response)
    def viewer_page() -> Response:
        """Universal Viewer opening the manifest named by `?manifest=URL`."""
        installed()
        return FileResponse(
            root / "index.html", media_type="text/html", headers={"cache-control": "no-cache"}
        )

    @router.get("/viewer/uv/{path:path}", response_class=Response)
    def viewer_file(path: str) -> Response:
        """A file of Universal Viewer's dist/ (its script, chunks, styles, fonts, images)."""
        dist = installed().resolve()
        wanted = (dist / path).resolve()
        if not wanted.is_relative_to(dist) or not wanted.is_file():
            raise HTTPException(404, detail=f"no viewer file {path[:80]!r}")
        return FileResponse(wanted, headers={"cache-control": "public, max-age=86400"})

    return router
