"""Composed captions: what a reader sees in the catalog, worded from the stages' columns."""

from __future__ import annotations

import random
import re

import pytest

from actors.describe import (
    CAPTION_METHOD,
    MAX_TEXT_CHARS,
    Captioner,
    caption_method,
    compose,
    compose_caption,
    describe,
)
from actors.models import ModelLoadError


def _found(label: str, score: float = 0.9, box: tuple[float, ...] = (0, 0, 10, 10)) -> dict:
    return {"label": label, "score": score, "box": list(box)}


def _face(gender: str, age: float) -> dict:
    return {
        "box": [0, 0, 20, 20],
        "score": 0.9,
        "perceived_gender": gender,
        "perceived_gender_score": 0.95,
        "perceived_age": age,
        "perceived_age_band": "65+",
        "skin_tone_group": "dark",
    }


CAT = {"tag_labels": ["tabby cat", "Persian cat", "Egyptian Mau"], "tag_scores": [0.86, 0.08, 0.03]}
STREET = {
    "tag_labels": ["mountain bike", "unicycle", "tram"],
    "tag_scores": [0.12, 0.07, 0.02],
    "objects": [_found("person"), _found("bicycle"), _found("person", 0.8), _found("car", 0.2)],
}


def test_a_confident_tag_is_stated() -> None:
    assert compose_caption(CAT) == "A shot of a tabby cat."


def test_objects_are_counted_in_words_and_weak_guesses_left_unsaid() -> None:
    caption = compose(STREET)
    assert caption.text == "A shot of a person on a bicycle and a person."
    assert "car" not in caption.text, "a 0.2 detection is not reported"
    assert "mountain bike" not in caption.text and "unicycle" not in caption.text, "0.12 and 0.07 guesses"
    assert caption.confidence == pytest.approx(0.8)
    crowd = [_found("person")] * 12 + [_found("bus")] * 2 + [_found("knife")] * 3 + [_found("wine glass")] * 2
    assert (
        compose_caption({"objects": crowd})
        == "A shot of 12 people, three knives, two buses and two wine glasses."
    )
    unsure = compose({"tag_labels": ["espresso", "mountain bike"], "tag_scores": [0.31, 0.2]})
    assert unsure.text == "A shot." and unsure.confidence is None, "nothing agrees: vague but true"
    assert compose_caption({"tag_labels": ["umbrella"], "tag_scores": [0.03]}) == "A shot."


def test_disagreeing_tags_move_up_to_what_they_share() -> None:
    fish = compose({"tag_labels": ["tench", "goldfish", "pufferfish"], "tag_scores": [0.4, 0.3, 0.15]})
    assert fish.text == "A shot of a fish." and fish.confidence == pytest.approx(0.85)
    assert compose_caption({"tag_labels": ["pufferfish"], "tag_scores": [0.9]}) == "A shot of a pufferfish."


def test_objects_and_tags_are_reconciled() -> None:
    rider, bike = _found("person", 0.9, (10, 0, 40, 60)), _found("bicycle", 0.8, (5, 30, 45, 80))
    assert compose_caption({"objects": [rider, bike]}) == "A shot of a person on a bicycle."
    apart = _found("bicycle", 0.8, (200, 30, 240, 80))
    assert compose_caption({"objects": [rider, apart]}) == "A shot of a bicycle and a person."
    two = [rider, bike, _found("person", 0.9, (100, 0, 130, 60)), _found("bicycle", 0.8, (95, 30, 135, 80))]
    assert compose_caption({"objects": two}) == "A shot of two people on bicycles."
    missed = {"objects": [rider], "tag_labels": ["mountain bike", "unicycle"], "tag_scores": [0.85, 0.1]}
    assert compose_caption(missed) == "A shot of a person on a mountain bike.", "the detector missed the bike"
    cat = {"objects": [_found("cat", 0.8)], "tag_labels": ["tabby cat"], "tag_scores": [0.85]}
    assert compose_caption(cat) == "A shot of a tabby cat.", "the tag says which cat"
    animal = {"objects": [_found("cat", 0.8)], "tag_labels": ["tabby cat", "tench"]}
    animal["tag_scores"] = [0.45, 0.4]
    assert compose_caption(animal) == "A shot of a cat.", "'an animal' adds nothing to a detected cat"
    unrelated = {"objects": [_found("person")], "tag_labels": ["suit"], "tag_scores": [0.9]}
    assert compose_caption(unrelated) == "A shot of a person and a suit."


def test_caption_method_names_its_versions() -> None:
    method = caption_method({"visual_model": "efficientnet-lite0", "objects_model": "ssd-mobilenet-v2"})
    assert method == "composed/v2 (concepts wordnet-3.0; tags efficientnet-lite0; objects ssd-mobilenet-v2)"
    assert caption_method({}) == "composed/v2 (concepts wordnet-3.0)"


