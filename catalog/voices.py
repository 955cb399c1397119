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
kind `voice`), folded by `catalog.people.fold_corrections`, with the people's rules: a merged-away
id leads to the voice it joined, the kept voice's name wins (else the merged one's), an opt-out of
any part opts the whole voice out, and bad input raises the people's errors (`PeopleError`, its
`PeopleConflict`, and `UnknownVoiceError`, an `UnknownPersonError`) with nothing written, so the
people's CLI, API and page handlers serve voices unchanged. `VoiceRoster` is what readers see.
Voices are not split: a speaker is known only by its label within its asset (`S1`, …), which a
re-diarization gives anew, so a split kept by label would move whichever speaker holds the label
next time.

A segment of a transcript is said by the speaker whose turns cover most of it (`label_segments`),
and is labelled, for readers and exports, with its voice's curator-given name where there is one,
else its voice id (else, before the voices step has run, the asset's speaker label); an opted-out
voice's segments carry no label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from catalog.iceberg import read, replace_all
from catalog.people import (
    EXCLUDE,
    INCLUDE,
    MERGE,
    NAME,
    VOICE,
    ClusterCorrections,
    PeopleConflict,
    UnknownPersonError,
    checked_curator,
    checked_name,
    checked_note,
    fold_corrections,
    keep_correction,
    normal_name,
    read_people_corrections,
    refuse_self_merge,
)
from catalog.schema import VOICES

VOICE_DISTANCE = 0.1
"""Cosine distance between a speaker's embedding and a voice's centroid within which it is that
voice. A speaker's embedding is the mean of all its speech, so it varies far less than the 1.6 s
windows the diarize stage clusters (at 0.28): on generated dialogue one espeak-ng voice in two
assets is 0.02-0.03 apart, two male variants 0.14-0.25 (two female variants only 0.05: those
this cannot tell apart)."""
VOICE_ID_PREFIX = "V"
VOICE_ID_DIGITS = 6


VOICE_TABLES = ("speakers", "voices", "people_corrections")
"""What `VoiceRoster` is read from: a reader that keeps one need read it again only when these move."""


class UnknownVoiceError(UnknownPersonError):
    """A voice id the catalog does not hold (the API answers 404, the CLI says it and exits 2)."""


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
    if fixes.is_excluded(root):
        return None
    named = fixes.name_row(root)
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


class VoiceRoster:
    """The voices as every reader sees them: the machine's assignments of speakers to voices with the
    curators' merges, names and opt-outs folded over them (what the CLI, the API, the People page and
    the search view consult; `voice_roster` reads one)."""

    def __init__(
        self,
        voices: Iterable[Mapping[str, Any]],
        speakers: Iterable[Mapping[str, Any]],
        corrections: Iterable[Mapping[str, Any]] | pa.Table,
    ) -> None:
        self.corrections = fold_corrections(corrections, VOICE)
        self.speakers = {(r["asset_id"], r["speaker"]): r for r in speakers if r.get("speaker")}
        self.given: set[str] = set()
        """Every voice id the machine gave a speaker now (merged-away ones too)."""
        self.members: dict[str, list[tuple[str, str]]] = {}
        """Per voice (after merges), its speakers: (asset id, speaker label), in that order."""
        for row in voices:
            self.given.add(str(row["voice_id"]))
            root = self.corrections.root(str(row["voice_id"]))
            self.members.setdefault(root, []).append((row["asset_id"], row["speaker"]))
        for found in self.members.values():
            found.sort()

    def resolve(self, voice: str) -> str:
        """The voice an id stands for now (a merged-away id: the voice it joined); UnknownVoiceError
        for an id never given."""
        if voice not in self.given and voice not in self.corrections.merged_into:
            raise UnknownVoiceError(f"no voice {voice[:40]!r} in the catalog: see `archivist voices list`")
        return self.corrections.root(voice)

    def voices(self) -> list[str]:
        """Every voice that has speakers now, the most heard first."""
        return sorted(self.members, key=lambda v: (-self.seconds(v), v))

    def seconds(self, voice: str) -> float:
        return float(sum(self.speakers.get(k, {}).get("seconds") or 0.0 for k in self.members.get(voice, [])))

    def name(self, voice: str) -> str | None:
        named = self.corrections.name_row(voice)
        return str(named["value"]) if named is not None else None

    def visible(self, voice: str) -> bool:
        """Whether search may find this voice: it has speakers and is not opted out."""
        return voice in self.members and not self.corrections.is_excluded(voice)

    def summary(self, voice: str) -> dict[str, Any]:
        """A voice (already resolved) as a curator sees it: id, name (None unless a curator gave
        one), whether it is opted out, the ids merged into it, its speakers, assets and seconds."""
        members = self.members.get(voice, [])
        return {
            "voice_id": voice,
            "name": self.name(voice),
            "excluded": self.corrections.is_excluded(voice),
            "merged": self.corrections.parts(voice)[1:],
            "speakers": len(members),
            "assets": len({asset for asset, _ in members}),
            "seconds": round(self.seconds(voice), 1),
        }

    def speaker_list(self, voice: str) -> list[dict[str, Any]]:
        """The voice's speakers, asset by asset: label, seconds of speech and turns."""
        listed = []
        for asset, speaker in self.members.get(voice, []):
            row = self.speakers.get((asset, speaker), {})
            turns = [{"start_s": t["start_s"], "end_s": t["end_s"]} for t in row.get("turns") or []]
            listed.append(
                {"asset_id": asset, "speaker": speaker, "seconds": row.get("seconds"), "turns": turns}
            )
        return listed

    def turns_by_name(self) -> dict[str, dict[str, list[tuple[float, float]]]]:
        """Per name a curator gave a visible voice (`normal_name`), the turns it speaks, by asset."""
        found: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for voice in self.members:
            name = self.name(voice)
            if name is None or not self.visible(voice):
                continue
            by_asset = found.setdefault(normal_name(name), {})
            for speaker in self.speaker_list(voice):
                by_asset.setdefault(speaker["asset_id"], []).extend(
                    (float(t["start_s"]), float(t["end_s"])) for t in speaker["turns"]
                )
        return found


def voice_roster(catalog: SqlCatalog) -> VoiceRoster:
    """The voices of the catalog as readers see them, read now."""
    return VoiceRoster(
        read(catalog, "voices", columns=("asset_id", "speaker", "voice_id")).to_pylist(),
        read(catalog, "speakers", columns=("asset_id", "speaker", "seconds", "turns")).to_pylist(),
        read_people_corrections(catalog),
    )


def list_voices(catalog: SqlCatalog) -> list[dict[str, Any]]:
    """Every voice with speakers as a curator sees it (`VoiceRoster.summary`; merged-away ids
    folded into the voice they joined; opted-out ones marked), most heard first."""
    found = voice_roster(catalog)
    return [found.summary(v) for v in found.voices()]


def voice_detail(catalog: SqlCatalog, voice: str) -> dict[str, Any]:
    """One voice (a merged-away id answers with the voice it joined): its summary, every speaker
    with its turns, and the curators' history, oldest first. UnknownVoiceError for an unknown id."""
    found = voice_roster(catalog)
    root = found.resolve(voice)
    history = [dict(r) for r in found.corrections.history_of(root)]
    return {**found.summary(root), "speaker_list": found.speaker_list(root), "history": history}


def name_voice(
    catalog: SqlCatalog, voice: str, name: str, *, curator: str, note: str | None = None
) -> dict[str, Any]:
    """Name a voice (a merged-away id names the voice it joined); the row kept, with the name
    before. PeopleError for an empty or over-long name or curator, UnknownVoiceError for an
    unknown id."""
    tidy, who, why = checked_name(name), checked_curator(curator), checked_note(note)
    found = voice_roster(catalog)
    root = found.resolve(voice)
    return keep_correction(catalog, root, NAME, tidy, found.name(root), who, why, kind=VOICE)


def merge_voices(
    catalog: SqlCatalog, keep: str, other: str, *, curator: str, note: str | None = None
) -> dict[str, Any]:
    """Make `other` part of `keep`: its speakers are `keep`'s from then on (in every transcript,
    export and search), `keep`'s name wins (else `other`'s), and `other`'s id leads to `keep` and
    is never given again. PeopleConflict for a voice merged with itself (or a voice with no
    speakers left), UnknownVoiceError for an unknown id; the row kept, with both voices' sizes."""
    who, why = checked_curator(curator), checked_note(note)
    found = voice_roster(catalog)
    kept, merged = found.resolve(keep), found.resolve(other)
    refuse_self_merge(keep, other, kept, merged, "voice")
    for voice in (kept, merged):
        if voice not in found.members:
            raise PeopleConflict(f"voice {voice} has no speakers left in the catalog")
    before = f"{kept}: {len(found.members[kept])} speakers; {merged}: {len(found.members[merged])} speakers"
    return keep_correction(catalog, merged, MERGE, kept, before, who, why, kind=VOICE)


def exclude_voice(
    catalog: SqlCatalog, voice: str, *, curator: str, excluded: bool = True, note: str | None = None
) -> dict[str, Any]:
    """Opt a voice out (or, `excluded=False`, back in): its lines carry no name or id in any
    transcript or export, and its name finds nothing in search, from then on. Errors as `name_voice`'s."""
    who, why = checked_curator(curator), checked_note(note)
    found = voice_roster(catalog)
    root = found.resolve(voice)
    before = "excluded" if found.corrections.is_excluded(root) else "included"
    return keep_correction(
        catalog, root, EXCLUDE if excluded else INCLUDE, None, before, who, why, kind=VOICE
    )


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-9)
