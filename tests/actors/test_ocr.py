"""On-screen text: captions and small print read back, boxes where the text is, no text no rows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from keyframe_helpers import BAD_KEYFRAMES, as_keyframe, captioned, clip_frame, keyframe_batch, still

from actors.models import ModelLoadError
from actors.ocr import TextReader, has_text_edges
from catalog.schema import ONSCREEN_TEXT


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader(device="cpu")


@pytest.fixture(scope="module")
def caption() -> np.ndarray:
    return captioned(
        still("coffee"), [("ARCHIVE 1962", (40, 80), 1.5, 3), ("Evening news", (40, 380), 0.6, 1)]
    )


@pytest.fixture(scope="module")
def small_print() -> np.ndarray:
    """A 7-px-high line on a 640x272 street frame: what a date stamp looks like on archive video."""
    return captioned(clip_frame("bikes.mp4", 100), [("Brussels, May 1987", (20, 250), 0.35, 1)])


def _texts(lines: list[dict]) -> list[str]:
    return [line["label"] for line in lines]


def test_caption_read_with_boxes_around_it(reader: TextReader, caption: np.ndarray) -> None:
    out = reader(keyframe_batch([caption]))
    lines = out.column("texts").to_pylist()[0]
    assert _texts(lines) == ["ARCHIVE 1962", "Evening news"], lines
    title, news = (line["box"] for line in lines)
    assert title[0] <= 42 and title[1] <= 50 and title[2] >= 300 and 78 <= title[3] <= 100, title
    assert news[0] <= 42 and 360 <= news[1] < 380 <= news[3] <= 400, news
    assert all(line["score"] >= 0.8 for line in lines)
    assert out.column("text_model").to_pylist() == ["pp-ocrv6-small"]


def test_small_text_is_upscaled_and_read(reader: TextReader, small_print: np.ndarray) -> None:
    lines = reader.read(small_print)
    assert _texts(lines) == ["Brussels, May 1987"], lines
    x0, y0, x1, y1 = lines[0]["box"]
    assert x0 < 25 and 235 < y0 < y1 < 262 and 100 < x1 < 200


def test_text_read_from_keyframes_as_the_segment_stage_makes_them(
    reader: TextReader, caption: np.ndarray
) -> None:
    """384 px on the longer side, JPEG quality 85: a caption and a subtitle stay legible."""
    subtitle = captioned(
        clip_frame("bigbuckbunny.mp4", 60), [("Peach Open Movie Project 2008", (200, 680), 1.2, 2)]
    )
    out = reader(keyframe_batch([as_keyframe(caption), as_keyframe(subtitle)]))
    coffee, bunny = out.column("texts").to_pylist()
    assert _texts(coffee) == ["ARCHIVE 1962", "Evening news"]
    assert _texts(bunny) == ["Peach Open Movie Project 2008"]
    x0, y0, x1, y1 = bunny[0]["box"]
    assert 50 < x0 < x1 < 384 and 180 < y0 < y1 <= 216, "in the 384x216 keyframe's pixels, near the bottom"


def test_printed_page(reader: TextReader) -> None:
    texts = _texts(reader.read(still("page")))
    assert texts[0] == "Region-based segmentation"
    assert texts[-1].endswith("markers = np.zeros_like(coins)"), (
        "the underscore survives: small text is upscaled"
    )
    assert len(texts) == 7


def test_no_text_no_rows(reader: TextReader) -> None:
    out = reader(keyframe_batch([np.zeros((272, 640, 3), np.uint8), still("coffee"), *BAD_KEYFRAMES]))
    assert out.column("texts").to_pylist() == [[], [], None, None]
    assert out.schema.names == ["shot_id", "keyframe_jpeg", *ONSCREEN_TEXT.names]
    for field in ONSCREEN_TEXT:
        assert out.schema.field(field.name).type == field.type


def test_early_exit_skips_only_what_cannot_hold_text(
    reader: TextReader, caption: np.ndarray, small_print: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    for image in (caption, small_print, still("page"), still("camera"), clip_frame("bigbuckbunny.mp4", 60)):
        assert has_text_edges(image)
    flat = [
        np.zeros((272, 640, 3), np.uint8),
        np.full((272, 640, 3), 200, np.uint8),
        np.tile(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (272, 1, 3)),  # a smooth ramp
        cv2.GaussianBlur(caption, (0, 0), 8),  # text blurred past legibility
    ]
    assert not any(has_text_edges(image) for image in flat)

    def must_not_run(*args, **kwargs):
        raise AssertionError("OCR ran on a keyframe the gate should have skipped")

    monkeypatch.setattr(reader, "engine", must_not_run)
    assert [reader.read(image) for image in flat] == [[], [], [], []]


def test_bad_model_files_fail_at_load(tmp_path) -> None:
    with pytest.raises(ModelLoadError) as error:
        TextReader(det_weights=str(tmp_path / "missing_det.onnx"))
    assert "rapidocr" in str(error.value) and "missing_det.onnx" in str(error.value)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not onnx")
    with pytest.raises(ModelLoadError, match="pp-ocrv6-small"):
        TextReader(rec_weights=str(garbage))
    with pytest.raises(ValueError):
        TextReader(min_score=2.0)
