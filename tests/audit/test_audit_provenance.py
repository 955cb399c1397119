"""Provenance: honest outputs verify; changed bytes, an edited manifest or a replaced source do not.
Content credentials: sealed with a test key, they verify, and break when the file changes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from audit_helpers import remaster
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from actors.fixity import checksums_uri
from jobs.audit.config import C2paConfig
from jobs.audit.provenance import credentials_uri, seal, verify_credentials, verify_output


@pytest.fixture
def outputs(tmp_path: Path, clip_writer) -> dict[str, dict]:
    (tmp_path / "src").mkdir()
    source = clip_writer(tmp_path / "src" / "clip.mp4", seconds=0.4)
    master, access = remaster(source, tmp_path / "out", restore="off", upscale=1)
    return {"master": master, "access": access}


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "archivist tests"),
        ]
    )


def _usage(*, sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=sign,
        crl_sign=sign,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture
def test_key(tmp_path: Path) -> C2paConfig:
    """A throwaway CA and a signing certificate under it (C2PA refuses self-signed signers), as PEM files."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, issuer: x509.Name, public, signer, *, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(_usage(sign=ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    root = certificate(
        "archivist test root", _name("archivist test root"), ca_key.public_key(), ca_key, ca=True
    )
    leaf = certificate("archivist test signer", root.subject, key.public_key(), ca_key, ca=False)
    chain, private = tmp_path / "chain.pem", tmp_path / "signer.key"
    chain.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM)
    )
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return C2paConfig(cert_chain=str(chain), private_key=str(private))


def test_honest_outputs_verify(outputs: dict[str, dict]) -> None:
    for row in outputs.values():
        checked = verify_output(row)
        assert not checked["flagged"], checked["problems"]
        assert checked["detail"]["output_sha256"] == row["output_sha256"]
        assert checked["detail"]["source_sha256_now"] == row["asset_id"]


def test_tampered_output_bytes_fail(outputs: dict[str, dict]) -> None:
    row = outputs["master"]
    path = Path(row["output_uri"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one frame
    path.write_bytes(bytes(data))
    checked = verify_output(row)
    assert checked["flagged"]
    bytes_changed, *frames = checked["problems"]
    assert bytes_changed == "the output's bytes do not match the SHA-256 in its manifest"
    # the master's frame checksums say where: one or a few frames, not the whole file
    assert frames and all("differs from its recorded checksum" in p for p in frames), frames
    assert len(frames) < Path(checksums_uri(row["output_uri"])).read_text().count("\n") - 2
    assert not verify_output(outputs["access"])["flagged"], "the other output is untouched"


def test_tampered_manifest_fails(outputs: dict[str, dict]) -> None:
    row = outputs["access"]
    manifest_path = Path(row["manifest_uri"])
    manifest = json.loads(manifest_path.read_text())
    manifest["restoration"]["ops"] = [{"op": "denoise", "params": {}}]  # claims an operation that never ran
    manifest["upscale"]["model"] = "someone-else"
    manifest_path.write_text(json.dumps(manifest))
    problems = verify_output(row)["problems"]
    assert problems == [
        "the operations in the manifest differ from the catalog's",
        "the model in the manifest differs from the catalog's",
    ]
    manifest_path.unlink()
    assert verify_output(row)["problems"] == ["the manifest is missing"]


def test_replaced_source_and_forged_output_hash_fail(outputs: dict[str, dict]) -> None:
    row = outputs["master"]
    Path(row["source_uri"]).write_bytes(b"not the footage that was remastered")
    assert verify_output(row)["problems"] == ["the source file has changed since it was remastered"]
    assert not verify_output(row, check_source=False)["flagged"]
    forged = {**row, "output_sha256": "0" * 64}
    assert "the manifest's output SHA-256 differs from the catalog's" in verify_output(forged)["problems"]


def test_content_credentials_seal_verify_and_break(outputs: dict[str, dict], test_key: C2paConfig) -> None:
    access, master = outputs["access"], outputs["master"]
    manifest = verify_output(access)["manifest"]
    assert verify_credentials(access, manifest) is None, "nothing sealed yet"
    uri = seal(access, manifest, test_key, related={"master": master["output_sha256"]})
    assert uri == credentials_uri(access["output_uri"]) and Path(uri).stat().st_size > 1000
    assert not verify_output(access)["flagged"], "the sidecar leaves the output's bytes and hash alone"
    checked = verify_credentials(access, manifest)
    assert checked["state"] in ("Valid", "Trusted") and not checked["flagged"], checked

    edited = json.loads(json.dumps(manifest))
    edited["source"]["sha256"] = "f" * 64
    assert verify_credentials(access, edited)["problems"] == ["the signed facts differ from the manifest's"]

    path = Path(access["output_uri"])
    data = bytearray(path.read_bytes())
    data[-200] ^= 0x01
    path.write_bytes(bytes(data))
    broken = verify_credentials(access, manifest)
    assert broken["flagged"] and broken["state"] == "Invalid", broken

    assert verify_credentials(master, verify_output(master)["manifest"]) is None, (
        "Matroska is not a C2PA format"
    )
    with pytest.raises(ValueError, match="C2PA cannot bind"):
        seal(master, manifest, test_key)
