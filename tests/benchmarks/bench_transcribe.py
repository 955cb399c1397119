"""Transcript benchmark: speed (seconds per second of audio) and word error rate on synthetic speech.

Run ``python tests/benchmarks/bench_transcribe.py`` (``--json`` for machine-readable output). Needs
``espeak-ng`` on the PATH.

The bundled clips hold no speech, so the speech is made: ``SCRIPT``'s sentences spoken by espeak-ng,
laid on a track with pauses of 1-3 s between them (so voice-activity filtering has work to do), then
muxed as AAC into an mp4 as an archive file would hold it. The transcriber reads that mp4 as it
reads any asset. Word error rate is word-level edit distance over the script's word count, after
lower-casing and dropping punctuation. Robotic espeak speech is harder than a clean human voice for
Whisper, so the WER is pessimistic; speed is what it is. Timings are the best of ``--repeat`` runs
with the model already loaded, on however many cores ``--threads`` allows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from actors.transcribe import SAMPLE_RATE, Transcriber  # noqa: E402

SCRIPT = [
    "Good evening, and welcome to the news at six.",
    "The harbour lights were switched on at night for the first time in forty years.",
    "Fishing boats returned to port early as the storm moved in from the west.",
    "In the city, cyclists and taxis shared the narrow streets during the morning rush.",
    "The museum opened a new gallery of old photographs and film cameras.",
    "Tomorrow will be cold and bright, with frost in the valleys.",
]


def speak(text: str, folder: Path) -> np.ndarray:
    wav = folder / "line.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
    with wave.open(str(wav)) as handle:
        rate, raw = handle.getframerate(), handle.readframes(handle.getnframes())
    samples = np.frombuffer(raw, np.int16).astype(np.float32) / 32768
    times = np.arange(int(len(samples) * SAMPLE_RATE / rate)) / SAMPLE_RATE
    return np.interp(times, np.arange(len(samples)) / rate, samples).astype(np.float32)


def make_clip(folder: Path, seed: int = 0) -> tuple[Path, float]:
    rng = np.random.default_rng(seed)
    parts = []
    for line in SCRIPT:
        parts += [np.zeros(int(rng.uniform(1, 3) * SAMPLE_RATE), np.float32), speak(line, folder)]
    track = np.concatenate([*parts, np.zeros(SAMPLE_RATE, np.float32)])
    track += rng.normal(0, 0.003, track.size).astype(np.float32)  # a little tape hiss
    path = folder / "news.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for start in range(0, len(track), 1024):
            frame = av.AudioFrame.from_ndarray(track[start : start + 1024].reshape(1, -1), format="flt",
                                               layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path, len(track) / SAMPLE_RATE


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1] / len(reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng): it speaks the test script")
    with tempfile.TemporaryDirectory() as tmp:
        clip, seconds = make_clip(Path(tmp))
        started = time.perf_counter()
        transcriber = Transcriber(device="cpu", cpu_threads=args.threads)
        load_s = time.perf_counter() - started
        assets = pa.table({"asset_id": ["news"], "uri": [str(clip)]})
        timings, rows = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            rows = transcriber(assets).to_pylist()
            timings.append(time.perf_counter() - started)
    hypothesis = words(" ".join(row["text"] for row in rows))
    report = {
        "audio_s": round(seconds, 1),
        "speech_lines": len(SCRIPT),
        "segments": len(rows),
        "model_load_s": round(load_s, 2),
        "transcribe_s": round(min(timings), 2),
        "seconds_per_audio_second": round(min(timings) / seconds, 3),
        "wer": round(word_error_rate(words(" ".join(SCRIPT)), hypothesis), 3),
        "threads": args.threads,
        "transcript": [(row["start_s"], row["end_s"], row["text"]) for row in rows],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if key != "transcript":
            print(f"{key:26s} {value}")
    for start, end, text in report["transcript"]:
        print(f"  {start:6.2f}-{end:6.2f}  {text}")


if __name__ == "__main__":
    main()
