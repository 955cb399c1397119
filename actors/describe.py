"""Captions composed from what the other stages agree on, and the description text that is embedded.

No captioning model can be had offline (see docs/models.md), so a shot's caption is
written from its columns: the ImageNet tags, the COCO objects and their
counts, text read on screen, a face count, technical traits and a snippet of
what is said. The wording is fixed and deterministic, so the same columns
always give the same caption, and the row records its method (``composed/v2``
with the concept hierarchy and the models it read): when the rules change, the
version changes, and a VLM's captions are told apart by its name.

A wrong noun is worse than a vaguer true one, so a caption names only what is
held with calibrated confidence (``CONCEPT_MIN_SCORE``, ``OBJECT_MIN_SCORE``,
set on a labelled set by ``tests/benchmarks/bench_captions.py --calibrate``):

- ImageNet tags are not named one guess at a time: their scores are summed up
  the WordNet hierarchy (``actors.concepts``) and the caption names the most
  specific concept that holds enough of them ("a tabby cat" when the cat
  labels agree, "a fish" when tench, goldfish and puffer share the score).
- Objects and tags are reconciled: a tag that is a kind of a detected object
  names it more exactly ("a tabby cat" for a detected cat), one the objects
  already cover is dropped, and a person whose box overlaps a bicycle, a horse
  or a board is "a person on a bicycle"; objects are counted ("two people").
- When nothing agrees the caption is vague but true ("A black-and-white shot.").

``caption_confidence`` is the lowest confidence of the nouns a caption names
(a count is as sure as its least sure detection), None when it names none.

Faces are counted, never described: the perceived age and gender columns are
for aggregate audits only and are not read here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.concepts import ConceptHierarchy, load_hierarchy, with_article
from actors.models import ModelLoadError

CAPTION_METHOD = "composed/v2"
HIERARCHY_VERSION = "wordnet-3.0"

CONCEPT_MIN_SCORE = 0.8
"""Summed tag score at which a concept is named. Calibrated by ``bench_captions.py --calibrate`` on its
28 calibration pictures: with OBJECT_MIN_SCORE, the pair naming the most right nouns at a precision of
at least 0.9 (0.933 there, 14 of 15 nouns). Lower, single wrong guesses come in (0.45: 0.67); the
hierarchy is why so high a bar still names things: the score climbs to what the guesses share."""
OBJECT_MIN_SCORE = 0.75
"""Detector score at which an object is named and counted (calibrated with CONCEPT_MIN_SCORE)."""
DESCRIPTION_TAG_THRESHOLD = 0.05  # tags listed in the embedded description
DESCRIPTION_OBJECT_MIN_SCORE = 0.4  # objects listed in the embedded description
TEXT_MIN_SCORE = 0.5
TAG_TOP_K = 5  # tags whose scores are summed up the hierarchy
MAX_OBJECT_KINDS = 4
MAX_TEXT_CHARS = 60
MAX_SPEECH_WORDS = 12
RIDE_OVERLAP = 0.3  # share of the smaller box inside the other for a person to be on it

RIDDEN = ("bicycle", "motorcycle", "horse", "skateboard", "surfboard", "skis", "snowboard", "elephant")
"""COCO labels a person is "on" when their boxes overlap; a tag that is a kind of one counts too."""

INPUT_COLUMNS = ("tag_labels", "tag_scores", "objects", "texts", "faces", "technical", "is_blank",
                 "is_monochrome", "transcript", "visual_model", "objects_model")
"""The shot columns a caption and description are made from; any may be absent."""

TRAIT_WORDS = {"monochrome": "black-and-white", "grainy": "grainy", "blurry": "blurry",
               "underexposed": "dark", "overexposed": "overexposed", "low contrast": "low-contrast"}
"""``actors.technical`` labels worth a word in a caption; its other labels (colour, sharp,
clean, resolution) describe the ordinary case, and a label not listed here is not guessed at."""

_NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_IRREGULAR_PLURALS = {"person": "people", "mouse": "mice", "knife": "knives", "sheep": "sheep",
                      "skis": "skis", "scissors": "scissors", "glasses": "glasses", "fish": "fish"}


@dataclass(frozen=True)
class Noun:
    """A thing a caption names: the label or concept name, how many, and how sure the stages are."""

    name: str
    count: int
    confidence: float
    concept: str | None = None


@dataclass(frozen=True)
class Caption:
    text: str
    nouns: tuple[Noun, ...] = field(default=())

    @property
    def confidence(self) -> float | None:
        """The least sure noun's confidence; None for a caption that names nothing."""
        return round(min(n.confidence for n in self.nouns), 4) if self.nouns else None


