"""Provenance: does every remastered file still say truthfully where it came from and what was done to it?

The remaster stage records each output three times: the catalog row, the
``*.manifest.json`` sidecar beside the file, and the file's own bytes. The
check recomputes the file's and the source's SHA-256 through fsspec and
holds the three records against each other, so a re-encoded or edited
output, an edited manifest (say, an operation taken out of its list), and
a source replaced under the same name each show up, and say which.

Content credentials (C2PA) carry the same facts in a form other tools can
verify: a claim signed with the deployment's key, bound to the file's bytes
by a hash that excludes the credentials themselves. They are written as a
sidecar store (``<output>.c2pa``) rather than into the file, so the output's
recorded SHA-256 stays true. C2PA can bind MP4 but not Matroska, so the
access copy carries them, and its claim names the master's SHA-256 too.
Until the remaster stage signs at write time, the first audit that finds an
output verified and unsigned seals it ("sealed by audit" in the report);
from then on every audit checks the signature and the binding.
"""

from __future__ import annotations

import io
import json
from typing import Any

import fsspec

from actors.fingerprint import sha256_of
from actors.fixity import verify_frames
from actors.remaster import MANIFEST_SCHEMA
from catalog.storage import write_atomic
from jobs.audit.config import C2paConfig

C2PA_FORMATS = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime"}
"""Output containers whose bytes C2PA can hash-bind."""
ASSERTION = "org.archivist.remaster"
"""Label of the custom assertion holding the manifest's facts."""


def _read_json(uri: str, storage_options: dict[str, Any]) -> dict[str, Any]:
    with fsspec.open(uri, "rb", **storage_options) as handle:
        return json.loads(handle.read())


def _exists(uri: str, storage_options: dict[str, Any]) -> bool:
    fs, path = fsspec.core.url_to_fs(uri, **storage_options)
    return fs.exists(path)


def facts(manifest: dict[str, Any]) -> dict[str, Any]:
    """What provenance vouches for: source, operations, models, output."""
    return {
        "asset_id": manifest.get("asset_id"),
        "source_sha256": manifest.get("source", {}).get("sha256"),
        "operations": manifest.get("restoration", {}).get("ops"),
        "upscale": {k: manifest.get("upscale", {}).get(k) for k in ("model", "version", "factor", "method")},
        "output_kind": manifest.get("output", {}).get("kind"),
    }


def verify_output(
    row: dict[str, Any], storage_options: dict[str, Any] | None = None, *, check_source: bool = True
) -> dict[str, Any]:
    """One output's manifest and catalog row held against its bytes (and its source's); problems listed."""
    options = storage_options or {}
    problems: list[str] = []
    detail: dict[str, Any] = {"output_uri": row["output_uri"], "manifest_uri": row.get("manifest_uri")}
    try:
        manifest = _read_json(row["manifest_uri"], options)
    except FileNotFoundError:
        return {"flagged": True, "problems": ["the manifest is missing"], "detail": detail, "manifest": None}
    except (OSError, ValueError, TypeError) as exc:
        return {
            "flagged": True,
            "problems": [f"the manifest cannot be read: {exc}"],
            "detail": detail,
            "manifest": None,
        }
    if manifest.get("schema") != MANIFEST_SCHEMA:
        problems.append(f"the manifest's schema is {manifest.get('schema')!r}, not {MANIFEST_SCHEMA!r}")
    output = manifest.get("output", {})
    try:
        actual = sha256_of(row["output_uri"], options)
    except FileNotFoundError:
        actual = None
        problems.append("the output file is missing")
    detail["output_sha256"] = actual
    if actual is not None and output.get("sha256") != actual:
        problems.append("the output's bytes do not match the SHA-256 in its manifest")
        if manifest.get("fixity"):  # a master: which of its frames changed
            problems.extend(verify_frames(row["output_uri"], manifest["fixity"], options))
    if output.get("sha256") != row.get("output_sha256"):
        problems.append("the manifest's output SHA-256 differs from the catalog's")
    if manifest.get("asset_id") != row["asset_id"]:
        problems.append("the manifest names another asset")
    source_sha = manifest.get("source", {}).get("sha256")
    if source_sha != row["asset_id"]:
        problems.append("the manifest's source SHA-256 is not the asset's content hash")
    if json.loads(row.get("operations") or "null") != manifest.get("restoration", {}).get("ops"):
        problems.append("the operations in the manifest differ from the catalog's")
    upscale = manifest.get("upscale", {})
    if (upscale.get("model"), upscale.get("version")) != (row.get("model"), row.get("model_version")):
        problems.append("the model in the manifest differs from the catalog's")
    for key in ("width", "height", "frame_count"):
        if output.get(key) != row.get(key):
            problems.append(f"the manifest's {key} differs from the catalog's")
    if check_source:
        source_uri = manifest.get("source", {}).get("uri") or row["source_uri"]
        try:
            now = sha256_of(source_uri, options)
            detail["source_sha256_now"] = now
            if now != source_sha:
                problems.append("the source file has changed since it was remastered")
        except FileNotFoundError:
            detail["source_sha256_now"] = None  # a source moved away is no finding about the output
    return {"flagged": bool(problems), "problems": problems, "detail": detail, "manifest": manifest}


