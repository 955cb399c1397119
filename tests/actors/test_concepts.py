"""The concept hierarchy: what disagreeing labels share, what a query for a kind reaches."""

from __future__ import annotations

import random
import socket

import numpy as np
import pytest

from actors.concepts import expansion_texts, load_hierarchy, query_concepts
from actors.describe import CONCEPT_MIN_SCORE, OBJECT_MIN_SCORE, compose
from indexes.query import expanded_query_vector

FISH = ("tench", "goldfish", "pufferfish")


def test_the_hierarchy_loads_from_the_package_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the hierarchy must not reach the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    load_hierarchy.cache_clear()
    hierarchy = load_hierarchy()
    assert len({hierarchy.labels[name] for name in FISH}) == 3
    assert hierarchy.labels["person"] and hierarchy.labels["bicycle"], "COCO labels are mapped too"
    fish = hierarchy.find("fish")[0]
    assert all(hierarchy.is_a(name, fish) for name in FISH)
    assert not hierarchy.is_a("tabby cat", fish)


def test_disagreeing_top_labels_give_what_they_share() -> None:
    hierarchy = load_hierarchy()
    spread = hierarchy.agreement(list(FISH), [0.2, 0.2, 0.15], 0.5)
    assert spread is not None and spread.phrase == "a fish" and spread.label is None
    assert spread.score == pytest.approx(0.55)
    animals = hierarchy.agreement(["tench", "tabby cat", "albatross"], [0.2, 0.2, 0.15], 0.5)
    assert animals is not None and animals.phrase == "an animal"
    vehicles = hierarchy.agreement(["mountain bike", "unicycle", "tram"], [0.25, 0.2, 0.1], 0.5)
    assert vehicles is not None and vehicles.phrase == "a vehicle"
    assert hierarchy.agreement(["tench", "sports car", "espresso"], [0.3, 0.3, 0.3], 0.5) is None


def test_agreeing_top_labels_keep_the_leaf() -> None:
    hierarchy = load_hierarchy()
    cat = hierarchy.agreement(["tabby cat", "Persian cat", "Egyptian Mau"], [0.62, 0.21, 0.09], 0.5)
    assert cat is not None and cat.phrase == "a tabby cat" and cat.label == "tabby cat"
    cats = hierarchy.agreement(["tabby cat", "Persian cat", "Egyptian Mau"], [0.3, 0.25, 0.1], 0.5)
    assert cats is not None and cats.phrase == "a cat", "no one cat holds half: the cats do"


def test_label_texts_carry_their_hypernyms() -> None:
    hierarchy = load_hierarchy()
    assert hierarchy.label_text("goldfish") == "goldfish, a fish, an animal"
    assert hierarchy.label_text("mountain bike").startswith("mountain bike, a bicycle")


def test_a_fish_query_expands_to_the_fish_classes() -> None:
    hierarchy = load_hierarchy()
    for query in ("a fish", "Fish", "fishes"):
        assert [hierarchy.concepts[c].name for c in query_concepts(hierarchy, query)] == ["fish"], query
    texts = expansion_texts(hierarchy, "a fish")
    for name in FISH:
        assert hierarchy.label_text(name) in texts
    assert not any(t.startswith("tabby cat") for t in texts)
    assert expansion_texts(hierarchy, "a pagoda at dusk") == [], "a label's own name is not expanded"


def test_an_expanded_query_moves_towards_its_labels() -> None:
    """With a stand-in encoder (a bag of words), 'a fish' alone shares no word with 'tench'; expanded,
    it meets every fish label and no cat."""
    vocabulary: dict[str, int] = {}

    def encode(texts: list[str]) -> np.ndarray:
        rows = np.zeros((len(texts), 4096), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace(",", " ").split():
                rows[row, vocabulary.setdefault(word, len(vocabulary))] += 1.0
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    hierarchy, cache = load_hierarchy(), {}
    vector = expanded_query_vector("a fish", encode, hierarchy, cache)
    tench, cat = encode(["tench", "tabby cat"])
    assert float(encode(["a fish"])[0] @ tench) == 0.0
    assert float(vector @ tench) > 0.0 == float(vector @ cat)
    assert len(cache) == len(expansion_texts(hierarchy, "a fish")), "label texts are encoded once, kept"
    plain = expanded_query_vector("a page of printed text", encode, hierarchy, cache)
    np.testing.assert_allclose(plain, encode(["a page of printed text"])[0])


def test_a_caption_never_names_a_noun_below_its_threshold() -> None:
    hierarchy = load_hierarchy()
    labels = sorted(hierarchy.labels)
    rng = random.Random(17)
    for _ in range(300):
        tags = rng.sample(labels, 5)
        scores = sorted((rng.random() ** 2 for _ in tags), reverse=True)
        total = sum(scores) * rng.uniform(1.0, 2.0)
        objects = [
            {
                "label": rng.choice(["person", "bicycle", "dog", "car", "cup"]),
                "score": rng.random(),
                "box": [0, 0, 10, 10],
            }
            for _ in range(rng.randrange(4))
        ]
        shot = {"tag_labels": tags, "tag_scores": [s / total for s in scores], "objects": objects}
        caption = compose(shot)
        assert caption is not None
        for noun in caption.nouns:
            assert noun.confidence >= min(CONCEPT_MIN_SCORE, OBJECT_MIN_SCORE), (shot, noun)
        weak = {d["label"] for d in objects if d["score"] < OBJECT_MIN_SCORE} - {
            d["label"] for d in objects if d["score"] >= OBJECT_MIN_SCORE
        }
        named = {noun.name for noun in caption.nouns}
        assert not weak & named, (shot, caption)
        if caption.nouns:
            assert caption.confidence == pytest.approx(min(n.confidence for n in caption.nouns), abs=1e-4)
        else:
            assert caption.confidence is None and caption.text.endswith("shot.")
