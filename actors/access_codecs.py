"""The access copy's video encoder: H.264 for reach, or AV1 with film-grain synthesis for size.

Both go into MP4 with the index up front, which browsers play: H.264 everywhere,
AV1 (``av01`` in MP4) in current Chrome, Firefox, Edge and Safari on hardware
with an AV1 decoder. AV1 is SVT-AV1 (``libsvtav1``, in PyAV's wheel); its
film-grain synthesis sends a grain model instead of the grain itself, and the
decoder lays grain of that look over the picture: grain costs an encoder the
most bits and is what the viewer least needs exactly. ``film_grain`` is
SVT-AV1's denoising level for the estimate (1-50; 0 is off). The encoder is
told not to denoise (``film-grain-denoise=0``): the remaster's restoration
already decided what noise to take out, and the grain model is estimated on
what it left.

The AV1 defaults (``crf`` 36, ``preset`` 6) were chosen with
``tests/benchmarks/bench_access_copies.py`` (panned photographs with sensor-like noise,
restored, 640x360): AV1 reached the VMAF of H.264 at the stage's default crf 18 at crf
36.7-38.3, so 36 errs towards quality; at crf 36 preset 6 wrote 19% fewer bytes than preset 8
for the same VMAF (27.0 against 33.2 KiB, 99.1) in 1.4 times the encoding time, and preset 4
saved 1% more in 1.9 times preset 6's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENCODERS = {"h264": "libx264", "av1": "libsvtav1"}
AV1_CRF = 36
AV1_PRESET = 6


@dataclass(frozen=True)
class AccessEncoding:
    """What the access copy is encoded with: codec, quality, speed and (AV1) grain synthesis."""

    codec: str
    crf: int
    preset: str
    film_grain: int = 0

    @classmethod
    def of(
        cls,
        codec: str,
        *,
        crf: int = 18,
        preset: str = "medium",
        film_grain: int = 0,
        av1_crf: int | None = None,
        av1_preset: int | None = None,
    ) -> AccessEncoding:
        """The encoding a remaster's parameters ask for: ``crf``/``preset`` are H.264's,
        ``av1_crf``/``av1_preset`` AV1's; ``film_grain`` only with AV1."""
        if codec not in ENCODERS:
            raise ValueError(f"access_codec: '{codec}' is not one of {', '.join(ENCODERS)}")
        if not 0 <= film_grain <= 50:
            raise ValueError(f"film_grain: {film_grain} is outside 0-50")
        if codec == "h264":
            if film_grain:
                raise ValueError("film_grain: film-grain synthesis needs access_codec 'av1', not 'h264'")
            if not 0 <= crf <= 51:
                raise ValueError(f"crf: {crf} is outside H.264's 0-51")
            return cls("h264", int(crf), preset)
        crf_av1 = AV1_CRF if av1_crf is None else int(av1_crf)
        preset_av1 = AV1_PRESET if av1_preset is None else int(av1_preset)
        if not 0 <= crf_av1 <= 63:
            raise ValueError(f"av1_crf: {crf_av1} is outside SVT-AV1's 0-63")
        if not 0 <= preset_av1 <= 13:
            raise ValueError(f"av1_preset: {preset_av1} is outside SVT-AV1's 0-13")
        return cls("av1", crf_av1, str(preset_av1), int(film_grain))

    @property
    def encoder(self) -> str:
        return ENCODERS[self.codec]

    def options(self) -> dict[str, str]:
        """The encoder's options as FFmpeg takes them."""
        options = {"crf": str(self.crf), "preset": self.preset}
        if self.codec == "av1" and self.film_grain:
            options["svtav1-params"] = f"film-grain={self.film_grain}:film-grain-denoise=0"
        return options

    def manifest(self) -> dict[str, Any]:
        record: dict[str, Any] = {"encoder": self.encoder, "crf": self.crf, "preset": self.preset}
        if self.codec == "av1":
            record["preset"] = int(self.preset)
            record["film_grain"] = self.film_grain
        return record