def test_caption_does_not_depend_on_detection_order() -> None:
    objects = [_found("dog"), _found("person"), _found("car"), _found("dog"), _found("person")]
    captions = set()
    for seed in range(5):
        shuffled = objects[:]
        random.Random(seed).shuffle(shuffled)
        captions.add(compose_caption({"objects": shuffled}))
    assert captions == {"A shot of two dogs, two people and a car."}


def test_onscreen_text_is_quoted_in_reading_order_and_truncated() -> None:
    texts = [_found("24 HOURS", box=(0, 60, 50, 80)), _found("OPEN", box=(0, 0, 50, 20)), _found("x", 0.2)]
    caption = compose_caption({**CAT, "texts": texts})
    assert caption == 'A shot of a tabby cat, with the text "OPEN 24 HOURS" on screen.'
    long = compose_caption({"texts": [_found("word " * 40)]})
    quoted = re.search(r'"(.*)"', long).group(1)
    assert quoted.endswith("…") and len(quoted) <= MAX_TEXT_CHARS


def test_speech_snippet_is_short_and_said_by_someone() -> None:
    transcript = "Welcome back to the harbour, where the lights were switched on at night for the first time."
    caption = compose_caption({**CAT, "transcript": transcript})
    assert caption.startswith('A shot of a tabby cat, while someone says "Welcome back to the harbour')
    assert caption.endswith('at…".')
    assert compose_caption({"transcript": "Hello there."}) == 'A shot, while someone says "Hello there".'


def test_faces_are_counted_never_described() -> None:
    faces = [_face("female", 71.0), _face("male", 8.0)]
    caption = compose_caption({"faces": faces, "tag_labels": ["suit"], "tag_scores": [0.9]})
    assert caption == "A shot of two faces and a suit."
    banned = r"\b(wom[ae]n|m[ae]n|female|male|girl|boy|old|young|elderly|child|aged?|71|dark|light)\b"
    for shot in ({"faces": faces}, {"faces": faces, "objects": [_found("person")] * 2}):
        assert not re.search(banned, compose_caption(shot) + " " + describe(shot), re.I), shot
    # Where people are detected, their faces are not counted a second time.
    assert compose_caption({"faces": faces, "objects": [_found("person")] * 2}) == "A shot of two people."


def test_technical_traits_worth_saying() -> None:
    technical = [
        _found(label, 1.0) for label in ("resolution:sd", "colour", "grainy", "sharp", "underexposed")
    ]
    assert compose_caption({**CAT, "technical": technical}) == "A grainy, dark shot of a tabby cat."
    assert compose_caption({**CAT, "is_monochrome": True}) == "A black-and-white shot of a tabby cat."
    assert compose_caption({**CAT, "technical": [_found("blank", 1.0)]}) == "A blank shot."
    assert (
        compose_caption({"is_blank": True, "transcript": "Stand by."})
        == 'A blank shot, while someone says "Stand by".'
    )


def test_articles() -> None:
    tags = {
        "umbrella": "an umbrella",
        "unicycle": "a unicycle",
        "eel": "an eel",
        "hourglass": "an hourglass",
        "a cat having a striped coat": "of a cat having",
    }
    for label, expected in tags.items():
        assert expected in compose_caption({"tag_labels": [label], "tag_scores": [0.9]}), label


def test_nothing_seen_gives_no_caption() -> None:
    assert compose_caption({}) is None
    assert compose_caption({"tag_labels": None, "objects": [], "texts": None, "transcript": ""}) is None
    assert describe({}) is None


def test_description_carries_everything_search_should_match() -> None:
    shot = {
        **STREET,
        "texts": [_found("TOUR DE FRANCE")],
        "transcript": "And they are off.  Here comes the pack.",
    }
    text = describe(shot)
    assert text.startswith(compose_caption(shot))
    assert "Tags: mountain bike, unicycle." in text, "tags under 0.05 (tram) are noise"
    assert "Objects: two people, a bicycle." in text
    assert "Text on screen: TOUR DE FRANCE." in text
    assert text.endswith("Speech: And they are off. Here comes the pack.")
    assert describe(shot, caption="A VLM's caption.").startswith("A VLM's caption. Tags:")


def test_captioner_composes_by_default_and_refuses_unknown_vlms() -> None:
    captioner = Captioner()
    assert captioner.method == CAPTION_METHOD == "composed/v2"
    assert captioner.caption(CAT) == compose(CAT)
    assert Captioner(CAPTION_METHOD).method == CAPTION_METHOD
    with pytest.raises(ModelLoadError, match=r"llava-1\.5-7b") as error:
        Captioner("llava-1.5-7b")
    assert "composed/v2" in str(error.value)
