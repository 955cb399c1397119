"""Voices across the archive: each asset's speakers grouped into voices whose ids never change.

The diarize stage writes `speakers`: per asset, its speakers (`S1`, `S2`, …), their turns and the
unit-mean GE2E embedding of their speech. After each run's commit, `refresh_voices` groups every
speaker of the catalog into voices (`voices`: asset, speaker, voice id), incrementally:

- a speaker that already belonged to a voice stays in it while its embedding is still within
  `VOICE_DISTANCE` of that voice's centroid (a re-run that changes nothing moves nothing);
- a new (or re-diarized) speaker joins the nearest voice within `VOICE_DISTANCE`, in the order
  (asset, speaker), each joining moving its voice's centroid;
- otherwise it founds a new voice, numbered after every voice id ever given or named by a
  curator (`V000001`, …): ids are never renumbered and never reused.

Curators name, merge and opt out voices with the people's correction rows (`people_corrections`,
kind `voice`), folded by `catalog.people.fold_corrections`, as for faces. A segment of a transcript
is said by the speaker whose turns cover most of it (`label_segments`), and is labelled, for
readers and exports, with its voice's curator-given name where there is one, else its voice id
(else, before the voices step has run, the asset's speaker label); an opted-out voice's segments
carry no label.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from catalog.iceberg import append, read, replace_all
from catalog.people import (
    EXCLUDE,
    INCLUDE,
    MAX_CURATOR_CHARS,
    MAX_NAME_CHARS,
    NAME,
    VOICE,
    ClusterCorrections,
    fold_corrections,
    read_people_corrections,
)
from catalog.schema import PEOPLE_CORRECTIONS, VOICES

VOICE_DISTANCE = 0.1
"""Cosine distance between a speaker's embedding and a voice's centroid within which it is that
voice. A speaker's embedding is the mean of all its speech, so it varies far less than the 1.6 s
windows the diarize stage clusters (at 0.28): on generated dialogue one espeak-ng voice in two
assets is 0.02-0.03 apart, two male variants 0.14-0.25 (two female variants only 0.05: those
this cannot tell apart)."""
VOICE_ID_PREFIX = "V"
VOICE_ID_DIGITS = 6


class VoicesError(ValueError):
    """A voice correction that cannot be kept as asked: the message says what to change."""


class UnknownVoiceError(LookupError):
    """A voice id the catalog does not hold."""


def voice_id(number: int) -> str:
    return f"{VOICE_ID_PREFIX}{number:0{VOICE_ID_DIGITS}d}"


def _number(voice: str) -> int:
    found = re.fullmatch(rf"{VOICE_ID_PREFIX}(\d+)", voice)
    return int(found.group(1)) if found else 0


def assign_voices(
    speakers: Sequence[Mapping[str, Any]],
    previous: Sequence[Mapping[str, Any]],
    *,
    distance: float = VOICE_DISTANCE,
    known_ids: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """`voices` rows (asset_id, speaker, voice_id, distance) for these speaker rows (asset_id,
    speaker, embedding), keeping `previous` assignments that still hold; see the module's rules."""
    vectors = {
        (s["asset_id"], s["speaker"]): _unit(np.asarray(s["embedding"], np.float32))
        for s in speakers
        if s.get("speaker") and s.get("embedding") is not None
    }
    before = {(p["asset_id"], p["speaker"]): p for p in previous}
    sums: dict[str, np.ndarray] = {}
    for key, row in before.items():
        if key in vectors:
            sums[row["voice_id"]] = sums.get(row["voice_id"], 0) + vectors[key]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for key in sorted(vectors):
        old = before.get(key)
        if old is not None and old["voice_id"] in sums:
            gap = 1 - float(vectors[key] @ _unit(sums[old["voice_id"]]))
            if gap <= distance:
                rows[key] = {"voice_id": old["voice_id"], "distance": old.get("distance", gap)}
                continue
            sums[old["voice_id"]] = sums[old["voice_id"]] - vectors[key]  # it leaves that voice
    last = max([_number(v) for v in [*known_ids, *(p["voice_id"] for p in previous)]], default=0)
    for key in sorted(vectors):
        if key in rows:
            continue
        live = [v for v, total in sums.items() if float(np.linalg.norm(total)) > 1e-6]
        gaps = {v: 1 - float(vectors[key] @ _unit(sums[v])) for v in live}
        nearest = min(gaps, key=lambda v: (gaps[v], v)) if gaps else None
        if nearest is not None and gaps[nearest] <= distance:
            chosen, gap = nearest, gaps[nearest]
        else:
            last += 1
            chosen, gap = voice_id(last), 0.0
        sums[chosen] = sums.get(chosen, 0) + vectors[key]
        rows[key] = {"voice_id": chosen, "distance": gap}
    return [
        {"asset_id": a, "speaker": s, "voice_id": r["voice_id"], "distance": round(float(r["distance"]), 4)}
        for (a, s), r in sorted(rows.items())
    ]


