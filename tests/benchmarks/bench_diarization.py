"""Diarization error rate on generated multi-speaker dialogue, against the truth it was made with.

Run: `.venv/bin/python tests/benchmarks/bench_diarization.py [--set tuning|measured|both]`. Needs
`espeak-ng` on the PATH.

The dialogue is made here (`tests/dialogue_helpers.py`): sentences spoken by espeak-ng voices of
different variant, pitch and speed, taking turns with pauses of 0.3-1.2 s, and about one change of
speaker in five starting up to 0.6 s before the previous turn ends (overlap). The whole pipeline
path runs on it: the speech stage's Whisper (tiny.en, with its VAD) finds the speech segments, the
diarize stage's GE2E windows and clustering label them. The truth is each turn's spoken span.

Two sets, kept apart: `tuning` (its voices and sentences are the ones the stage's defaults were
chosen on: threshold, hop, minimum turn and speaker) and `measured` (other voice variants, pitches
and speeds, other sentences, other seeds), which is the figure reported. No sentence and no voice
variant is in both.

DER is NIST's: (missed speech + false alarm + speaker confusion) / reference speech, scored on
10 ms frames, overlapped speech counted for each of its speakers, hypothesis speakers mapped to
reference speakers one-to-one to minimise the error (Hungarian), printed with the usual 0.25 s
no-score collar around every reference boundary and with no collar.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

REPO = Path(__file__).resolve().parents[2]
for path in (REPO, REPO / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from dialogue_helpers import Turn, Voice, dialogue, have_espeak, write_wav  # noqa: E402

from actors.diarize import Diarization, DiarizeParams, Diarizer  # noqa: E402
from actors.transcribe import Transcriber, audio_windows  # noqa: E402
from catalog.voices import assign_voices  # noqa: E402

STEP_S = 0.01

TUNING_VOICES = [
    Voice("anna", "en+f3", 70, 150),
    Voice("bert", "en+m3", 30, 130),
    Voice("carl", "en+m7", 45, 120),
]
TUNING_LINES = [
    "The committee will meet again on Thursday to discuss the budget.",
    "I thought the budget was settled last month.",
    "Not quite, the library building needs a new roof before winter.",
    "How much will that cost us this year?",
    "Nobody knows yet, the surveyor comes next week.",
    "Then we should wait for the report before we vote.",
    "I agree, but the rain will not wait for us.",
    "Could we borrow the money from the reserve fund?",
    "Only if the council approves it in writing.",
    "Let us ask them tomorrow morning, then.",
]

MEASURED_VOICES = [
    Voice("dora", "en-us+f2", 55, 170),
    Voice("eric", "en+m1", 40, 140),
    Voice("fred", "en-gb-x-rp+m5", 25, 160),
    Voice("gina", "en+f4", 80, 135),
]
MEASURED_DIALOGUES = [
    (
        ["dora", "eric"],
        [
            "Good evening and welcome to the late news from the harbour.",
            "Thank you, the storm has closed the northern road since noon.",
            "Are the ferries still running to the islands tonight?",
            "Only the large one, and it leaves an hour later than usual.",
            "What do the fishermen say about the weather tomorrow?",
            "They expect the wind to drop after sunrise, so boats may go out.",
            "That is good news for the market on Saturday.",
            "Indeed, the prices of fresh fish have doubled this week.",
        ],
    ),
    (
        ["fred", "gina", "eric"],
        [
            "Our guest today restored the old cinema on the corner of Mill Street.",
            "It took four years, and most of the seats came from a theatre in Leeds.",
            "Were the projectors still working when you found them?",
            "One of them was, after we cleaned the lenses and replaced a motor.",
            "The first film you showed was a silent comedy, I believe.",
            "Yes, with a pianist playing live, exactly as audiences heard it then.",
            "How many people came to that opening night?",
            "Almost three hundred, and many of them had never seen a film on a real screen.",
            "Will you show more silent films next season?",
        ],
    ),
    (
        ["gina", "dora"],
        [
            "The museum received a collection of photographs from a family in Ghent.",
            "How old are the oldest prints in the boxes?",
            "Some were taken before the first war, on glass plates.",
            "Glass plates must be stored very carefully, I imagine.",
            "They are kept flat, in cool rooms, away from daylight.",
            "And who will catalogue them all?",
            "Two volunteers and a student from the university, over the summer.",
        ],
    ),
]


def tuning_set() -> list[tuple[str, list[tuple[Voice, str]], int]]:
    """Two dialogues over the tuning voices and sentences."""
    first = [(TUNING_VOICES[i % 2], line) for i, line in enumerate(TUNING_LINES)]
    second = [(TUNING_VOICES[[0, 1, 2, 1, 0][i % 5]], line) for i, line in enumerate(TUNING_LINES[::-1])]
    return [("tuning-1 (2 voices)", first, 11), ("tuning-2 (3 voices)", second, 12)]


def measured_set() -> list[tuple[str, list[tuple[Voice, str]], int]]:
    voices = {v.name: v for v in MEASURED_VOICES}
    sets = []
    for n, (names, lines) in enumerate(MEASURED_DIALOGUES, start=1):
        spoken = [(voices[names[i % len(names)]], line) for i, line in enumerate(lines)]
        sets.append((f"measured-{n} ({len(names)} voices)", spoken, 100 + n))
    return sets


def der(
    truth: list[Turn], hypothesis: list[tuple[str, float, float]], *, collar_s: float = 0.25
) -> dict[str, float]:
    """NIST DER and its parts, as shares of the reference speech, on STEP_S frames."""
    end = max([t.end_s for t in truth] + [h[2] for h in hypothesis]) + 1
    frames = int(end / STEP_S) + 1
    refs = sorted({t.speaker for t in truth})
    hyps = sorted({h[0] for h in hypothesis})
    ref = np.zeros((len(refs), frames), bool)
    hyp = np.zeros((max(1, len(hyps)), frames), bool)
    scored = np.ones(frames, bool)
    for t in truth:
        ref[refs.index(t.speaker), int(t.start_s / STEP_S) : int(t.end_s / STEP_S)] = True
        for edge in (t.start_s, t.end_s):
            scored[max(0, int((edge - collar_s) / STEP_S)) : int((edge + collar_s) / STEP_S)] = False
    for name, start, stop in hypothesis:
        hyp[hyps.index(name), int(start / STEP_S) : int(stop / STEP_S)] = True
    ref, hyp = ref[:, scored], hyp[:, scored]
    overlap = ref.astype(np.int64) @ hyp.T.astype(np.int64)  # frames both speak, per pair
    rows, cols = linear_sum_assignment(-overlap)
    correct = overlap[rows, cols].sum()
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    total = n_ref.sum()
    missed = np.maximum(n_ref - n_hyp, 0).sum()
    false_alarm = np.maximum(n_hyp - n_ref, 0).sum()
    confusion = np.minimum(n_ref, n_hyp).sum() - correct
    return {
        "der": float((missed + false_alarm + confusion) / total),
        "missed": float(missed / total),
        "false_alarm": float(false_alarm / total),
        "confusion": float(confusion / total),
        "speakers": float(len(hyps)),
    }


def _speakers_by_truth(
    asset: str, found: Diarization, truth: list[Turn]
) -> list[tuple[str, str, list[float]]]:
    """Each found speaker of an asset with the true voice it overlaps most."""
    out = []
    for speaker, centroid in found.centroids.items():
        spans = [(s, e) for n, s, e in found.turns if n == speaker]
        overlap: dict[str, float] = {}
        for t in truth:
            for s, e in spans:
                overlap[t.speaker] = overlap.get(t.speaker, 0.0) + max(
                    0.0, min(e, t.end_s) - max(s, t.start_s)
                )
        out.append((f"{asset}/{speaker}", max(overlap, key=lambda v: overlap[v]), centroid.tolist()))
    return out


def _voice_pairs(speakers: list[tuple[str, str, list[float]]]) -> tuple[float, float, int]:
    """Pairwise precision and recall of catalog.voices' grouping of these speakers, against the
    true voice of each, and how many voices it found."""
    rows = [{"asset_id": key, "speaker": "S", "embedding": vector} for key, _, vector in speakers]
    assigned = {r["asset_id"]: r["voice_id"] for r in assign_voices(rows, [])}
    same_true = same_found = both = 0
    for i, (a, true_a, _) in enumerate(speakers):
        for b, true_b, _ in speakers[i + 1 :]:
            found_same = assigned[a] == assigned[b]
            same_true += true_a == true_b
            same_found += found_same
            both += found_same and true_a == true_b
    return both / max(same_found, 1), both / max(same_true, 1), len(set(assigned.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("tuning", "measured", "both"), default="both")
    parser.add_argument(
        "--param", action="append", default=[], help="a diarize parameter to override, NAME=VALUE (tuning)"
    )
    args = parser.parse_args()
    if not have_espeak():
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng): it speaks the dialogue")
    chosen = {"tuning": tuning_set(), "measured": measured_set(), "both": tuning_set() + measured_set()}
    params = DiarizeParams(**dict(p.split("=", 1) for p in args.param))
    transcriber = Transcriber(cpu_threads=2)
    diarizer = Diarizer(params)
    print(f"diarize: {diarizer.model_name}, threshold {params.threshold}, hop {params.hop_s} s")
    print(
        f"{'dialogue':<24} {'audio s':>7} {'truth':>5} {'found':>5} {'DER .25':>8} {'DER 0':>7} "
        f"{'miss':>6} {'fa':>6} {'conf':>6} {'diar s':>7}"
    )
    totals: dict[str, list[float]] = {}
    heard: dict[str, list[tuple[str, str, list[float]]]] = {}  # per set: (asset, true voice, embedding)
    with tempfile.TemporaryDirectory() as tmp:
        for name, lines, seed in chosen[args.set]:
            audio, truth = dialogue(lines, seed=seed)
            path = write_wav(Path(tmp) / f"{seed}.wav", audio)
            segments = transcriber.transcribe(name, str(path))
            started = time.perf_counter()
            found = diarizer.diarize(audio_windows(str(path)), segments)
            seconds = time.perf_counter() - started
            scored, raw = der(truth, found.turns), der(truth, found.turns, collar_s=0.0)
            speech = sum(t.end_s - t.start_s for t in truth)
            group = name.split("-")[0]
            heard.setdefault(group, []).extend(_speakers_by_truth(name, found, truth))
            totals.setdefault(group, []).extend([scored["der"] * speech, raw["der"] * speech, speech])
            print(
                f"{name:<24} {len(audio) / 16000:7.1f} {len({t.speaker for t in truth}):5d} "
                f"{int(scored['speakers']):5d} {scored['der']:8.1%} {raw['der']:7.1%} "
                f"{scored['missed']:6.1%} {scored['false_alarm']:6.1%} {scored['confusion']:6.1%} "
                f"{seconds:7.2f}"
            )
    for group, values in totals.items():
        weighted = np.asarray(values).reshape(-1, 3).sum(axis=0)
        print(
            f"{group}: DER {weighted[0] / weighted[2]:.1%} (0.25 s collar), {weighted[1] / weighted[2]:.1%} "
            f"(no collar), over {weighted[2]:.0f} s of reference speech"
        )
    for group, speakers in heard.items():
        precision, recall, voices = _voice_pairs(speakers)
        print(
            f"{group}: voices across its dialogues: {len(speakers)} speakers into {voices} voices "
            f"({len({v for _, v, _ in speakers})} true), pairwise precision {precision:.2f}, "
            f"recall {recall:.2f}"
        )


if __name__ == "__main__":
    main()
