"""A query image as a caller sends it: decoded to RGB, or refused with a reason it can act on.

The image is embedded by the query engine with the model that embedded the
keyframes (`indexes.query.default_image_embedder`); this module only reads it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_IMAGE_PIXELS = 40_000_000
"""Largest query image decoded (a 40-megapixel photo, 120 MB as RGB); a bomb is refused from its header.
(`actors.probe.MAX_PIXELS` is another limit: the largest video frame the pipeline decodes.)"""
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")


class QueryImageError(ValueError):
    """An upload that is not an image this service reads."""


class ImageTooLargeError(QueryImageError):
    pass


def decode_query_image(data: bytes) -> np.ndarray:
    """An uploaded query image as RGB; its size is checked from the header before any pixel is
    decoded, so a small file that inflates to gigabytes is refused, not decoded."""
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageTooLargeError(
                    f"the image is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS:,} pixels are accepted"
                )
            return np.asarray(img.convert("RGB"))
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"the image is far too large to decode; at most {MAX_IMAGE_PIXELS:,} pixels are accepted"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise QueryImageError(
            f"not an image that can be read ({', '.join(IMAGE_FORMATS)} are accepted): {type(exc).__name__}"
        ) from None
