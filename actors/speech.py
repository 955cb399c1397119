"""Speech as a column: an asset's transcript travels with its rows to the shots.

The speech stage runs on asset rows (one decode of the audio per asset) and
adds the asset's segments; the segment stage carries them to every shot row;
`ShotTranscript` then keeps, for each shot, what was said over it. So the
caption and the description of a shot can quote its speech without a join
at the driver.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from actors.keyframes import append_columns
from actors.transcribe import Transcriber, link_segments_to_shots, shot_transcripts
from catalog.schema import SHOT_TRANSCRIPT, SPEECH

SEGMENT_FIELDS = [f.name for f in SPEECH.field("speech").type.value_type]


class AssetSpeech:
    """Adds `speech` (the asset's transcript segments) to asset rows."""

    def __init__(self, **transcriber: Any) -> None:
        self.transcriber = Transcriber(**transcriber)

    def __call__(self, batch: pa.Table) -> pa.Table:
        speech = []
        for asset in batch.select(["asset_id", "uri"]).to_pylist():
            segments = self.transcriber.transcribe(asset["asset_id"], asset["uri"])
            speech.append([{k: s[k] for k in SEGMENT_FIELDS} for s in segments])
        return append_columns(batch, SPEECH, {"speech": speech})


class ShotTranscript:
    """Adds `transcript`: the words said over each shot (null where none were)."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        if "speech" not in batch.column_names:
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
