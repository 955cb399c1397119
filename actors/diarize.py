"""The diarize stage: who speaks when, per asset, over the speech the transcript found.

Speech regions are the transcript's segments (the speech stage's Whisper + Silero VAD), so
music and ambience never reach the voice model. Inside them, GE2E embeddings of 1.6 s windows
every 0.4 s (`actors.voice_encoder`) are clustered by average-linkage agglomeration on cosine
distance, cut at a distance threshold, so the number of speakers is found, not given. Clusters
with less than `min_speaker_s` of speech are folded into the nearest other (a speaker who says
less than 3 s in an asset is not told apart: on the tuning dialogue such clusters were fragments
of a voice, which then also split that voice across the archive), and every window is then
given its nearest centroid (one refinement). Each 0.1 s of a segment takes the label of
its nearest window; a label that holds for less than `min_turn_s` takes its neighbours'; frames
quieter than 35 dB below the segment's loudest are not speech. Runs of one label are the
speaker turns; a transcript segment's speaker is the label with most of its time (readers fold
it in from the turns: `catalog.voices`).

Speakers are named `S1`, `S2`, … in order of first speech within an asset; the archive-wide
voice a speaker belongs to is decided after the run's commit (`catalog.voices`), from the
centroid each speaker row keeps.

Audio is decoded in windows as the transcript stage does (`actors.transcribe.audio_windows`),
so memory does not grow with a film's length; at most `max_cluster_windows` windows are
clustered (evenly subsampled beyond that, then all assigned to the centroids).

Defaults chosen on `tests/benchmarks/bench_diarization.py`'s tuning dialogue (threshold: 0.27-0.30
gave the same turns, 0.25 split voices, 0.32 merged two male voices); on its measured dialogue
(other voices and sentences) DER is 2.5 % with the 0.25 s collar, 7.8 % without.

Bad input is data: audio that cannot be decoded, or too little speech to tell voices apart,
gives the asset one row whose `error` says which and why; the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import av
import fsspec
import numpy as np
import pyarrow as pa
from pydantic import Field
from scipy.cluster.hierarchy import fcluster, linkage

from actors.keyframes import append_columns
from actors.stage import ModelParams, Owned, Resources, Stage
from actors.transcribe import SAMPLE_RATE, _local_path, audio_windows
from actors.voice_encoder import VoiceEncoder
from catalog.schema import DIARIZATION, SPEAKERS

log = logging.getLogger(__name__)

FRAME_S = 0.1
"""The resolution of speaker turns."""
QUIET_DB = 35.0
"""A frame this far below its segment's loudest frame is a pause, not speech."""
TARGET_DBFS = -30.0
"""Quiet speech is raised to this level before embedding, as GE2E was trained (never lowered)."""


class DiarizeParams(ModelParams):
    weights: str | None = Field(None, description="a GE2E checkpoint; None: resemblyzer's pretrained.pt")
    threshold: float = Field(
        0.28, gt=0, lt=2, description="cosine distance at which two groups of speech are different voices"
    )
    hop_s: float = Field(0.4, ge=0.1, le=1.6, description="seconds between embedded 1.6 s windows")
    min_speech_s: float = Field(1.0, ge=0, description="less speech than this in an asset is an error")
    min_speaker_s: float = Field(3.0, ge=0, description="a speaker with less speech joins the nearest")
    min_turn_s: float = Field(0.6, ge=0, description="a turn shorter than this takes its neighbours' label")
    max_cluster_windows: int = Field(2000, ge=50, description="windows clustered at most; the rest assigned")
    window_s: float = Field(600.0, ge=30, description="seconds of audio decoded at a time")


@dataclass
class Diarization:
    """One asset's result: turns (speaker, start, end) and each speaker's centroid and speech."""

    turns: list[tuple[str, float, float]] = field(default_factory=list)
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None


class DiarizationError(ValueError):
    """An asset whose voices cannot be told apart: the message says why."""


