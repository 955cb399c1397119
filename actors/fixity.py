"""Frame checksums and the checks a preservation master must pass before it is published.

A file's SHA-256 says that a master changed; checksums per decoded frame say which frames,
and still hold when the master is re-wrapped into another container, so fixity can be
re-verified later without the source (the practice of ffmpeg's framemd5 and of FFV1
archives). The same decoding pass reads what a policy asks of a master that the general QC
record cannot see from stream headers: whether every packet is a keyframe, and whether
every FFV1 slice carries a CRC that matches its bytes.

FFV1 version 3 ends its extradata, and each slice when slice CRCs are on, with a CRC-32
parity word (the MSB-first IEEE polynomial, initial value 0), so the CRC of the whole
extradata or slice is zero. A slice is found from the end of its packet: its last three
bytes (before the 5-byte error status and parity trailer) are its size.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Any

import av
import fsspec

from actors.probe import open_media, video_stream
from actors.qc import inspect_file
from actors.qc_policy import PolicyRule, check_policy
from catalog.storage import write_atomic

CHECKSUMS_SCHEMA = "archivist.framemd5/1"
CHECKSUMS_SUFFIX = ".framemd5"
_SLICE_TRAILER = 5  # error status (1 byte) and CRC parity (4 bytes), after the 3-byte slice size

MASTER_POLICY = [
    PolicyRule(field="video_codec", in_=["ffv1"], note="a preservation master is FFV1"),
    PolicyRule(
        field="slice_crcs_verified", equals=True, note="FFV1 version 3 with slice CRCs: damage is found"
    ),
    PolicyRule(field="non_keyframes", equals=0, note="every frame a keyframe: each can be recovered alone"),
]
"""What `remaster` checks of each master it writes, unless the job spec says otherwise."""


_BIT_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def crc32_msb(data: bytes) -> int:
    """CRC-32 with the IEEE polynomial, MSB first, initial value 0: FFV1's (not zlib's).

    Computed by zlib at C speed, a master's every byte being checked: the MSB-first CRC of
    some bytes is the bit-reversed reflected CRC of the same bytes with their bits reversed.
    zlib's crc32 starts from and finishes with 0xFFFFFFFF, which the two xors undo."""
    reflected = zlib.crc32(data.translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def ffv1_slices_verified(packet: bytes) -> bool:
    """Whether the packet is FFV1 slices whose every CRC parity matches (False when a slice's
    size does not fit the packet, or a CRC differs: damage, or slices written without CRCs)."""
    end = len(packet)
    while end > 0:
        if end < 3 + _SLICE_TRAILER:
            return False
        size = int.from_bytes(packet[end - 3 - _SLICE_TRAILER : end - _SLICE_TRAILER], "big")
        start = end - size - 3 - _SLICE_TRAILER
        if size == 0 or start < 0 or crc32_msb(packet[start:end]) != 0:
            return False
        end = start
    return True


@dataclass
class FrameChecksums:
    """What one decoding pass over a master found."""

    frames: list[tuple[int, str]] = field(default_factory=list)  # (pts, md5 of the picture)
    non_keyframes: int = 0
    slice_crcs_verified: bool | None = None  # None: not FFV1
    extradata_crc_verified: bool | None = None

    def facts(self) -> dict[str, Any]:
        """The QC record's fields this pass fills (that every frame decodes is this pass's own
        check: a decoding error raises, and the count of frames is the caller's to compare)."""
        return {"non_keyframes": self.non_keyframes, "slice_crcs_verified": self.slice_crcs_verified}

    def text(self) -> str:
        """The checksum file: a header, then one `index pts md5` line per frame."""
        lines = [f"#schema: {CHECKSUMS_SCHEMA}", "#hash: md5 of each decoded picture's planes, unpadded"]
        lines += [f"{i} {pts} {digest}" for i, (pts, digest) in enumerate(self.frames)]
        return "\n".join(lines) + "\n"


def picture_md5(frame: av.VideoFrame) -> str:
    """md5 over the picture's planes in stream order, each row without its line padding."""
    digest = hashlib.md5()
    packed = len(frame.planes) == 1
    for index, plane in enumerate(frame.planes):
        if packed:  # one plane holds every component, padding bytes (bgr0's 0) included
            per_pixel = frame.format.padded_bits_per_pixel // 8
        else:
            per_pixel = sum((c.bits + 7) // 8 for c in frame.format.components if c.plane == index)
        used, data = plane.width * per_pixel, memoryview(plane)
        for y in range(plane.height):
            digest.update(data[y * plane.line_size : y * plane.line_size + used])
    return digest.hexdigest()


def frame_checksums(uri: str, storage_options: dict[str, Any] | None = None) -> FrameChecksums:
    """Decode the file's video once: each picture's md5, keyframe and FFV1 CRC facts."""
    found = FrameChecksums()
    with open_media(uri, storage_options) as container:
        stream = video_stream(container)
        ffv1 = stream.codec_context.name == "ffv1"
        if ffv1:
            extradata = stream.codec_context.extradata or b""
            found.extradata_crc_verified = bool(extradata) and crc32_msb(extradata) == 0
            found.slice_crcs_verified = True
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            if not packet.is_keyframe:
                found.non_keyframes += 1
            if ffv1 and found.slice_crcs_verified:
                found.slice_crcs_verified = ffv1_slices_verified(bytes(packet))
            for frame in packet.decode():
                assert isinstance(frame, av.VideoFrame)  # only the video stream is demuxed
                found.frames.append((int(frame.pts or 0), picture_md5(frame)))
    if ffv1 and not found.extradata_crc_verified:
        found.slice_crcs_verified = False  # FFV1 before version 3 has no CRCs to verify
    return found


def checksums_uri(master_uri: str) -> str:
    return master_uri.rsplit(".", 1)[0] + CHECKSUMS_SUFFIX


def write_checksums(uri: str, checksums: FrameChecksums, storage_options: dict[str, Any] | None) -> None:
    write_atomic(uri, checksums.text().encode(), storage_options or {})


def read_checksums(text: str) -> list[tuple[int, str]]:
    """The (pts, md5) of each frame of a checksum file."""
    if not text.startswith(f"#schema: {CHECKSUMS_SCHEMA}"):
        raise ValueError(f"not an {CHECKSUMS_SCHEMA} file")
    frames = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            _, pts, digest = line.split()
            frames.append((int(pts), digest))
    return frames


def differing_frames(recorded: list[tuple[int, str]], found: list[tuple[int, str]]) -> list[str]:
    """Where a master's frames differ from its recorded checksums, in words (empty: none)."""
    problems = [
        f"frame {i} (pts {want[0]}) differs from its recorded checksum"
        for i, (want, got) in enumerate(zip(recorded, found, strict=False))
        if want != got
    ]
    if len(found) != len(recorded):
        problems.append(f"{len(found)} frames decoded, {len(recorded)} recorded")
    return problems


def check_master(path: str, policy: list[PolicyRule]) -> tuple[FrameChecksums, dict[str, Any]]:
    """A written master's frame checksums and its QC record checked against `policy`
    (`policy_passed`, `policy_failures`), before it is published."""
    checksums = frame_checksums(path)
    record = inspect_file(path)
    record.update(checksums.facts())
    failures = check_policy(record, policy)
    record.update(policy_passed=not failures, policy_failures=failures)
    return checksums, record


def verify_frames(master_uri: str, fixity: dict[str, Any], storage_options: dict[str, Any]) -> list[str]:
    """A master's frames held against the checksums its manifest's `fixity` names, in words."""
    try:
        with fsspec.open(fixity["frame_checksums_uri"], "rt", **storage_options) as handle:
            recorded = read_checksums(handle.read())
    except (OSError, ValueError, KeyError) as exc:
        return [f"the frame checksums cannot be read: {exc}"]
    try:
        found = frame_checksums(master_uri, storage_options).frames
    except (OSError, av.FFmpegError) as exc:
        return [f"the master no longer decodes: {exc}"]
    return differing_frames(recorded, found)
