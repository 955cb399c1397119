"""Speakers as the diarize stage commits them, without speaking: each a voice's embedding with a
little noise (two speakers of one voice are ~0.01 apart, of two voices ~1) and its turns."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from catalog_helpers import SAMPLE, FakeText, asset_id, fake_image, write_catalog
from fastapi.testclient import TestClient

from catalog import schema
from catalog.iceberg import open_catalog, replace_assets
from catalog.settings import Settings
from catalog.voices import refresh_voices
from indexes.query import QueryEngine
from serve.app import create_app


def speaker(asset: str, label: str, voice: int, turns: Sequence[tuple[float, float]]) -> dict:
    """The `speakers` row of `label` in `asset`, speaking with voice number `voice` in `turns`."""
    rng = np.random.default_rng(voice)
    centre = rng.normal(size=schema.VOICE_DIM)
    heard = centre / np.linalg.norm(centre) + np.random.default_rng(
        zlib.crc32(f"{asset}/{label}".encode())
    ).normal(scale=0.002, size=schema.VOICE_DIM)
    return {
        "asset_id": asset,
        "speaker": label,
        "seconds": float(sum(end - start for start, end in turns)),
        "turns": [{"start_s": start, "end_s": end} for start, end in turns],
        "embedding": (heard / np.linalg.norm(heard)).astype(np.float32).tolist(),
        "model": "test",
        "error": None,
        "run_id": "r1",
        "pipeline_version": "p1",
    }


def commit_speakers(catalog, rows: Sequence[dict], run_id: str = "r1") -> int:
    """Commit the rows (replacing their assets' speakers), then group them into voices as the step
    after a run's commit does; returns how many voices there are."""
    assets = sorted({r["asset_id"] for r in rows})
    table = pa.Table.from_pylist(list(rows), schema=schema.SPEAKERS)
    replace_assets(catalog, "speakers", table, assets, run_id=run_id)
    return refresh_voices(catalog, run_id=run_id)


def sample_with_voices(settings: Settings) -> list[str]:
    """SAMPLE's catalog (`write_catalog`; its shot ids returned) and two voices: the more heard in
    reel-c's shot 5 (5-7 s) and reel-e's shot 12 (12-14 s), the other in reel-a's shot 0 (0-2 s),
    each turn within that one shot."""
    ids = write_catalog(settings, SAMPLE)
    speakers = [
        speaker(asset_id("reel-c"), "S1", 1, [(5.0, 5.5)]),
        speaker(asset_id("reel-e"), "S1", 1, [(13.5, 13.9)]),
        speaker(asset_id("reel-a"), "S1", 2, [(0.1, 0.5)]),
    ]
    assert commit_speakers(open_catalog(settings), speakers) == 2
    return ids


def voiced_archive(home: Path, token: str) -> tuple[Settings, list[str]]:
    """Settings of a service holding `token` over `sample_with_voices`' catalog, and its shot ids."""
    settings = Settings(home=str(home), catalog_url=None, api_token=token)
    return settings, sample_with_voices(settings)


def service(settings: Settings, **client: str) -> TestClient:
    """The service over the catalog, with text and images embedded by fakes."""
    engine = QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("car"))
    return TestClient(create_app(settings, engine=engine), **client)
