"""What the detectors' labels mean: the ImageNet and COCO labels on WordNet's hypernym hierarchy.

A classifier spreading its probability over "tench", "goldfish" and "puffer" is not unsure that it
sees a fish: it is unsure which one. Naming the top guess turns that doubt into a wrong noun; the
hierarchy lets a caption say what the guesses share ("a fish") with the confidence they share
(their summed score), and lets a query for "a fish" reach every kind of fish the labels know.

The hierarchy is ``actors/data/concept_hierarchy.json``, written once by
``jobs/make_concept_hierarchy.py`` from WordNet 3.0; it is read from the package, never fetched.
A concept is a WordNet noun synset (``n01443537``); a label is a detector's class name
("goldfish", COCO's "bicycle"), whose synsets are the leaves. Only some concepts are *sayable*:
basic-level names a person uses ("a fish", "a vehicle"), never "cyprinid" or "instrumentality".
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

HIERARCHY_FILE = "concept_hierarchy.json"
LABEL_TEXT_ANCESTORS = 2
"""Sayable hypernyms a label's ConSE text names after it ("goldfish, a fish, an animal")."""


TOO_GENERAL = frozenset(["organism", "object", "artifact", "matter"])
"""Sayable in a caption of last resort, but no help in a label's text: half the labels are one."""
MAX_CONCEPT_WORDS = 3
MIN_EXPANDED_LABELS = 2
"""A query word expands only to a concept above several labels: a label's own name needs no help."""
_FUNCTION_WORDS = frozenset(
    ["of", "in", "on", "at", "by", "with", "and", "or", "for", "to", "from", "under", "over", "near", "the"]
)


class HierarchyError(RuntimeError):
    """The shipped hierarchy file is missing or malformed: a packaging fault, named with the file."""


@dataclass(frozen=True)
class Concept:
    id: str
    name: str
    gloss: str
    parents: tuple[str, ...]
    sayable: bool
    lemmas: tuple[str, ...] = ()


@dataclass(frozen=True)
class Agreement:
    """What the top labels share: the most specific concept holding at least the asked share of
    their score, said as ``phrase``; ``label`` is set when that concept is one label itself."""

    concept: str
    phrase: str
    score: float
    label: str | None


class ConceptHierarchy:
    """The labels' concepts and the links between them, with the questions captions and search ask."""

    def __init__(self, concepts: dict[str, Concept], labels: dict[str, tuple[str, ...]]) -> None:
        self.concepts = concepts
        self.labels = labels
        self._ancestors: dict[str, dict[str, int]] = {}
        below: dict[str, set[str]] = {}
        for label in labels:
            for concept in self.label_ancestors(label):
                below.setdefault(concept, set()).add(label)
        self._below = {concept: sorted(found) for concept, found in below.items()}
        self._by_name: dict[str, list[str]] = {}
        for entry in concepts.values():
            for name in (entry.name, *entry.lemmas):
                self._by_name.setdefault(name.lower(), []).append(entry.id)
        for label, ids in labels.items():
            self._by_name.setdefault(label.lower(), []).extend(ids)

    def ancestors(self, concept: str) -> dict[str, int]:
        """The concept and every hypernym up to the file's stops, each with its distance (0: itself)."""
        found = self._ancestors.get(concept)
        if found is None:
            found = {concept: 0}
            frontier = [concept]
            while frontier:
                step = []
                for node in frontier:
                    for parent in self.concepts[node].parents:
                        if parent not in found:
                            found[parent] = found[node] + 1
                            step.append(parent)
                frontier = step
            self._ancestors[concept] = found
        return found

    def label_ancestors(self, label: str) -> dict[str, int]:
        """Every concept a label is an instance of (its synsets and their hypernyms), nearest distance."""
        found: dict[str, int] = {}
        for concept in self.labels.get(label, ()):
            for node, distance in self.ancestors(concept).items():
                found[node] = min(distance, found.get(node, distance))
        return found

    def labels_under(self, concept: str) -> list[str]:
        """The detectors' labels that are kinds of the concept: what a query naming it should reach."""
        return self._below.get(concept, [])

    def is_a(self, label: str, concept: str) -> bool:
        return concept in self.label_ancestors(label)

    def find(self, words: str) -> list[str]:
        """Concepts named exactly by the words ('a fish', 'Fish', 'fishes'), most general first."""
        key = _bare(words)
        hits = self._by_name.get(key) or self._by_name.get(_singular(key) or key) or []
        return sorted(dict.fromkeys(hits), key=lambda c: -len(self.labels_under(c)))

    def phrase(self, concept: str, label: str | None = None) -> str:
        """How a caption says the concept: its label when it is one, else its name, with an article."""
        return with_article(label if label is not None else self.concepts[concept].name)

    def sayable_ancestors(self, label: str) -> list[str]:
        """A label's sayable hypernyms, nearest first, itself left out."""
        own = set(self.labels.get(label, ()))
        found = self.label_ancestors(label)
        primary = set()
        for concept in own:  # the first hypernym of each step: WordNet's main line, ahead of side links
            step: str | None = concept
            while step is not None and step not in primary:
                primary.add(step)
                parents = self.concepts[step].parents
                step = parents[0] if parents else None
        return [
            c
            for c, _ in sorted(found.items(), key=lambda item: (item[0] not in primary, item[1]))
            if c not in own and self.concepts[c].sayable and self.concepts[c].name.lower() != label.lower()
        ]

    def label_text(self, label: str) -> str:
        """A label as ConSE embeds it: the name, then what kind of thing it is, so that a query for the
        kind ("a fish") meets the label ("goldfish, a fish, an animal")."""
        names: list[str] = []
        for concept in self.sayable_ancestors(label):
            name = self.concepts[concept].name
            if name not in names and name not in TOO_GENERAL:
                names.append(name)
            if len(names) == LABEL_TEXT_ANCESTORS:
                break
        return ", ".join([label, *(with_article(n) for n in names)])

    def agreement(
        self, labels: Sequence[str], scores: Sequence[float], min_score: float
    ) -> Agreement | None:
        """The lowest common hypernym of the labels, weighted by score: the most specific sayable
        concept whose labels' scores add up to ``min_score``; None when nothing holds that much.

        The labels' scores are summed per concept (a label counts once however many paths lead up),
        so agreeing labels keep their leaf or their nearest parent, and labels spread over unrelated
        leaves move up to what they share, or to nothing."""
        mass: dict[str, float] = {}
        for label, score in zip(labels, scores, strict=False):
            for concept in self.label_ancestors(label):
                mass[concept] = mass.get(concept, 0.0) + float(score)
        held = [c for c, m in mass.items() if m >= min_score and self.concepts[c].sayable]
        if not held:
            return None
        best = min(held, key=lambda c: (len(self.labels_under(c)), -mass[c], c))
        own = [name for name in labels if best in self.labels.get(name, ())]
        named = own[0] if own else None
        return Agreement(best, self.phrase(best, named), mass[best], named)