# -- content credentials (C2PA) ---------------------------------------------------------------------


def credentials_uri(output_uri: str) -> str:
    return output_uri + ".c2pa"


def c2pa_format(output_uri: str) -> str | None:
    suffix = "." + output_uri.rsplit(".", 1)[-1].lower() if "." in output_uri else ""
    return C2PA_FORMATS.get(suffix)


def _signer(config: C2paConfig, storage_options: dict[str, Any]) -> Any:
    import c2pa

    with fsspec.open(config.cert_chain, "rb", **storage_options) as handle:
        chain = handle.read()
    with fsspec.open(config.private_key, "rb", **storage_options) as handle:
        key = handle.read()
    return c2pa.Signer.from_info(c2pa.C2paSignerInfo(config.algorithm.encode(), chain, key, None))


def seal(
    row: dict[str, Any],
    manifest: dict[str, Any],
    config: C2paConfig,
    *,
    related: dict[str, str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> str:
    """Signs the manifest's facts as C2PA credentials bound to the output's bytes; returns the sidecar URI.

    ``related`` names the SHA-256 of the asset's other outputs (the master),
    which C2PA cannot bind directly, so the signed claim vouches for them too.
    """
    import c2pa

    options = storage_options or {}
    mime = c2pa_format(row["output_uri"])
    if mime is None:
        raise ValueError(f"C2PA cannot bind {row['output_uri']}: not one of {sorted(C2PA_FORMATS)}")
    source = manifest.get("source", {})
    definition = {
        "claim_generator_info": [{"name": "archivist", "version": "audit/1"}],
        "title": row["output_uri"].rsplit("/", 1)[-1],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.edited",
                            "softwareAgent": {"name": "archivist remaster"},
                            "description": "restored and upscaled; the operations are in " + ASSERTION,
                        }
                    ]
                },
            },
            {"label": ASSERTION, "data": {**facts(manifest), "related_outputs": related or {}}},
        ],
    }
    builder = c2pa.Builder(definition)
    builder.set_no_embed()
    builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
    source_name = (source.get("uri") or row["source_uri"]).rsplit("/", 1)[-1]
    # The source is described, not read: it may be large, remote, or in a format C2PA does not know.
    builder.add_ingredient(
        {"title": source_name, "relationship": "parentOf", "format": "application/octet-stream"},
        "application/octet-stream",
        io.BytesIO(b""),
    )
    with fsspec.open(row["output_uri"], "rb", **options) as handle:
        store = builder.sign(_signer(config, options), mime, handle, io.BytesIO())
    uri = credentials_uri(row["output_uri"])
    write_atomic(uri, store, options)
    return uri


def verify_credentials(
    row: dict[str, Any], manifest: dict[str, Any] | None, storage_options: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The sidecar's signature and hash binding checked, and its facts held against the manifest.

    None when the output has no credentials (yet).
    """
    import c2pa

    options = storage_options or {}
    uri = credentials_uri(row["output_uri"])
    mime = c2pa_format(row["output_uri"])
    if mime is None or not _exists(uri, options):
        return None
    with fsspec.open(uri, "rb", **options) as handle:
        store = handle.read()
    problems: list[str] = []
    try:
        with (
            fsspec.open(row["output_uri"], "rb", **options) as handle,
            c2pa.Reader(mime, handle, store) as reader,
        ):
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            active = reader.get_active_manifest() or {}
    except (c2pa.C2paError, OSError) as exc:
        return {
            "uri": uri,
            "state": "unreadable",
            "flagged": True,
            "problems": [f"credentials unreadable: {exc}"],
        }
    failures = [f["code"] for f in results.get("activeManifest", {}).get("failure", [])]
    if state not in ("Valid", "Trusted"):
        problems.append(f"credentials are {state}: {', '.join(failures) or 'no reason given'}")
    signed = next((a["data"] for a in active.get("assertions", []) if a.get("label") == ASSERTION), None)
    if signed is None:
        problems.append("the credentials carry no remaster facts")
    elif manifest is not None and {k: signed.get(k) for k in facts(manifest)} != facts(manifest):
        problems.append("the signed facts differ from the manifest's")
    return {"uri": uri, "state": state, "flagged": bool(problems), "problems": problems, "failures": failures}
