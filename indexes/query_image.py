"""Embedding a query image with the same model that embedded the keyframes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from actors.visual import VisualTagger

MAX_PIXELS = 50_000_000


class QueryImageError(ValueError):
    pass


def embed_query_image(path: Path, tagger: VisualTagger | None = None) -> np.ndarray:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # a decompression bomb fails instead of filling memory
    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise QueryImageError(f"{path}: not an image that can be read ({exc})") from exc
    vectors, _ = (tagger or VisualTagger()).embed_images([rgb])
    return vectors[0]