def refresh_voices(catalog: SqlCatalog, *, run_id: str) -> int:
    """Regroup every speaker of the catalog into voices (one commit of `voices`); returns how
    many voices there are."""
    speakers = read(catalog, "speakers", columns=("asset_id", "speaker", "embedding")).to_pylist()
    previous = read(catalog, "voices", columns=("asset_id", "speaker", "voice_id", "distance")).to_pylist()
    named = read_people_corrections(catalog).to_pylist()
    known = [str(r["cluster_id"]) for r in named if r["kind"] == VOICE]
    known += [str(r["value"]) for r in named if r["kind"] == VOICE and r["action"] == "merge"]
    rows = assign_voices(speakers, previous, known_ids=known)
    table = pa.Table.from_pylist([{**r, "run_id": run_id} for r in rows], schema=VOICES)
    if rows or previous:
        replace_all(catalog, "voices", table, run_id=run_id)
    return len({r["voice_id"] for r in rows})


def voice_corrections(catalog: SqlCatalog) -> ClusterCorrections:
    return fold_corrections(read_people_corrections(catalog), VOICE)


def voice_label(voice: str | None, speaker: str | None, fixes: ClusterCorrections) -> str | None:
    """What a segment is said to be spoken by: the curator's name of its voice, else the voice id
    (after merges, the voice it joined), else the asset's speaker label; None for a voice opted out."""
    if voice is None:
        return speaker
    root = fixes.root(voice)
    if fixes.excluded.get(root) or fixes.excluded.get(voice):
        return None
    named = fixes.names.get(root)
    return str(named["value"]) if named else root


def label_segments(
    segments: Sequence[Mapping[str, Any]],
    speakers: Sequence[Mapping[str, Any]],
    voices: Sequence[Mapping[str, Any]],
    fixes: ClusterCorrections | None = None,
) -> list[dict[str, Any]]:
    """The transcript segments with `speaker` (see `voice_label`) and `voice_id`, each said by
    the asset's speaker whose turns overlap it most; segments no turn overlaps get neither."""
    fixes = fixes or ClusterCorrections()
    turns: dict[str, list[tuple[float, float, str]]] = {}
    for row in speakers:
        if row.get("speaker"):
            for turn in row.get("turns") or []:
                turns.setdefault(row["asset_id"], []).append((turn["start_s"], turn["end_s"], row["speaker"]))
    voice_of = {(v["asset_id"], v["speaker"]): v["voice_id"] for v in voices}
    labelled = []
    for segment in segments:
        said: dict[str, float] = {}
        start, end = float(segment["start_s"] or 0), float(segment["end_s"] or 0)
        for turn_start, turn_end, name in turns.get(segment["asset_id"], []):
            overlap = min(end, turn_end) - max(start, turn_start)
            if overlap > 0:
                said[name] = said.get(name, 0.0) + overlap
        speaker = max(said, key=lambda n: (said[n], n)) if said else None
        voice = voice_of.get((segment["asset_id"], speaker)) if speaker else None
        label = voice_label(voice, speaker, fixes) if speaker else None
        labelled.append({**segment, "speaker": label, "voice_id": voice})
    return labelled


