"""Multi-speaker dialogue made here, with its truth: espeak-ng voices taking turns.

Each turn is one sentence spoken by espeak-ng with a voice variant, pitch and speed; turns are
joined with pauses, and some start before the previous one ends (overlapping speech). The truth
is each turn's speaker and its spoken span (espeak's leading and trailing silence trimmed), in
seconds from the start of the file.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: variant (`en+f3`), pitch 0-99, words per minute."""

    name: str
    variant: str
    pitch: int
    speed: int


@dataclass(frozen=True)
class Turn:
    speaker: str
    start_s: float
    end_s: float
    text: str


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(voice: Voice, text: str) -> np.ndarray:
    """The sentence in this voice, 16 kHz mono float32, its leading and trailing silence cut."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "turn.wav"
        command = ["espeak-ng", "-v", voice.variant, "-p", str(voice.pitch), "-s", str(voice.speed)]
        subprocess.run([*command, "-w", str(wav), text], check=True, capture_output=True)
        with wave.open(str(wav)) as f:
            rate = f.getframerate()
            pcm = np.frombuffer(f.readframes(f.getnframes()), np.int16).astype(np.float32) / 32768
    times = np.arange(0, len(pcm) / rate, 1 / SAMPLE_RATE)
    audio = np.interp(times, np.arange(len(pcm)) / rate, pcm).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio


def dialogue(
    lines: list[tuple[Voice, str]],
    *,
    seed: int = 0,
    pause_s: tuple[float, float] = (0.3, 1.2),
    overlap_share: float = 0.2,
    overlap_s: tuple[float, float] = (0.2, 0.6),
) -> tuple[np.ndarray, list[Turn]]:
    """(16 kHz audio, truth) of the lines spoken in order: a pause drawn from `pause_s` between
    turns, or, for about `overlap_share` of changes of speaker, the next turn starting up to
    `overlap_s` before the previous one ends."""
    rng = random.Random(seed)
    spoken = [(voice, text, speak(voice, text)) for voice, text in lines]
    turns: list[Turn] = []
    placed: list[tuple[int, np.ndarray]] = []
    cursor = int(0.5 * SAMPLE_RATE)
    previous: Voice | None = None
    for voice, text, audio in spoken:
        if previous is not None and previous != voice and rng.random() < overlap_share:
            start = max(0, cursor - int(rng.uniform(*overlap_s) * SAMPLE_RATE))
        elif previous is not None:
            start = cursor + int(rng.uniform(*pause_s) * SAMPLE_RATE)
        else:
            start = cursor
        placed.append((start, audio))
        turns.append(Turn(voice.name, start / SAMPLE_RATE, (start + len(audio)) / SAMPLE_RATE, text))
        cursor = max(cursor, start + len(audio))
        previous = voice
    mix = np.zeros(cursor + int(0.5 * SAMPLE_RATE), np.float32)
    for start, audio in placed:
        mix[start : start + len(audio)] += audio
    return np.clip(mix, -1, 1), turns


def write_wav(path: Path, audio: np.ndarray) -> Path:
    """16-bit PCM WAV at 16 kHz: what a file of the archive would hold."""
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
    return path
