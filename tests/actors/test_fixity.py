"""A master is checked against its policy before it is published, and its frame checksums
let fixity be re-verified later without the source, naming the frames that changed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from test_remaster import make_clip

from actors.fixity import (
    MASTER_POLICY,
    check_master,
    checksums_uri,
    crc32_msb,
    differing_frames,
    ffv1_slices_verified,
    frame_checksums,
    read_checksums,
)
from actors.qc_policy import PolicyRule
from actors.remaster import Remasterer


def remaster(tmp_path: Path, **options) -> list[dict]:
    source = make_clip(tmp_path / "tape.mkv", size=(48, 32), frames=8)
    remasterer = Remasterer(out_root=str(tmp_path / "out"), restore="off", upscale=1, **options)
    return remasterer(pa.table({"asset_id": ["tape"], "uri": [str(source)]})).to_pylist()


def test_ffv1s_crc_is_the_msb_first_ieee_one_whose_parity_zeroes_it() -> None:
    assert crc32_msb(b"123456789") == 0x89A1897F  # CRC-32/CKSUM's check value before its final xor
    data = b"an FFV1 slice"
    assert crc32_msb(data + crc32_msb(data).to_bytes(4, "big")) == 0


def test_a_master_is_published_with_its_frame_checksums_and_passes_its_policy(tmp_path: Path) -> None:
    rows = remaster(tmp_path)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    master = next(r for r in rows if r["kind"] == "master")
    manifest = json.loads(Path(master["manifest_uri"]).read_text())
    assert manifest["policy"] == {"rules": len(MASTER_POLICY), "passed": True}
    fixity = manifest["fixity"]
    assert fixity["frames"] == 8 and fixity["frame_checksums_uri"] == checksums_uri(master["output_uri"])
    recorded = read_checksums(Path(fixity["frame_checksums_uri"]).read_text())
    found = frame_checksums(master["output_uri"])
    assert found.frames == recorded and len({digest for _, digest in recorded}) == 8  # a moving picture
    assert found.non_keyframes == 0 and found.slice_crcs_verified and found.extradata_crc_verified
    access = next(r for r in rows if r["kind"] == "access")
    assert "fixity" not in json.loads(Path(access["manifest_uri"]).read_text())


def test_a_changed_master_names_its_changed_frames_and_fails_its_crcs(tmp_path: Path) -> None:
    master = next(r for r in remaster(tmp_path) if r["kind"] == "master")
    path = Path(master["output_uri"])
    recorded = read_checksums(Path(checksums_uri(str(path))).read_text())
    packets = frame_checksums(str(path))
    assert packets.slice_crcs_verified
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside a frame's slices, well past the header
    data[middle] ^= 0xFF
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    found = frame_checksums(str(damaged))
    assert found.slice_crcs_verified is False
    problems = differing_frames(recorded, found.frames)
    assert problems and all(
        "differs from its recorded checksum" in p or "frames decoded" in p for p in problems
    )
    assert len(problems) < 8  # the frames around the damage, not all of them


def test_a_master_that_is_not_ffv1_with_keyframes_only_fails_in_words(tmp_path: Path) -> None:
    h264 = make_clip(tmp_path / "not-a-master.mp4", size=(48, 32), frames=30, codec="libx264")
    _, record = check_master(str(h264), MASTER_POLICY)
    assert record["policy_passed"] is False
    failures = " | ".join(record["policy_failures"])
    assert "video_codec is 'h264'" in failures and "a preservation master is FFV1" in failures
    assert "non_keyframes is" in failures and "slice_crcs_verified is unknown" in failures


def test_a_policy_the_master_fails_publishes_nothing(tmp_path: Path) -> None:
    impossible = [*MASTER_POLICY, PolicyRule(field="bit_depth", at_least=16, note="16-bit masters only")]
    rows = remaster(tmp_path, master_policy=impossible)
    assert [r["status"] for r in rows] == ["failed"]
    assert (
        "the master fails its policy: bit_depth is 8, not at least 16 (16-bit masters only)"
        in rows[0]["error"]
    )
    assert not (tmp_path / "out" / "tape").exists() or not any((tmp_path / "out" / "tape").iterdir())


def test_ffv1_slices_are_found_from_the_end_of_the_packet() -> None:
    def slice_of(payload: bytes) -> bytes:
        body = payload + len(payload).to_bytes(3, "big") + b"\x00"
        return body + crc32_msb(body).to_bytes(4, "big")

    packet = slice_of(b"first slice") + slice_of(b"second, longer slice")
    assert ffv1_slices_verified(packet)
    assert not ffv1_slices_verified(packet[:-1] + bytes([packet[-1] ^ 1]))
    assert not ffv1_slices_verified(b"\x00" * 4)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p10le", "gbrp10le", "bgr0"])
def test_checksums_ignore_line_padding_and_see_every_plane(tmp_path: Path, pix_fmt: str) -> None:
    clip = make_clip(tmp_path / f"{pix_fmt}.mkv", size=(34, 18), frames=3, pix_fmt=pix_fmt)
    first, again = frame_checksums(str(clip)), frame_checksums(str(clip))
    assert first.frames == again.frames and len({d for _, d in first.frames}) == 3
