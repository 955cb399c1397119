"""An asset's preservation QC record (the catalog's `qc` table) as the shot page's panel shows it:
what the file is, whether it decodes whole, what picture and sound do, and the policy's verdict."""

from __future__ import annotations

from typing import Any


def _spans(items: list[dict[str, Any]] | None) -> str:
    return ", ".join(f"{s['start_s']:.2f}–{s['end_s']:.2f} s" for s in items or []) or "none"


def _or(value: Any, missing: str = "—") -> str:
    return missing if value is None or value == "" else str(value)


def _db(value: float | None) -> str:
    """A level in dBFS to a tenth ('0.0' at full scale, never '-0.0')."""
    return "—" if value is None else f"{round(value, 1) + 0.0:.1f}"


def qc_panel(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """Labelled facts (each with `bad` where it is something an archivist must look at), the
    audio tracks one row each, and the policy's verdict; None for an asset with no QC record."""
    if record is None:
        return None
    declared, decoded = record.get("frames_declared"), record.get("frames_decoded")
    errors = record.get("decode_error_count") or 0
    gaps, jumps = record.get("timestamp_gap_count") or 0, record.get("timestamp_jump_count") or 0
    out_of_range = record.get("luma_out_of_range")
    facts = [
        ("Container", f"{_or(record.get('container'))}, {record.get('duration_s') or 0:.2f} s", False),
        ("Codec", f"{_or(record.get('video_codec'))} ({record.get('video_profile') or 'no profile'})", False),
        (
            "Picture",
            f"{_or(record.get('width'))}×{_or(record.get('height'))} @ {record.get('fps') or 0:.3f} fps, "
            f"{_or(record.get('pix_fmt'))}",
            False,
        ),
        ("Bit depth", f"{_or(record.get('bit_depth'))}-bit", False),
        ("Chroma", _or(record.get("chroma_subsampling")), False),
        (
            "Field order",
            f"{_or(record.get('field_order'))} (declared {_or(record.get('field_order_declared'))}, "
            f"measured {_or(record.get('field_order_measured'))})",
            False,
        ),
        (
            "Aspect",
            f"SAR {record.get('sample_aspect_ratio') or 'unset'}, "
            f"DAR {_or(record.get('display_aspect_ratio'))}",
            False,
        ),
        (
            "Colour",
            f"primaries {_or(record.get('color_primaries'))}, transfer {_or(record.get('color_transfer'))}, "
            f"matrix {_or(record.get('color_matrix'))}, range {_or(record.get('color_range'))}",
            False,
        ),
        ("Timecode", record.get("timecode") or "none", False),
        (
            "Frames",
            f"{_or(decoded)} decoded of {_or(declared)} declared",
            declared is not None and decoded is not None and decoded < declared,
        ),
        ("Decode errors", str(errors), bool(errors)),
        ("Timestamps", f"{gaps} gaps, {jumps} jumps", bool(gaps or jumps)),
        ("Black", _spans(record.get("black_spans")), bool(record.get("black_spans"))),
        ("Frozen", _spans(record.get("frozen_spans")), bool(record.get("frozen_spans"))),
        (
            "Luma",
            f"{_or(record.get('luma_min'))}–{_or(record.get('luma_max'))}, outside "
            f"{_or(record.get('broadcast_range'))}: "
            + (
                f"{100 * out_of_range:.2f}%"
                if out_of_range is not None
                else "not checked (full range or RGB)"
            ),
            bool(out_of_range),
        ),
    ]
    tracks = [
        {
            "stream": t.get("stream"),
            "format": f"{_or(t.get('codec'))} {_or(t.get('channels'))} ch {_or(t.get('sample_rate'))} Hz",
            "peak_dbfs": _db(t.get("peak_dbfs")),
            "rms_dbfs": _db(t.get("rms_dbfs")),
            "clipped_samples": t.get("clipped_samples") or 0,
            "silence": _spans(t.get("silence_spans")),
        }
        for t in record.get("audio_tracks") or []
    ]
    return {
        "status": record.get("status"),
        "error": record.get("error"),
        "facts": [{"label": label, "value": value, "bad": bad} for label, value, bad in facts],
        "decode_errors": [
            f"frame {e.get('frame')} ({e.get('seconds') or 0:.2f} s): {e.get('message')}"
            for e in record.get("decode_errors") or []
        ],
        "audio_tracks": tracks,
        "audio_track_count": record.get("audio_track_count") or len(tracks),
        "policy_passed": record.get("policy_passed"),
        "policy_failures": list(record.get("policy_failures") or []),
    }