def compose(
    shot: Mapping[str, Any],
    *,
    concept_min_score: float = CONCEPT_MIN_SCORE,
    object_min_score: float = OBJECT_MIN_SCORE,
    hierarchy: ConceptHierarchy | None = None,
) -> Caption | None:
    """The shot's caption and the nouns it names; None when no stage saw anything at all.

    The thresholds are parameters so that the calibration can sweep them; the pipeline uses the
    calibrated defaults."""
    speech = _speech_snippet(shot.get("transcript"))
    text = _onscreen_text(shot.get("texts"))
    if shot.get("is_blank") or any(d and d.get("label") == "blank" for d in shot.get("technical") or []):
        return Caption(_sentence("A blank shot", text, speech))
    seen = bool(shot.get("tag_labels") or shot.get("objects") or shot.get("faces"))
    if not (seen or text or speech):
        return None
    hierarchy = hierarchy or load_hierarchy()
    nouns = _nouns(shot, hierarchy, concept_min_score, object_min_score)
    traits = _traits(shot)
    opening = _indefinite(", ".join(traits) + " shot" if traits else "shot").capitalize()
    if nouns:
        opening += " of " + _join(phrase for phrase, _ in nouns[:MAX_OBJECT_KINDS])
    named = tuple(noun for _, group in nouns[:MAX_OBJECT_KINDS] for noun in group)
    return Caption(_sentence(opening, text, speech), named)


def compose_caption(shot: Mapping[str, Any]) -> str | None:
    """One sentence about the shot from its columns; None when no stage saw anything at all."""
    caption = compose(shot)
    return caption.text if caption else None


def caption_method(shot: Mapping[str, Any]) -> str:
    """The method with what it read: the rules' version, the hierarchy and the models' names."""
    models = [f"{kind} {shot[column]}" for kind, column in (("tags", "visual_model"),
              ("objects", "objects_model")) if shot.get(column)]
    return f"{CAPTION_METHOD} ({'; '.join([f'concepts {HIERARCHY_VERSION}', *models])})"