def with_article(phrase: str) -> str:
    """'a fish', 'an animal', 'an hourglass', 'a unicycle'; a phrase with an article is kept."""
    lower = phrase.lower()
    if lower.startswith(("a ", "an ", "the ")):
        return phrase
    vowel_sound = (lower[:1] in "aeiou" and not lower.startswith(_SAY_A)) or lower.startswith(_SAY_AN)
    return ("an " if vowel_sound else "a ") + phrase


_SAY_A = ("uni", "use", "usu", "eu", "one", "once", "ewe")  # vowel letters, consonant sounds
_SAY_AN = ("hour", "honest", "honour", "heir")


def _bare(words: str) -> str:
    text = " ".join(re.sub(r"[^\w' -]", " ", words.lower()).split())
    for article in ("a ", "an ", "the ", "some "):
        if text.startswith(article):
            return text[len(article) :]
    return text


def _singular(word: str) -> str | None:
    for ending, replacement in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"), ("ses", "s"),
                                ("s", "")):
        if word.endswith(ending) and len(word) > len(ending) + 1:
            return word[: -len(ending)] + replacement
    return None


@cache
def load_hierarchy() -> ConceptHierarchy:
    """The shipped hierarchy, read once per process from the package (no network)."""
    path = resources.files("actors").joinpath("data", HIERARCHY_FILE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        concepts = {
            cid: Concept(cid, c["name"], c["gloss"], tuple(c["parents"]), bool(c["sayable"]),
                         tuple(c.get("lemmas", ())))
            for cid, c in data["concepts"].items()
        }
        text = resources.files("actors").joinpath("data", "imagenet_classes.txt").read_text(encoding="utf-8")
        names = text.splitlines()  # as actors.visual reads them, without importing torch with it
        if len(data["imagenet"]) != len(names):
            raise ValueError(f"'imagenet' has {len(data['imagenet'])} ids for {len(names)} class names")
        labels: dict[str, tuple[str, ...]] = {}
        for name, wnid in [*zip(names, data["imagenet"], strict=True), *data["coco"].items()]:
            labels[name] = (*labels.get(name, ()), wnid) if wnid not in labels.get(name, ()) else labels[name]
        unknown = sorted({c for ids in labels.values() for c in ids} - set(concepts))
        unknown += sorted({p for c in concepts.values() for p in c.parents} - set(concepts))
        if unknown:
            raise ValueError(f"ids without a concept entry: {unknown[:5]}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HierarchyError(f"actors/data/{HIERARCHY_FILE}: {exc}") from exc
    return ConceptHierarchy(concepts, labels)


def query_concepts(hierarchy: ConceptHierarchy, query: str) -> list[str]:
    """The concepts a query names that stand for several labels ("a fish", "animals", "vehicle"):
    its longest word runs that are a concept's name, each word used once."""
    words = _bare(query).split()
    found: list[str] = []
    used: set[int] = set()
    for size in range(min(len(words), MAX_CONCEPT_WORDS), 0, -1):
        for start in range(len(words) - size + 1):
            span = set(range(start, start + size))
            if span & used or (size == 1 and words[start] in _FUNCTION_WORDS):
                continue
            hits = [c for c in hierarchy.find(" ".join(words[start : start + size]))
                    if len(hierarchy.labels_under(c)) >= MIN_EXPANDED_LABELS]
            if hits:
                found.append(hits[0])
                used |= span
    return found


def expansion_texts(hierarchy: ConceptHierarchy, query: str) -> list[str]:
    """The label texts a query reaches through the hierarchy: every label under the concepts it
    names ("a fish": "goldfish, a fish, an animal", "tench, a fish, an animal", …)."""
    concepts = query_concepts(hierarchy, query)
    labels = dict.fromkeys(label for concept in concepts for label in hierarchy.labels_under(concept))
    return [hierarchy.label_text(label) for label in labels]
