"""The one way the XML exports add an element: namespaced, attributes without the unset ones."""

from __future__ import annotations

from typing import Any

from lxml import etree


def element(
    parent: etree._Element, namespace: str, name: str, text: Any = None, **attrs: Any
) -> etree._Element:
    """A child `name` of `parent` in `namespace`, with `text` and the attributes that are set."""
    child = etree.SubElement(
        parent, f"{{{namespace}}}{name}", {k: str(v) for k, v in attrs.items() if v is not None}
    )
    if text is not None:
        child.text = str(text)
    return child
