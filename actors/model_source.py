"""Telling a local model directory from a hub name, for loaders that accept either.

A cluster swaps in larger weights by configuration, as a path on its disks or
as a hub name its cache holds. A mistyped path must fail at start-up with the
path in the message, not be taken for a hub name and sent to a download that
cannot succeed offline.
"""

from __future__ import annotations

from pathlib import Path

from actors.models import ModelLoadError


def model_source(model: str, *, prefix: str = "", hint: str) -> tuple[str, str]:
    """``(what to load, name to record)``: a directory's path and name, or the hub name itself.

    Raises ModelLoadError when ``model`` looks like a path (starts with ``/``,
    ``.`` or ``~``, or exists) but is not a directory.
    """
    path = Path(model).expanduser()
    if not (model.startswith((".", "/", "~")) or path.exists()):
        return model, prefix + model
    if not path.is_dir():
        raise ModelLoadError(prefix + path.name, str(path), reason="no such directory", hint=hint)
    return str(path), prefix + path.name
