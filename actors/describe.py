"""Captions composed from what the other stages saw, and the description text that is embedded.

No captioning model can be had offline (see docs/models.md), so a shot's caption is
written from its columns: the ImageNet tags, the COCO objects and their
counts, text read on screen, a face count, technical traits and a snippet of
what is said. The wording is fixed and deterministic, so the same columns
always give the same caption, and the row records ``composed/v1`` as its
method: when the rules change, the version changes, and a VLM's captions are
told apart by its name.

Confidence shows in the wording rather than being hidden: a tag the network
gives 0.7 is stated ("a tabby cat"), 0.3 is hedged ("probably a tabby cat"),
0.1 is offered with its runner-up ("perhaps a mountain bike or a unicycle").

Faces are counted, never described: the perceived age and gender columns are
for aggregate audits only and are not read here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from actors.models import ModelLoadError

CAPTION_METHOD = "composed/v1"

STATE_THRESHOLD = 0.5  # a tag at least this probable is stated
LIKELY_THRESHOLD = 0.2  # ... at least this probable is "probably"
MENTION_THRESHOLD = 0.08  # ... at least this is "perhaps"; below, not mentioned
RUNNER_UP_THRESHOLD = 0.05  # a weak top tag is offered with its runner-up above this
DESCRIPTION_TAG_THRESHOLD = 0.05  # tags listed in the embedded description
OBJECT_MIN_SCORE = 0.4
TEXT_MIN_SCORE = 0.5
MAX_OBJECT_KINDS = 4
MAX_TEXT_CHARS = 60
MAX_SPEECH_WORDS = 12

INPUT_COLUMNS = ("tag_labels", "tag_scores", "objects", "texts", "faces", "technical", "is_blank",
                 "is_monochrome", "transcript")
"""The shot columns a caption and description are made from; any may be absent."""

TRAIT_WORDS = {"monochrome": "black-and-white", "grainy": "grainy", "blurry": "blurry",
               "underexposed": "dark", "overexposed": "overexposed", "low contrast": "low-contrast"}
"""``actors.technical`` labels worth a word in a caption; its other labels (colour, sharp,
clean, resolution) describe the ordinary case, and a label not listed here is not guessed at."""

_NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_IRREGULAR_PLURALS = {"person": "people", "mouse": "mice", "knife": "knives", "sheep": "sheep",
                      "skis": "skis", "scissors": "scissors", "glasses": "glasses", "fish": "fish"}
_SAY_A = ("uni", "use", "usu", "eu", "one", "once", "ewe")  # vowel letters, consonant sounds
_SAY_AN = ("hour", "honest", "honour", "heir")


def compose_caption(shot: Mapping[str, Any]) -> str | None:
    """One sentence about the shot from its columns; None when no stage saw anything at all."""
    speech = _speech_snippet(shot.get("transcript"))
    text = _onscreen_text(shot.get("texts"))
    if shot.get("is_blank") or any(d and d.get("label") == "blank" for d in shot.get("technical") or []):
        return _sentence("A blank shot", text, speech)
    objects = _object_counts(shot.get("objects"))
    faces = len(shot.get("faces") or [])
    if faces and "person" not in objects:
        objects["face"] = faces
    tag = _tag_phrase(shot.get("tag_labels"), shot.get("tag_scores"))
    if not (objects or tag or text or speech):
        return None
    traits = _traits(shot)
    opening = _indefinite(", ".join(traits) + " shot" if traits else "shot").capitalize()
    if objects:
        opening += " of " + _join(_counted(label, n) for label, n in _by_count(objects)[:MAX_OBJECT_KINDS])
        if tag:
            opening += ", the main subject " + tag["with_objects"]
    elif tag:
        opening += " of " + tag["alone"]
    return _sentence(opening, text, speech)


def describe(shot: Mapping[str, Any], caption: str | None = None) -> str | None:
    """The text embedded for text search: caption, then the raw tags, objects, text and speech.

    The caption alone hedges and truncates; search should still match the
    runner-up tag, every word read on screen and all that is said in the
    shot. ``caption`` is passed when it came from elsewhere (a VLM).
    """
    caption = caption if caption is not None else compose_caption(shot)
    parts = [caption] if caption else []
    labels, scores = shot.get("tag_labels") or [], shot.get("tag_scores") or []
    tags = [label for label, score in zip(labels, scores, strict=False) if score >= DESCRIPTION_TAG_THRESHOLD]
    if tags:
        parts.append("Tags: " + ", ".join(tags) + ".")
    objects = _object_counts(shot.get("objects"))
    if objects:
        parts.append("Objects: " + ", ".join(_counted(label, n) for label, n in _by_count(objects)) + ".")
    words = " ".join(_read_order(shot.get("texts")))
    if words:
        parts.append(f"Text on screen: {words}.")
    speech = " ".join((shot.get("transcript") or "").split())
    if speech:
        parts.append(f"Speech: {speech}")
    return " ".join(parts) or None


class Captioner:
    """Where captions come from: composed by the rules above, or by a VLM given by name or path.

    No VLM can be loaded offline and none is wired in yet, so any ``model``
    other than None or ``composed/v1`` raises ModelLoadError at construction
    instead of quietly composing captions under a VLM's name. A VLM backend
    goes in ``_load_vlm`` and ``caption`` (which would then read the row's
    ``keyframe_jpeg``, so ``INPUT_COLUMNS`` gains it); its name becomes ``method``.
    """

    def __init__(self, model: str | None = None) -> None:
        self.method = CAPTION_METHOD
        if model not in (None, CAPTION_METHOD):
            self._load_vlm(model)

    def caption(self, shot: Mapping[str, Any]) -> str | None:
        return compose_caption(shot)

    def _load_vlm(self, model: str) -> None:
        raise ModelLoadError(
            model,
            model,
            reason="no VLM captioner is available in this build",
            hint=f"leave the captioner model unset to compose captions ({CAPTION_METHOD}) "
            "from the tags, objects, on-screen text and transcript",
        )


def _tag_phrase(labels: Sequence[str] | None, scores: Sequence[float] | None) -> dict[str, str] | None:
    """The top ImageNet tag worded for its confidence, alone and after a list of objects."""
    if not labels or not scores or scores[0] < MENTION_THRESHOLD:
        return None
    top = _indefinite(labels[0])
    if scores[0] >= STATE_THRESHOLD:
        return {"alone": top, "with_objects": top}
    if scores[0] >= LIKELY_THRESHOLD:
        return {"alone": f"what is probably {top}", "with_objects": f"probably {top}"}
    if len(labels) > 1 and scores[1] >= RUNNER_UP_THRESHOLD:
        top = f"{top} or {_indefinite(labels[1])}"
    return {"alone": f"what may be {top}", "with_objects": f"perhaps {top}"}


def _traits(shot: Mapping[str, Any]) -> list[str]:
    """The notable technical traits as adjectives; the ordinary ones (colour, sharp, clean) go unsaid."""
    labels = [d["label"] for d in shot.get("technical") or [] if d and d.get("label")]
    if shot.get("is_monochrome"):
        labels.append("monochrome")
    return list(dict.fromkeys(TRAIT_WORDS[label] for label in labels if label in TRAIT_WORDS))


def _object_counts(detections: Sequence[Mapping[str, Any]] | None) -> Counter[str]:
    found = [d for d in detections or [] if d and d.get("label")]
    return Counter(d["label"] for d in found if (d.get("score") or 0) >= OBJECT_MIN_SCORE)


def _by_count(counts: Counter[str]) -> list[tuple[str, int]]:
    """Most numerous first, ties alphabetical: the caption must not depend on detection order."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _read_order(detections: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """Text read on screen, top to bottom then left to right, as a viewer reads it."""
    found = [d for d in detections or [] if d and (d.get("label") or "").strip()]
    found = [d for d in found if (d.get("score") or 0) >= TEXT_MIN_SCORE]
    found.sort(key=lambda d: (round((d.get("box") or [0, 0])[1] / 20), (d.get("box") or [0])[0]))
    return [" ".join(d["label"].split()) for d in found]


def _onscreen_text(detections: Sequence[Mapping[str, Any]] | None) -> str | None:
    words = " ".join(_read_order(detections))
    return f'with the text "{_truncate(words, MAX_TEXT_CHARS)}" on screen' if words else None


def _speech_snippet(transcript: str | None) -> str | None:
    words = (transcript or "").split()
    if not words:
        return None
    snippet = " ".join(words[:MAX_SPEECH_WORDS])
    snippet = snippet.rstrip(".,;:!?") + ("…" if len(words) > MAX_SPEECH_WORDS else "")
    return f'while someone says "{snippet}"'


def _sentence(opening: str, *clauses: str | None) -> str:
    return ", ".join([opening, *(c for c in clauses if c)]) + "."


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut + "…"


def _counted(label: str, count: int) -> str:
    if count == 1:
        return _indefinite(label)
    number = _NUMBER_WORDS[count] if count < len(_NUMBER_WORDS) else str(count)
    return f"{number} {_plural(label)}"


def _plural(label: str) -> str:
    head, _, last = label.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        plural = _IRREGULAR_PLURALS[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        plural = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def _indefinite(phrase: str) -> str:
    """The phrase with 'a' or 'an', unless it already has an article."""
    lower = phrase.lower()
    if lower.startswith(("a ", "an ", "the ")):
        return phrase
    vowel_sound = (lower[:1] in "aeiou" and not lower.startswith(_SAY_A)) or lower.startswith(_SAY_AN)
    return ("an " if vowel_sound else "a ") + phrase


def _join(items: Sequence[str] | Any) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
