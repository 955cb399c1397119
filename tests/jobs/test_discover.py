"""Discovery: which files a job is about, and plain words when the source is wrong."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from jobs.discover import SourceError, discover
from jobs.spec import MEDIA_PATTERNS


def test_a_folder_yields_its_media_recursively_by_pattern(tmp_path: Path) -> None:
    (tmp_path / "reel1").mkdir()
    for name in ("a.mp4", "reel1/b.MOV", "notes.txt", ".hidden.mp4", "reel1/skip_me.mp4"):
        (tmp_path / name).write_bytes(b"x" * 3)
    found = discover(str(tmp_path), include=MEDIA_PATTERNS, exclude=["skip_*"])
    assert [Path(f.uri).name for f in found] == ["a.mp4", "b.MOV"]
    assert all(f.size_bytes == 3 and f.version.startswith("3:") for f in found)


def test_a_single_file_is_a_source_too(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"1234")
    assert [f.uri for f in discover(str(clip), include=MEDIA_PATTERNS, exclude=[])] == [str(clip)]


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nowhere.*does not exist"):
        discover(str(tmp_path / "nowhere"), include=MEDIA_PATTERNS, exclude=[])


def test_an_unknown_url_scheme_is_named() -> None:
    with pytest.raises(SourceError, match="nosuch://x"):
        discover("nosuch://x/y", include=MEDIA_PATTERNS, exclude=[])


def test_s3_lists_objects_under_a_prefix(s3_endpoint: str) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="incoming")
    client.put_object(Bucket="incoming", Key="tapes/one.mp4", Body=b"abc")
    client.put_object(Bucket="incoming", Key="tapes/readme.txt", Body=b"abc")
    options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": s3_endpoint}}
    found = discover("s3://incoming/tapes", include=MEDIA_PATTERNS, exclude=[], storage_options=options)
    assert [f.uri for f in found] == ["s3://incoming/tapes/one.mp4"]
    assert found[0].size_bytes == 3


def test_s3_without_credentials_says_which_settings_to_set(s3_endpoint: str, no_aws_credentials) -> None:
    with pytest.raises(SourceError, match=r"no S3 credentials.*ARCHIVIST_S3_ACCESS_KEY_ID"):
        discover(
            "s3://incoming/tapes",
            include=MEDIA_PATTERNS,
            exclude=[],
            storage_options={"client_kwargs": {"endpoint_url": s3_endpoint}},
        )