def list_voices(catalog: SqlCatalog) -> list[dict[str, Any]]:
    """Every voice as a curator sees it (merged-away ids folded into the voice they joined): its
    id, name (None unless a curator gave one), whether it is opted out, its speakers, assets and
    seconds of speech, most heard first."""
    fixes = voice_corrections(catalog)
    seconds = {
        (r["asset_id"], r["speaker"]): r["seconds"] or 0.0
        for r in read(catalog, "speakers", columns=("asset_id", "speaker", "seconds")).to_pylist()
    }
    found: dict[str, dict[str, Any]] = {}
    for row in read(catalog, "voices", columns=("asset_id", "speaker", "voice_id")).to_pylist():
        root = fixes.root(row["voice_id"])
        named = fixes.names.get(root)
        voice = found.setdefault(
            root,
            {
                "voice_id": root,
                "name": str(named["value"]) if named else None,
                "excluded": bool(fixes.excluded.get(root)),
                "speakers": 0,
                "assets": set(),
                "seconds": 0.0,
            },
        )
        voice["speakers"] += 1
        voice["assets"].add(row["asset_id"])
        voice["seconds"] += seconds.get((row["asset_id"], row["speaker"]), 0.0)
    listed = [{**v, "assets": len(v["assets"]), "seconds": round(v["seconds"], 1)} for v in found.values()]
    return sorted(listed, key=lambda v: (-v["seconds"], v["voice_id"]))


def name_voice(
    catalog: SqlCatalog, voice: str, name: str, *, curator: str, note: str | None = None
) -> dict[str, Any]:
    """Name a voice (a `people_corrections` row of kind `voice`, with the name before it);
    VoicesError for an empty or over-long name or curator, UnknownVoiceError for an unknown id."""
    tidy = " ".join(name.split())
    if not tidy or len(tidy) > MAX_NAME_CHARS:
        raise VoicesError(f"a voice's name is 1 to {MAX_NAME_CHARS} characters, not {len(tidy)}")
    return _keep(catalog, voice, NAME, tidy, curator, note)


def exclude_voice(
    catalog: SqlCatalog, voice: str, *, curator: str, excluded: bool = True, note: str | None = None
) -> dict[str, Any]:
    """Opt a voice out (or, `excluded=False`, back in): its lines carry no name or id in any
    transcript or export from then on. Errors as `name_voice`'s."""
    return _keep(catalog, voice, EXCLUDE if excluded else INCLUDE, None, curator, note)


def _keep(
    catalog: SqlCatalog, voice: str, action: str, value: str | None, curator: str, note: str | None
) -> dict[str, Any]:
    """Append one curator's row about a known voice (its root, after merges), with the value before."""
    who = " ".join(curator.split())
    if not who or len(who) > MAX_CURATOR_CHARS:
        raise VoicesError(f"say who is acting: the curator's name is 1 to {MAX_CURATOR_CHARS} characters")
    known = set(read(catalog, "voices", columns=("voice_id",)).column("voice_id").to_pylist())
    fixes = voice_corrections(catalog)
    if voice not in known and voice not in fixes.merged_into:
        raise UnknownVoiceError(f"no voice {voice[:40]!r} in the catalog")
    root = fixes.root(voice)
    named = fixes.names.get(root)
    before = ("excluded" if fixes.excluded.get(root) else "included") if action != NAME else None
    row = {
        "correction_id": uuid.uuid4().hex,
        "kind": VOICE,
        "cluster_id": root,
        "action": action,
        "value": value,
        "before": before if action != NAME else (str(named["value"]) if named else None),
        "curator": who,
        "at": dt.datetime.now(dt.UTC),
        "note": note,
    }
    append(catalog, "people_corrections", pa.Table.from_pylist([row], schema=PEOPLE_CORRECTIONS))
    return row


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-9)