class Diarizer:
    """Diarization of one asset's audio given its transcript segments (dicts with start_s, end_s)."""

    def __init__(self, params: DiarizeParams | None = None, **kwargs: Any) -> None:
        self.params = params or DiarizeParams(**kwargs)
        self.encoder = VoiceEncoder(self.params.weights, self.params.device)
        self.model_name = self.encoder.model_name

    def diarize(
        self, windows: Iterable[tuple[float, np.ndarray]], segments: list[dict[str, Any]]
    ) -> Diarization:
        """Turns and speakers of the segments' speech; raises DiarizationError when there is too
        little of it (av.FFmpegError / OSError from `windows` pass through)."""
        spans = sorted(
            (float(s["start_s"]), float(s["end_s"])) for s in segments if s["end_s"] > s["start_s"]
        )
        speech_s = sum(end - start for start, end in spans)
        if speech_s < max(self.params.min_speech_s, 1e-9):
            raise DiarizationError(
                f"too little speech to tell voices apart: {speech_s:.2f} s in {len(spans)} transcript "
                f"segments (diarization needs at least {self.params.min_speech_s:g} s)"
            )
        pieces = list(self._embedded(windows, spans))
        if not pieces:
            raise DiarizationError("the audio ends before the transcript's speech: nothing to embed")
        embeddings = np.concatenate([p.embeddings for p in pieces])
        labels = self._cluster(embeddings)
        found = Diarization()
        at = 0
        for piece in pieces:
            piece.labels = labels[at : at + len(piece.embeddings)]
            at += len(piece.embeddings)
        raw = [turn for piece in pieces for turn in piece.turns(self.params.min_turn_s)]
        names = {
            label: f"S{i + 1}" for i, label in enumerate(dict.fromkeys(t[0] for t in sorted(raw, key=_start)))
        }
        found.turns = [(names[label], start, end) for label, start, end in sorted(raw, key=_start)]
        for label, name in names.items():
            mean = embeddings[labels == label].mean(axis=0)
            found.centroids[name] = (mean / max(float(np.linalg.norm(mean)), 1e-9)).astype(np.float32)
            found.seconds[name] = round(sum(e - s for n, s, e in found.turns if n == name), 3)
        return found

    def _embedded(
        self, windows: Iterable[tuple[float, np.ndarray]], spans: list[tuple[float, float]]
    ) -> Iterator[_Piece]:
        hop = max(1, round(self.params.hop_s * SAMPLE_RATE / 160))
        done = 0
        carry = np.zeros(0, np.float32)
        carry_at = 0.0
        for offset, audio in windows:
            if len(carry):  # a segment cut by a window's end is embedded whole in the next
                audio, offset = np.concatenate([carry, audio]), carry_at
            end_of_window = offset + len(audio) / SAMPLE_RATE
            while done < len(spans) and spans[done][1] <= end_of_window:
                start, end = spans[done]
                clip = audio[max(0, int((start - offset) * SAMPLE_RATE)) : int((end - offset) * SAMPLE_RATE)]
                done += 1
                if len(clip) >= SAMPLE_RATE // 10:
                    embeddings, centres = self.encoder.embed_partials(_louder(clip), hop)
                    yield _Piece(start, clip, embeddings, centres + start)
            keep_from = spans[done][0] if done < len(spans) else end_of_window
            cut = max(0, int((keep_from - offset) * SAMPLE_RATE))
            carry, carry_at = audio[cut:], offset + cut / SAMPLE_RATE
        if done < len(spans) and len(carry):  # the transcript runs past the decoded audio
            for start, end in spans[done:]:
                clip = carry[
                    max(0, int((start - carry_at) * SAMPLE_RATE)) : int((end - carry_at) * SAMPLE_RATE)
                ]
                if len(clip) >= SAMPLE_RATE // 10:
                    embeddings, centres = self.encoder.embed_partials(_louder(clip), hop)
                    yield _Piece(start, clip, embeddings, centres + start)

    def _cluster(self, embeddings: np.ndarray) -> np.ndarray:
        """A label per window: agglomerated at the threshold, small clusters folded, refined."""
        if len(embeddings) == 1:
            return np.zeros(1, np.int64)
        step = max(1, int(np.ceil(len(embeddings) / self.params.max_cluster_windows)))
        sample = embeddings[::step]
        labels = fcluster(
            linkage(sample, method="average", metric="cosine"), self.params.threshold, "distance"
        )
        centroids = _centroids(sample, labels)
        window_s = self.params.hop_s * step
        sizes = {label: float((labels == label).sum()) * window_s for label in centroids}
        big = [label for label in centroids if sizes[label] >= self.params.min_speaker_s]
        if not big:
            big = [max(sizes, key=lambda label: sizes[label])]
        kept = np.stack([centroids[label] for label in big])
        assigned = np.argmax(embeddings @ kept.T, axis=1)
        refined = np.stack(
            [
                _unit(embeddings[assigned == i].mean(axis=0)) if (assigned == i).any() else kept[i]
                for i in range(len(big))
            ]
        )
        return np.argmax(embeddings @ refined.T, axis=1)


