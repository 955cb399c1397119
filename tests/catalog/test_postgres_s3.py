"""The cluster configuration for real: catalog and state in PostgreSQL, source and
warehouse in S3 (moto's server on loopback), the same run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.iceberg import open_catalog
from catalog.query import sql
from catalog.settings import Settings
from catalog.state import StateStore
from jobs.cli import app
from jobs.run import run_job
from jobs.spec import default_spec

pytestmark = pytest.mark.slow


def test_a_run_from_s3_into_s3_with_postgres(
    ray_session, postgres_url: str, s3_bucket, footage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, client = s3_bucket
    for clip in footage.glob("*.mp4"):
        client.upload_file(str(clip), bucket, f"incoming/{clip.name}")
    client.put_object(Bucket=bucket, Key="incoming/broken.mp4", Body=b"\x00" * 1000)
    monkeypatch.setenv("ARCHIVIST_HOME", f"s3://{bucket}/archive")
    monkeypatch.setenv("ARCHIVIST_CATALOG_URL", postgres_url)
    settings = Settings()

    summary = run_job(default_spec(f"s3://{bucket}/incoming"))
    assert summary["assets"] == {"ok": 2, "damaged": 0, "failed": 1, "skipped": 0, "resumed": 0}, summary[
        "failed"
    ]

    catalog = open_catalog(settings)
    assets = sql(catalog, "SELECT uri, status FROM assets ORDER BY uri").to_pylist()
    assert [a["uri"] for a in assets] == [
        f"s3://{bucket}/incoming/{n}" for n in ("bigbuckbunny.mp4", "bikes.mp4", "broken.mp4")
    ]
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="archive/")["Contents"]}
    assert any(k.startswith("archive/warehouse/archive/shots/") and k.endswith(".parquet") for k in keys)
    assert any(k.startswith("archive/keyframes/") and k.endswith(".jpg") for k in keys)
    assert "archive/indexes/visual/CURRENT.json" in keys
    assert not any(k.startswith("archive/staging/") for k in keys)  # committed staging is removed

    run = StateStore(settings.catalog_url_resolved).run(summary["run_id"])
    assert run.status == "succeeded" and settings.catalog_url_resolved.startswith("postgresql")

    again = run_job(default_spec(f"s3://{bucket}/incoming"))
    assert again["assets"]["skipped"] == 3 and again["shots"] == 0

    shot = sql(catalog, "SELECT shot_id FROM shots LIMIT 1")["shot_id"][0].as_py()
    result = CliRunner().invoke(app, ["search", "--like", shot, "--top", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert all(h["uri"].startswith(f"s3://{bucket}/") for h in json.loads(result.stdout)["hits"])
