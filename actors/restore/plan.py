"""Which operations to run on a shot and how strongly: from the job spec, or decided by ``auto``.

The job spec says ``auto``, ``off`` or a list of operation names, plus
optional parameters per operation. ``auto`` applies an operation when the
shot's measurement crosses a threshold and records the figure and the
threshold as the reason; an explicit list applies exactly what it names. In
both modes parameters the spec leaves open are filled from the measurement
(noise level, block grid, black and white points, colour cast, point
spread, how compressed), and parameters the spec sets win.

Compression is judged from the source's codec and bits per pixel when the
measurement carries them (``source_codec``, ``source_bpp``: what the probe
knows of the file), since a picture alone cannot tell smooth from
compressed; without them, from what the picture shows: blocks on a grid, or
fine detail quantised away in textured areas with no soft focus to explain it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from actors.restore.ops import OPS

THRESHOLDS = {
    "flicker": 0.8,  # luma levels of back-and-forth mean brightness
    "noise": 2.5,  # luma sigma; clean video measures 0.1-1.5, JPEG at q30 up to 2 from its artefacts
    "dust_ppm": 250.0,  # speck pixels per million; clean footage and JPEG at q20 measure under 200
    "scratched_share": 0.5,  # share of measured frames with a scratch line
    "blockiness": 1.3,  # block-edge step over ordinary step
    "range": 140.0,  # white minus black point, luma levels: only a flat, faded picture
    "colour_cast": 0.15,  # largest channel's edge strength off the mean, relative
    # Share of fine DCT detail gone in textured blocks: clean 0.1-0.35 (but bikes.mp4, itself an H.264
    # copy, 0.7), H.264 crf 35 0.4-0.75, JPEG q30 0.7-0.9.
    "hf_loss": 0.8,
    "edge_width": 1.25,  # edge spread sigma in pixels; sharp video 0.5-0.8, the softest clean sample 1.06
}
LOSSY_BPP = {
    "h264": 0.06,
    "hevc": 0.04,
    "vp9": 0.05,
    "av1": 0.04,
    "mpeg4": 0.2,
    "msmpeg4v3": 0.2,
    # MPEG-2 shows artefacts below 0.3, but the committed network gains nothing on it above 0.1
    # (held out: -0.1 dB at 0.18 bits per pixel, +0.03 dB at 0.09): deblock handles its grid there.
    "mpeg2video": 0.1,
    "mpeg1video": 0.1,
    "mjpeg": 1.0,
}
"""Bits per pixel below which a copy in each lossy codec shows its artefacts (H.264 at crf 30 on SD is
about 0.04, the bundled bikes.mp4 0.09; a DVD's MPEG-2 0.3-0.5). Other codecs are judged by the picture."""
SHARP_EDGE = 0.7
"""Edge spread (sigma, pixels) of a sharp picture: sampling and the camera's own optics."""


@dataclass(frozen=True)
class Selection:
    """What the job spec asked for: ``auto`` (the planner decides) or these operations."""

    auto: bool
    ops: tuple[str, ...] = ()


def parse_ops(spec: str | Sequence[str] | None) -> Selection:
    """``"auto"``, ``"off"`` (or ``None``), ``"deflicker,denoise"`` or ``["deflicker", "denoise"]``."""
    if spec is None:
        return Selection(auto=False)
    names = [part.strip() for part in spec.split(",")] if isinstance(spec, str) else [str(s) for s in spec]
    names = [name.lower() for name in names if name]
    if names == ["auto"]:
        return Selection(auto=True)
    if names in ([], ["off"]):
        return Selection(auto=False)
    for name in names:
        if name not in OPS:
            if name in ("auto", "off"):
                raise ValueError(f"restoration '{name}' cannot be combined with operation names: {spec!r}")
            raise ValueError(f"unknown restoration operation '{name}'; known: auto, off, {', '.join(OPS)}")
    return Selection(auto=False, ops=tuple(name for name in OPS if name in names))


def check_params(params: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Per-operation parameters from the job spec, with unknown operations or keys named in the error."""
    checked: dict[str, dict[str, Any]] = {}
    for name, values in (params or {}).items():
        if name not in OPS:
            raise ValueError(
                f"parameters given for unknown restoration operation '{name}'; known: {', '.join(OPS)}"
            )
        allowed = {f.name for f in dataclasses.fields(OPS[name]) if f.init}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(
                f"restoration operation '{name}' has no parameter "
                f"{', '.join(map(repr, unknown))}; it takes {', '.join(sorted(allowed))}"
            )
        OPS[name](**values)  # fails now, naming the op, if a value is unusable
        checked[name] = dict(values)
    return checked


@dataclass
class Plan:
    """Operations in application order with their parameters, and why each was or was not chosen."""

    mode: str  # 'auto', 'manual' or 'off'
    ops: list[dict[str, Any]]  # [{"op": name, "params": {...}}]
    decisions: list[dict[str, Any]]  # [{"op": name, "apply": bool, "why": text}]
    measurements: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _measured_params(name: str, m: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters an operation takes from the shot's measurement rather than a fixed default."""
    if name == "denoise":
        return {"sigma": round(float(m["noise"]), 2)}
    if name == "deblock":
        return {"offset_x": int(m.get("block_offset_x", 0)), "offset_y": int(m.get("block_offset_y", 0))}
    if name == "contrast":
        return {"black": round(float(m["black"]), 1), "white": round(float(m["white"]), 1)}
    if name == "balance":
        grey = sum(m["channel_edges"]) / 3
        return {"gains": [round(min(max(grey / max(c, 1e-3), 0.75), 1.33), 4) for c in m["channel_edges"]]}
    if name == "artefacts":
        return {"strength": _compression(m)[1]}
    if name == "deblur":
        width = float(m.get("edge_width", 0.0))
        return {"sigma": round(min(max(np.sqrt(max(width**2 - SHARP_EDGE**2, 0.0)), 0.3), 3.0), 2)}
    return {}


def _strength(excess: float) -> float:
    """Half strength just past a threshold, full from 1.5 times it: a borderline case gets a light touch."""
    return round(min(max(0.5 + excess, 0.5), 1.0), 2)


def _compression(m: Mapping[str, Any]) -> tuple[bool, float, str]:
    """Whether a shot shows codec damage worth the network, with what strength, and why."""
    lost, blockiness, width = (
        float(m.get(key, d)) for key, d in (("hf_loss", 0.0), ("blockiness", 1.0), ("edge_width", 0.0))
    )
    seen = f"ringing {float(m.get('ringing', 1.0)):.2f}, hf_loss {lost:.2f}"
    codec, bpp = m.get("source_codec"), m.get("source_bpp")
    if codec in LOSSY_BPP and bpp is not None:
        limit, value = LOSSY_BPP[str(codec)], float(bpp)
        low = value < limit
        why = f"source {codec} at {value:.3f} bits per pixel {'<' if low else '>='} {limit} ({seen})"
        return low, _strength(limit / max(value, 1e-6) - 1.0), why
    origin = f"source {codec} is not a lossy codec of known rate; " if codec else ""
    if blockiness > THRESHOLDS["blockiness"]:
        why = f"{origin}blockiness {blockiness:.2f} > {THRESHOLDS['blockiness']} ({seen})"
        return True, _strength(blockiness / THRESHOLDS["blockiness"] - 1.0), why
    sharp = width <= THRESHOLDS["edge_width"]
    if lost > THRESHOLDS["hf_loss"] and sharp:
        why = f"{origin}{seen}: hf_loss > {THRESHOLDS['hf_loss']} with sharp edges (edge_width {width:.2f})"
        return True, _strength(lost / THRESHOLDS["hf_loss"] - 1.0), why
    verdict = "<=" if lost <= THRESHOLDS["hf_loss"] else "> (soft focus explains it)"
    why = (
        f"{origin}no sign of codec damage: blockiness {blockiness:.2f} <= {THRESHOLDS['blockiness']}, "
        f"{seen} {verdict} {THRESHOLDS['hf_loss']}"
    )
    return False, 1.0, why


def _auto_decision(
    name: str,
    m: Mapping[str, Any],
    params: Mapping[str, Mapping[str, Any]],
) -> tuple[bool, str]:
    """Whether ``auto`` applies an operation to a shot so measured, and the reason in words."""

    def above(key: str, unit: str = "") -> tuple[bool, str]:
        value, limit = float(m[key]), THRESHOLDS[key]
        return value > limit, f"{key} {value:.2f}{unit} {'>' if value > limit else '<='} {limit}{unit}"

    if name == "deflicker":
        return above("flicker", " levels")
    if name == "denoise":
        return above("noise", " sigma")
    if name == "dust":
        return above("dust_ppm")
    if name == "scratch":
        return above("scratched_share")
    if name == "deblock":
        return above("blockiness")
    if name == "artefacts":
        apply, _, why = _compression(m)
        return apply, why
    if name == "deblur":
        soft, why = above("edge_width", " px")
        if soft and _compression(m)[0]:
            return False, f"{why}, but codec damage softens it too: sharpening would sharpen the artefacts"
        return soft, why
    if name == "contrast":
        spread = float(m["white"]) - float(m["black"])
        low = spread < THRESHOLDS["range"]
        comparison = "<" if low else ">="
        return low, (
            f"range {m['black']:.0f}..{m['white']:.0f} = {spread:.0f} {comparison} {THRESHOLDS['range']}"
        )
    if name == "balance":
        if m["monochrome"]:
            return False, "monochrome shot: no colour to balance"
        return above("colour_cast")
    if name == "colorize":
        if not m["monochrome"]:
            return False, f"shot has colour (chroma spread {m['chroma_spread']:.1f})"
        if not params.get("colorize", {}).get("reference"):
            return False, "monochrome shot, but no colorize reference image in the job spec"
        return True, f"monochrome shot (chroma spread {m['chroma_spread']:.1f}) and a reference image given"
    raise KeyError(name)


def make_plan(
    measurements: Mapping[str, Any],
    selection: Selection,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """The plan for a shot so measured, under what the job spec selected."""
    params = check_params(params)
    ops, decisions = [], []
    for name in OPS:
        if selection.auto:
            apply, why = _auto_decision(name, measurements, params)
        else:
            apply = name in selection.ops
            why = "named in the job spec" if apply else "not named in the job spec"
        decisions.append({"op": name, "apply": apply, "why": why})
        if apply:
            merged = {**_measured_params(name, measurements), **params.get(name, {})}
            op = OPS[name](**merged)
            values = {f.name: getattr(op, f.name) for f in dataclasses.fields(op) if f.init}
            ops.append({"op": name, "params": values})
    mode = "auto" if selection.auto else ("manual" if selection.ops else "off")
    return Plan(mode=mode, ops=ops, decisions=decisions, measurements=dict(measurements))
