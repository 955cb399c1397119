"""The one settings object: where the archive lives and what runs it.

Every value comes from an `ARCHIVIST_*` environment variable or its embedded
default (a folder warehouse, SQLite, a local Ray); a job spec's `storage`
section overrides them for that job. Code reads locations from here and never
asks whether it is on a laptop or a cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARCHIVIST_", extra="forbid")

    home: str = Field("./archive-data", description="warehouse root: a folder or an s3:// URL")
    catalog_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite inside a local home")
    ray_address: str | None = Field(None, description="Ray cluster address; default starts a local Ray")
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str | None = None
    s3_retry_mode: str = Field("standard", description="botocore retry mode: standard or adaptive")
    s3_max_attempts: int = Field(5, ge=1, description="tries of an S3 request (500, 503, reset, timeout)")
    s3_connect_timeout: float = Field(5.0, gt=0, description="seconds to connect to S3 before retrying")
    s3_read_timeout: float = Field(30.0, gt=0, description="seconds to wait for an S3 answer before retrying")
    api_token: str | None = Field(None, description="token required by write endpoints of the API")

    @field_validator("home")
    @classmethod
    def _absolute_local_home(cls, value: str) -> str:
        # Ray workers do not share the driver's working directory.
        if "://" in value and not value.startswith("file://"):
            return value.rstrip("/")
        return str(Path(value.removeprefix("file://")).expanduser().resolve())

    @property
    def home_is_local(self) -> bool:
        return "://" not in self.home

    @property
    def catalog_url_resolved(self) -> str:
        if self.catalog_url:
            return self.catalog_url
        if not self.home_is_local:
            raise ValueError(
                f"ARCHIVIST_CATALOG_URL must be set when ARCHIVIST_HOME is remote ({self.home}): "
                "the default SQLite file can only live in a local folder"
            )
        os.makedirs(self.home, exist_ok=True)
        # Wait for a lock rather than fail at once when two local runs commit together.
        return f"sqlite:///{self.home}/catalog.db?timeout=60"

    def location(self, *parts: str) -> str:
        """A URI under the home (warehouse, keyframes, indexes, masters…)."""
        return "/".join([self.home, *parts])

    def s3_config(self) -> dict[str, Any]:
        """botocore's client config for every S3 client archivist makes (fsspec's and
        pyiceberg's): transient failures (500, 503 SlowDown, a reset connection, a timeout)
        are retried with exponential backoff and jitter up to `s3_max_attempts`; what still
        fails is an error naming the object (see `catalog.storage`)."""
        return {
            "retries": {"mode": self.s3_retry_mode, "max_attempts": self.s3_max_attempts},
            "connect_timeout": self.s3_connect_timeout,
            "read_timeout": self.s3_read_timeout,
        }

    def storage_options(self) -> dict[str, Any]:
        """fsspec options for the home and for s3:// sources."""
        if self.home_is_local and not self.s3_endpoint_url and not self.s3_access_key_id:
            return {}
        options: dict[str, Any] = {"config_kwargs": self.s3_config()}
        if self.s3_access_key_id:
            options["key"] = self.s3_access_key_id
        if self.s3_secret_access_key:
            options["secret"] = self.s3_secret_access_key
        client: dict[str, Any] = {}
        if self.s3_endpoint_url:
            client["endpoint_url"] = self.s3_endpoint_url
        if self.s3_region:
            client["region_name"] = self.s3_region
        if client:
            options["client_kwargs"] = client
        return options

    def iceberg_properties(self) -> dict[str, str]:
        """The same S3 facts in pyiceberg's property names (the retry config under
        `catalog.storage`'s own, read by its FileIO), and a connection pool that checks a
        connection before use, so a restarted database costs a reconnect, not a failure."""
        props = {"py-io-impl": "catalog.storage.ArchiveFileIO", "pool_pre_ping": "true"}
        for key, value in (
            ("s3.endpoint", self.s3_endpoint_url),
            ("s3.access-key-id", self.s3_access_key_id),
            ("s3.secret-access-key", self.s3_secret_access_key),
            ("s3.region", self.s3_region),
            ("s3.connect-timeout", str(self.s3_connect_timeout)),
            ("s3.request-timeout", str(self.s3_read_timeout)),
            ("archivist.s3.retry-mode", self.s3_retry_mode),
            ("archivist.s3.max-attempts", str(self.s3_max_attempts)),
        ):
            if value:
                props[key] = value
        return props

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        """These settings with a job spec's `storage` section laid over them."""
        values = self.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Settings(**values)
