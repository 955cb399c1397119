"""The remaster stage as a column of asset rows.

`Remasterer` maps an asset to its output rows (master, access copy, or one
failed row). Here those rows ride on the asset's own row, so they are spooled,
committed and resumed together with the asset's shots.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from actors.access_codecs import AV1_CRF, AV1_PRESET
from actors.fixity import MASTER_POLICY
from actors.keyframes import append_columns
from actors.qc_policy import PolicyRule
from actors.remaster import Remasterer
from actors.restore import parse_ops
from actors.restore.retime import MAX_FPS, MIN_FPS, check_rate
from actors.stage import RUNTIME, ModelParams, Owned, Resources, Stage
from catalog.rows import first_per_asset
from catalog.schema import REMASTERED


class RemasterParams(ModelParams):
    restore: str = Field("auto", description="'auto', 'off', or operations separated by commas")
    upscale: Literal[1, 2, 4] = Field(2, description="how many times the picture's sides grow")
    upscale_method: Literal["network", "lanczos"] = Field(
        "network", description="the upscaler trained here, or Lanczos resampling"
    )
    weights: str | None = Field(None, description="upscaler weights instead of the committed ones")
    crf: int = Field(18, ge=0, le=51, description="quality of the H.264 access copy")
    access_codec: Literal["h264", "av1"] = Field(
        "h264", description="the access copy's video: H.264 plays everywhere, AV1 is smaller"
    )
    film_grain: int = Field(
        0, ge=0, le=50, description="AV1 film-grain synthesis: SVT-AV1's grain level, 0 for none"
    )
    av1_crf: int = Field(AV1_CRF, ge=0, le=63, description="quality of an AV1 access copy (SVT-AV1 crf)")
    av1_preset: int = Field(
        AV1_PRESET, ge=0, le=13, description="SVT-AV1 speed: 0 slowest and smallest, 13 fastest"
    )
    quality_frames: int = Field(
        16,
        ge=0,
        description="frames of the access copy scored against the source (VMAF, PSNR, SSIM); 0: none",
    )
    retime_fps: float | None = Field(
        None,
        ge=MIN_FPS,
        le=MAX_FPS,
        description="the access copy's frame rate, at the footage's true speed (motion-compensated; "
        "the master keeps the source's frames)",
    )
    source_fps: dict[str, float] = Field(
        default_factory=dict,
        description="the rate footage was shot at, by a pattern of its URI (fnmatch), where the container's "
        "is wrong: {'*/silent/*': 16}; the access copy then plays at its true speed",
    )
    out: str | None = Field(None, description="where outputs go; default: masters/ under the home")
    tile: int | None = Field(
        None, ge=16, description="upscale in tiles of this side", json_schema_extra=RUNTIME
    )
    master_policy: list[PolicyRule] = Field(
        default_factory=lambda: list(MASTER_POLICY),
        description="rules each master must meet before it is published (QC record fields)",
    )

    @field_validator("restore")
    @classmethod
    def _known_operations(cls, value: str) -> str:
        parse_ops(value)
        return value

    @field_validator("source_fps")
    @classmethod
    def _plausible_rates(cls, value: dict[str, float]) -> dict[str, float]:
        for pattern, rate in value.items():
            check_rate(rate, f"source_fps[{pattern!r}]")
        return value

    @model_validator(mode="after")
    def _grain_needs_av1(self) -> RemasterParams:
        if self.film_grain and self.access_codec != "av1":
            raise ValueError(
                f"film_grain: film-grain synthesis is AV1's; set access_codec: av1 "
                f"(access_codec is {self.access_codec})"
            )
        return self


class AssetRemaster(Stage):
    """Restores and upscales each asset into a preservation master and an access copy.

    Adds `remasters` (the output rows) to asset rows; the work happens in `Remasterer`."""

    name = "remaster"
    Params = RemasterParams
    level = "asset"
    reads = ("asset_id", "uri")
    writes = REMASTERED
    owns = (Owned("remasters"),)
    resources = Resources(batch_size=1)
    context = ("storage_options", "masters_root")
    enabled_by_default = False  # hours of CPU for an archive: asked for, not assumed

    def setup(
        self,
        *,
        out: str | None,
        storage_options: dict[str, Any] | None = None,
        masters_root: str | None = None,
        **remasterer: Any,
    ) -> None:
        out_root = out or masters_root
        if out_root is None:
            raise ValueError("remaster: say where the outputs go (`out`, or the home's masters/)")
        self.remasterer = Remasterer(out_root=out_root, storage_options=storage_options, **remasterer)

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        per_asset = first_per_asset(rows)
        return {
            "remasters": pa.Table.from_struct_array(pc.list_flatten(per_asset["remasters"].combine_chunks()))
        }

    def __call__(self, batch: pa.Table) -> pa.Table:
        outputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.remasterer(batch.select(["asset_id", "uri"])).to_pylist():
            outputs[row["asset_id"]].append(row)
        ids = batch["asset_id"].to_pylist()
        return append_columns(batch, REMASTERED, {"remasters": [outputs.get(a, []) for a in ids]})
