"""Where indexes live: one folder per embedding space and catalog snapshot.

A build writes a new folder and then replaces the small `CURRENT.json`
pointer in one atomic write, so a reader loads either the old index or the
new one, and queries keep working while a rebuild runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import fsspec

from actors.storage import write_atomic
from catalog.settings import Settings


class IndexMissingError(LookupError):
    pass


@dataclass(frozen=True)
class IndexVersion:
    space: str
    snapshot_id: int
    count: int
    dim: int
    kind: str
    model: str
    built_at: str

    @property
    def folder(self) -> str:
        return f"{self.space}/{self.snapshot_id}"


def pointer_uri(settings: Settings, space: str) -> str:
    return settings.location("indexes", space, "CURRENT.json")


def folder_uri(settings: Settings, version: IndexVersion) -> str:
    return settings.location("indexes", version.folder)


def publish(settings: Settings, version: IndexVersion) -> None:
    write_atomic(
        pointer_uri(settings, version.space),
        json.dumps(asdict(version), indent=2).encode(),
        settings.storage_options(),
    )


def current(settings: Settings, space: str) -> IndexVersion:
    uri = pointer_uri(settings, space)
    try:
        with fsspec.open(uri, "rb", **settings.storage_options()) as handle:
            data: dict[str, Any] = json.load(handle)
    except FileNotFoundError:
        raise IndexMissingError(
            f"no {space} index has been built in {settings.home}; build it from the current catalog "
            f"snapshot with: archivist index build --space {space}"
        ) from None
    return IndexVersion(**data)