class AssetDiarize(Stage):
    """Adds `speakers` (the asset's speakers, each with its turns and centroid) to asset rows.

    Off unless the job asks for it (`stages: {diarize: {enabled: true}}`): it decodes each
    asset's audio a second time, after the speech stage, and its rows feed the archive's voices."""

    name = "diarize"
    Params = DiarizeParams
    level = "asset"
    reads = ("asset_id", "uri", "speech")
    writes = DIARIZATION
    owns = (Owned("speakers"),)
    resources = Resources(max_actors=1, batch_size=2)
    context = ("storage_options",)
    enabled_by_default = False

    def setup(self, *, storage_options: dict[str, Any] | None = None, **_: Any) -> None:
        self.storage_options = storage_options or {}
        self.diarizer = Diarizer(self.params)  # type: ignore[arg-type]

    def __call__(self, batch: pa.Table) -> pa.Table:
        speakers = [
            self.speakers(asset["asset_id"], asset["uri"], asset["speech"] or [])
            for asset in batch.select(["asset_id", "uri", "speech"]).to_pylist()
        ]
        return append_columns(batch, DIARIZATION, {"speakers": speakers})

    def speakers(self, asset_id: str, uri: str, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The asset's speaker rows; [] when nothing is said, one row with `error` when its
        voices cannot be told apart (too little speech, audio that cannot be decoded)."""
        if not segments:
            return []
        model = self.diarizer.model_name
        try:
            with ExitStack() as stack:
                local = _local_path(uri)
                source = local or stack.enter_context(fsspec.open(uri, "rb", **self.storage_options))
                found = self.diarizer.diarize(audio_windows(source, self.params.window_s), segments)  # type: ignore[attr-defined]
        except DiarizationError as exc:
            return [_failed(str(exc), model)]
        except (av.FFmpegError, OSError) as exc:
            log.warning("no diarization for %s: %s: %s", uri, type(exc).__name__, exc)
            return [_failed(f"the audio cannot be decoded: {type(exc).__name__}: {exc}"[:500], model)]
        return [
            {
                "speaker": name,
                "seconds": found.seconds[name],
                "turns": [{"start_s": s, "end_s": e} for n, s, e in found.turns if n == name],
                "embedding": found.centroids[name].tolist(),
                "model": model,
                "error": None,
            }
            for name in found.centroids
        ]

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        """Each asset's speaker rows once (the column rides on every shot row of its asset)."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for asset_id, speakers in zip(
            rows["asset_id"].to_pylist(), rows["speakers"].to_pylist(), strict=True
        ):
            if asset_id not in seen:
                seen.add(asset_id)
                out.extend({"asset_id": asset_id, **s} for s in speakers or [])
        names = [f.name for f in SPEAKERS if f.name not in ("run_id", "pipeline_version")]
        return {"speakers": pa.Table.from_pylist(out, schema=pa.schema([SPEAKERS.field(n) for n in names]))}


def _failed(error: str, model: str) -> dict[str, Any]:
    return {"speaker": None, "seconds": None, "turns": [], "embedding": None, "model": model, "error": error}


@dataclass
class _Piece:
    """One transcript segment's audio and its embedded windows."""

    start_s: float
    audio: np.ndarray
    embeddings: np.ndarray
    centres: np.ndarray
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def turns(self, min_turn_s: float) -> list[tuple[int, float, float]]:
        """(label, start, end) runs over the segment's 0.1 s frames, quiet frames left out."""
        step = int(FRAME_S * SAMPLE_RATE)
        count = max(1, len(self.audio) // step)
        times = self.start_s + (np.arange(count) + 0.5) * FRAME_S
        labels = self.labels[np.abs(times[:, None] - self.centres[None, :]).argmin(axis=1)]
        labels = _without_short_runs(labels, max(1, round(min_turn_s / FRAME_S)))
        energy = np.array(
            [np.sqrt(np.mean(np.square(self.audio[i * step : (i + 1) * step]))) for i in range(count)]
        )
        level = 20 * np.log10(np.maximum(energy, 1e-6))
        voiced = level > level.max() - QUIET_DB
        turns: list[tuple[int, float, float]] = []
        for i in range(count):
            if not voiced[i]:
                continue
            start = self.start_s + i * FRAME_S
            if turns and turns[-1][0] == labels[i] and start - turns[-1][2] < 0.3 + 1e-6:
                turns[-1] = (turns[-1][0], turns[-1][1], start + FRAME_S)
            else:
                turns.append((int(labels[i]), start, start + FRAME_S))
        return [(label, round(start, 3), round(end, 3)) for label, start, end in turns]


def _without_short_runs(labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Runs shorter than min_frames take the label of the longer neighbouring run."""
    labels = labels.copy()
    changed = True
    while changed:
        changed = False
        runs = _runs(labels)
        if len(runs) < 2:
            break
        for i, (_, start, end) in enumerate(runs):
            if end - start < min_frames:
                before = runs[i - 1] if i > 0 else None
                after = runs[i + 1] if i + 1 < len(runs) else None
                neighbour = max((r for r in (before, after) if r), key=lambda r: r[2] - r[1])
                labels[start:end] = neighbour[0]
                changed = True
                break
    return labels


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    runs: list[tuple[int, int, int]] = []
    for i, label in enumerate(labels.tolist()):
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1], i + 1)
        else:
            runs.append((label, i, i + 1))
    return runs


def _centroids(embeddings: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(label): _unit(embeddings[labels == label].mean(axis=0)) for label in np.unique(labels)}


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-9)


def _louder(audio: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(audio)))) if len(audio) else 0.0
    if rms <= 1e-6:
        return audio
    gain = 10 ** ((TARGET_DBFS - 20 * np.log10(rms)) / 20)
    return audio * gain if gain > 1 else audio


def _start(turn: tuple[Any, float, float]) -> float:
    return turn[1]
