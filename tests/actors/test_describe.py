"""Composed captions: what a reader sees in the catalog, worded from the stages' columns."""

from __future__ import annotations

import random
import re

import pytest

from actors.describe import CAPTION_METHOD, MAX_TEXT_CHARS, Captioner, compose_caption, describe
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


CAT = {"tag_labels": ["tabby cat", "tiger cat", "Egyptian Mau"], "tag_scores": [0.62, 0.21, 0.09]}
STREET = {
    "tag_labels": ["mountain bike", "unicycle", "tram"],
    "tag_scores": [0.12, 0.07, 0.02],
    "objects": [_found("person"), _found("bicycle"), _found("person", 0.8), _found("car", 0.2)],
}


def test_a_confident_tag_is_stated() -> None:
    assert compose_caption(CAT) == "A shot of a tabby cat."


def test_objects_are_counted_in_words_and_weak_tags_hedged() -> None:
    caption = compose_caption(STREET)
    assert (
        caption
        == "A shot of two people and a bicycle, the main subject perhaps a mountain bike or a unicycle."
    )
    assert "car" not in caption, "a 0.2 detection is not reported"
    crowd = [_found("person")] * 12 + [_found("bus")] * 2 + [_found("knife")] * 3 + [_found("wine glass")] * 2
    assert (
        compose_caption({"objects": crowd})
        == "A shot of 12 people, three knives, two buses and two wine glasses."
    )
    likely = compose_caption({"tag_labels": ["espresso", "cup"], "tag_scores": [0.31, 0.2]})
    assert likely == "A shot of what is probably an espresso."
    assert compose_caption({"tag_labels": ["umbrella"], "tag_scores": [0.03]}) is None


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
    caption = compose_caption({"faces": faces, "tag_labels": ["suit"], "tag_scores": [0.4]})
    assert caption == "A shot of two faces, the main subject probably a suit."
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
        "European fire salamander": "a European",
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
    assert captioner.method == CAPTION_METHOD == "composed/v1"
    assert captioner.caption(CAT) == compose_caption(CAT)
    assert Captioner(CAPTION_METHOD).method == CAPTION_METHOD
    with pytest.raises(ModelLoadError, match=r"llava-1\.5-7b") as error:
        Captioner("llava-1.5-7b")
    assert "composed/v1" in str(error.value)
