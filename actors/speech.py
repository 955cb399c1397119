"""Speech as a column: an asset's transcript travels with its rows to the shots.

The speech stage runs on asset rows (one decode of the audio per asset) and
adds the asset's segments; the segment stage carries them to every shot row;
`shot_transcript` then keeps, for each shot, what was said over it. So the
caption and the description of a shot can quote its speech without a join
at the driver.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import Field

from actors.keyframes import append_columns
from actors.stage import RUNTIME, ModelParams, Owned, Stage
from actors.transcribe import Transcriber, link_segments_to_shots, shot_transcripts
from catalog.rows import shot_rows
from catalog.schema import SHOT_TRANSCRIPT, SPEECH, TRANSCRIPTS

SEGMENT_FIELDS = [f.name for f in SPEECH.field("speech").type.value_type]


class SpeechParams(ModelParams):
    model: str | None = Field(None, description="a faster-whisper model name or CTranslate2 folder")
    compute_type: str = Field("int8", description="CTranslate2's weight type")
    vad_filter: bool = Field(True, description="skip what the voice detector calls silence")
    language: str | None = Field(None, description="None: detected per asset (English-only models: en)")
    beam_size: int = Field(5, ge=1, le=10)
    window_s: float = Field(600.0, ge=30, description="seconds of audio decoded at a time")
    cpu_threads: int = Field(0, ge=0, description="0: CTranslate2 chooses", json_schema_extra=RUNTIME)


class AssetSpeech(Stage):
    """Adds `speech` (the asset's transcript segments) to asset rows."""

    name = "speech"
    Params = SpeechParams
    level = "asset"
    reads = ("asset_id", "uri")
    writes = SPEECH
    owns = (Owned("transcripts"),)
    context = ("storage_options",)

    def setup(self, *, storage_options: dict[str, Any] | None = None, **transcriber: Any) -> None:
        self.transcriber = Transcriber(storage_options=storage_options, **transcriber)

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        """The asset's speech segments, with the shots they are said over (when it has shots)."""
        segments = asset_segments(rows)
        links: dict[tuple[str, int], list[str]] = {}
        if "shot_id" in rows.column_names:
            shots = shot_rows(rows)
            links = link_segments_to_shots(
                segments, shots.select(["asset_id", "shot_id", "start_s", "end_s"])
            )
        segment_rows = [
            {**s, "shot_ids": links.get((s["asset_id"], s["segment_index"]), [])} for s in segments
        ]
        names = [f.name for f in TRANSCRIPTS if f.name not in ("run_id", "pipeline_version")]
        return {
            "transcripts": pa.Table.from_pylist(
                segment_rows, schema=pa.schema([TRANSCRIPTS.field(n) for n in names])
            )
        }

    def __call__(self, batch: pa.Table) -> pa.Table:
        speech = []
        for asset in batch.select(["asset_id", "uri"]).to_pylist():
            segments = self.transcriber.transcribe(asset["asset_id"], asset["uri"])
            speech.append([{k: s[k] for k in SEGMENT_FIELDS} for s in segments])
        return append_columns(batch, SPEECH, {"speech": speech})


def shot_transcript(batch: pa.Table) -> pa.Table:
    """The shot rows with `transcript`: the words said over each shot (null where none were),
    from the asset's `speech`; rows that bring their own transcript and no speech keep it."""
    if "speech" not in batch.column_names:
        if "transcript" in batch.column_names:
            return batch
        return append_columns(batch, SHOT_TRANSCRIPT, {"transcript": [None] * batch.num_rows})
    shots = batch.select(["asset_id", "shot_id", "start_s", "end_s"]).to_pylist()
    segments = asset_segments(batch)
    said = shot_transcripts(segments, link_segments_to_shots(segments, shots))
    return append_columns(batch, SHOT_TRANSCRIPT, {"transcript": [said.get(s["shot_id"]) for s in shots]})


def asset_segments(rows: pa.Table) -> list[dict[str, Any]]:
    """Each asset's speech segments once, from rows that carry `speech` (one row per shot)."""
    segments: list[dict[str, Any]] = []
    seen: set[str] = set()
    for asset_id, speech in zip(rows["asset_id"].to_pylist(), rows["speech"].to_pylist(), strict=True):
        if asset_id not in seen:
            seen.add(asset_id)
            segments.extend({**s, "asset_id": asset_id} for s in speech or [])
    return segments
