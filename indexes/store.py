"""Where indexes live: one folder per embedding space and catalog snapshot.

A build writes a new folder and then replaces the small `CURRENT.json`
pointer in one atomic write, so a reader loads either the old index or the
new one, and queries keep working while a rebuild runs. A folder is never
rewritten under a reader: it is named by the snapshot and the index type, and
its `version.json`, written last, marks it complete, so building the same
snapshot the same way again just publishes it again.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import fsspec

from catalog.settings import Settings
from catalog.storage import write_atomic


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
    factory: str = ""
    """FAISS `index_factory` string; empty for indexes written before it was recorded."""
    search_params: dict[str, float] = field(default_factory=dict)
    """Search settings chosen at build time (`ParameterSpace` names), applied at load."""
    recall: float = 1.0
    """Recall@10 those settings reached against exact search at build time."""
    resident_bytes: int = 0
    """Estimated memory the loaded index keeps resident while answering queries."""

    @property
    def folder(self) -> str:
        return version_folder(self.space, self.snapshot_id, self.factory)


def version_folder(space: str, snapshot_id: int, factory: str) -> str:
    """Named by the index type too: the same snapshot rebuilt as another type must not
    replace files that a reader of the first has open."""
    if not factory:
        return f"{space}/{snapshot_id}"
    return f"{space}/{snapshot_id}-{re.sub(r'[^a-z0-9]+', '-', factory.lower()).strip('-')}"


def pointer_uri(settings: Settings, space: str) -> str:
    return settings.location("indexes", space, "CURRENT.json")


def folder_uri(settings: Settings, version: IndexVersion) -> str:
    return settings.location("indexes", version.folder)


def seal(settings: Settings, version: IndexVersion) -> None:
    """Mark the version's folder complete; its files must all be written already."""
    write_atomic(
        f"{folder_uri(settings, version)}/version.json",
        json.dumps(asdict(version), indent=2).encode(),
        settings.storage_options(),
    )


def sealed(settings: Settings, space: str, snapshot_id: int, factory: str) -> IndexVersion | None:
    """The complete build of this snapshot with this index type, if there is one."""
    uri = settings.location("indexes", version_folder(space, snapshot_id, factory), "version.json")
    try:
        with fsspec.open(uri, "rb", **settings.storage_options()) as handle:
            return IndexVersion(**json.load(handle))
    except FileNotFoundError:
        return None


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