def describe(shot: Mapping[str, Any], caption: str | None = None) -> str | None:
    """The text embedded for text search: caption, then the raw tags, objects, text and speech.

    The caption alone names only what agrees; search should still match the
    runner-up tag, every word read on screen and all that is said in the
    shot. ``caption`` is passed when it came from elsewhere (a VLM).
    """
    caption = caption if caption is not None else compose_caption(shot)
    parts = [caption] if caption else []
    labels, scores = shot.get("tag_labels") or [], shot.get("tag_scores") or []
    tags = [label for label, score in zip(labels, scores, strict=False) if score >= DESCRIPTION_TAG_THRESHOLD]
    if tags:
        parts.append("Tags: " + ", ".join(tags) + ".")
    objects = _object_counts(shot.get("objects"), DESCRIPTION_OBJECT_MIN_SCORE)
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
    other than None or ``composed/v2`` raises ModelLoadError at construction
    instead of quietly composing captions under a VLM's name. A VLM backend
    goes in ``_load_vlm`` and ``caption`` (which would then read the row's
    ``keyframe_jpeg``, so ``INPUT_COLUMNS`` gains it); its name becomes ``method``.
    """

    def __init__(self, model: str | None = None) -> None:
        self.method = CAPTION_METHOD
        if model not in (None, CAPTION_METHOD):
            self._load_vlm(model)
        self.hierarchy = load_hierarchy()

    def caption(self, shot: Mapping[str, Any]) -> Caption | None:
        return compose(shot, hierarchy=self.hierarchy)

    def method_of(self, shot: Mapping[str, Any]) -> str:
        return caption_method(shot)

    def _load_vlm(self, model: str) -> None:
        raise ModelLoadError(
            model,
            model,
            reason="no VLM captioner is available in this build",
            hint=f"leave the captioner model unset to compose captions ({CAPTION_METHOD}) "
            "from the tags, objects, on-screen text and transcript",
        )


def _nouns(
    shot: Mapping[str, Any], hierarchy: ConceptHierarchy, concept_min_score: float, object_min_score: float
) -> list[tuple[str, list[Noun]]]:
    """What the caption names, each as its phrase and the nouns behind it, most numerous first."""
    found = [d for d in shot.get("objects") or [] if d and d.get("label")]
    found = [d for d in found if (d.get("score") or 0) >= object_min_score]
    faces = [f for f in shot.get("faces") or [] if f]
    if faces and not any(d["label"] == "person" for d in found):
        found += [{"label": "face", "score": f.get("score") or 1.0, "box": f.get("box")} for f in faces]
    labels = list(shot.get("tag_labels") or [])[:TAG_TOP_K]
    scores = list(shot.get("tag_scores") or [])[:TAG_TOP_K]
    tag = hierarchy.agreement(labels, scores, concept_min_score) if labels and scores else None
    kinds: dict[str, list[dict[str, Any]]] = {}
    for detection in found:
        kinds.setdefault(detection["label"], []).append(detection)
    renamed: dict[str, str] = {}
    if tag is not None:
        covered = [k for k in kinds if tag.concept in hierarchy.label_ancestors(k)]
        finer = [k for k in kinds if _concepts_of(hierarchy, k) & set(hierarchy.ancestors(tag.concept))]
        if covered:
            tag = None  # a detected object already says it as exactly (a cat, and "an animal")
        elif finer:
            kind = finer[0]
            if len(kinds[kind]) == 1:  # one cat, tagged a tabby cat: "a tabby cat"
                renamed[kind] = tag.label or hierarchy.concepts[tag.concept].name
                best = max(kinds[kind][0].get("score") or 0.0, tag.score)
                kinds[kind] = [{**kinds[kind][0], "score": best}]
            tag = None
    phrases: list[tuple[int, str, str, list[Noun]]] = []
    riders = kinds.pop("person", [])
    rides: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = []
    for kind in [k for k in RIDDEN if k in kinds]:
        pairs = _pairs(riders, kinds[kind])
        if pairs:
            rides.append((kind, [p for p, _ in pairs], [o for _, o in pairs]))
            used = {id(o) for _, o in pairs}
            riders = [r for r in riders if all(r is not p for p, _ in pairs)]
            kinds[kind] = [o for o in kinds[kind] if id(o) not in used]
    if tag is not None and riders and any(hierarchy.is_a(k, tag.concept) or _under(hierarchy, tag, k)
                                          for k in RIDDEN):
        rides.append((tag.label or hierarchy.concepts[tag.concept].name, [riders[0]],
                      [{"label": tag.label, "score": tag.score}]))
        riders = riders[1:]
        tag = None
    if riders:
        kinds["person"] = riders
    for kind, people, ridden in rides:
        name = renamed.get(kind, kind)
        on = _counted(name, len(ridden), article=len(people) == 1)
        phrase = f"{_counted('person', len(people))} on {on}"
        nouns = [Noun("person", len(people), min(p.get("score") or 0.0 for p in people)),
                 Noun(name, len(ridden), min(o.get("score") or 0.0 for o in ridden))]
        phrases.append((len(people), kind, phrase, nouns))
    for kind, detections in kinds.items():
        if detections:
            name = renamed.get(kind, kind)
            noun = Noun(name, len(detections), min(d.get("score") or 0.0 for d in detections))
            phrases.append((len(detections), kind, _counted(name, len(detections)), [noun]))
    phrases.sort(key=lambda item: (-item[0], item[1]))
    named = [(phrase, nouns) for _, _, phrase, nouns in phrases]
    if tag is not None:
        named.append((tag.phrase, [Noun(tag.label or hierarchy.concepts[tag.concept].name, 1, tag.score,
                                        tag.concept)]))
    return named


def _concepts_of(hierarchy: ConceptHierarchy, label: str) -> set[str]:
    return set(hierarchy.labels.get(label, ()))


def _under(hierarchy: ConceptHierarchy, tag: Any, label: str) -> bool:
    """Whether the agreed tag concept is a kind of the COCO label (a mountain bike of a bicycle)."""
    return bool(_concepts_of(hierarchy, label) & set(hierarchy.ancestors(tag.concept)))


def _pairs(people: list[dict[str, Any]], things: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """People paired with what they ride: each thing with the person whose box overlaps it most."""
    pairs, free = [], list(people)
    for thing in things:
        overlaps = [(_overlap(p.get("box"), thing.get("box")), i) for i, p in enumerate(free)]
        overlaps = [(o, i) for o, i in overlaps if o >= RIDE_OVERLAP]
        if overlaps:
            _, i = max(overlaps)
            pairs.append((free.pop(i), thing))
    return pairs


def _overlap(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    """Intersection over the smaller box's area (boxes are x0, y0, x1, y1); 0 without boxes."""
    if not a or not b or len(a) < 4 or len(b) < 4:
        return 0.0
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return max(width, 0) * max(height, 0) / smaller if smaller > 0 else 0.0


def _traits(shot: Mapping[str, Any]) -> list[str]:
    """The notable technical traits as adjectives; the ordinary ones (colour, sharp, clean) go unsaid."""
    labels = [d["label"] for d in shot.get("technical") or [] if d and d.get("label")]
    if shot.get("is_monochrome"):
        labels.append("monochrome")
    return list(dict.fromkeys(TRAIT_WORDS[label] for label in labels if label in TRAIT_WORDS))


def _object_counts(detections: Sequence[Mapping[str, Any]] | None, min_score: float) -> Counter[str]:
    found = [d for d in detections or [] if d and d.get("label")]
    return Counter(d["label"] for d in found if (d.get("score") or 0) >= min_score)


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


def _counted(label: str, count: int, *, article: bool = True) -> str:
    """'a bicycle', 'two bicycles'; without ``article``, several are just 'bicycles'."""
    if count == 1:
        return _indefinite(label)
    if not article:
        return _plural(label)
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
    return with_article(phrase)


def _join(items: Sequence[str] | Any) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
