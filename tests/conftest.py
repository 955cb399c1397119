"""Shared fixtures: a fresh archive home per test, Ray once per session, media made on the spot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from catalog.settings import Settings
from jobs.samples import sample_file

for _key, _value in {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "HF_HUB_OFFLINE": "1",
}.items():
    os.environ.setdefault(_key, _value)


LIGHT_STAGES = """\
  speech: {enabled: false}
  text: {enabled: false}
  keyframes:
    objects: {enabled: false}
    ocr: {enabled: false}
    faces: {enabled: false}
    safety: {enabled: false}
"""
"""The `stages:` body of a spec for tests about running, not describing: segment and the
cheap keyframe models only, so a run starts in seconds."""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty archive home that the CLI and Settings() both see."""
    path = tmp_path / "archive"
    monkeypatch.setenv("ARCHIVIST_HOME", str(path))
    monkeypatch.delenv("ARCHIVIST_CATALOG_URL", raising=False)
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def ray_session():
    """Ray, started once for the whole session (it takes seconds each time)."""
    from jobs.ray_runtime import ensure_ray

    ensure_ray(Settings(home=os.devnull))
    import ray

    yield ray
    ray.shutdown()


@pytest.fixture
def footage(tmp_path: Path) -> Path:
    """A source folder holding the two sample clips."""
    folder = tmp_path / "footage"
    folder.mkdir()
    for name in ("bigbuckbunny.mp4", "bikes.mp4"):
        shutil.copy(sample_file(name), folder / name)
    return folder


@pytest.fixture(scope="session")
def bad_media():
    """Writes, into a folder, files an archive really holds: empty, cut short, not video at all."""
    return _make_bad_media


def _make_bad_media(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(sample_file("bikes.mp4").read_bytes()[:20_000])
    noise = folder / "noise.mp4"
    noise.write_bytes(os.urandom(50_000))
    return {"empty": empty, "truncated": truncated, "noise": noise}


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 endpoint (moto's server) on loopback, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere botocore looks: environment, files, instance metadata."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A real PostgreSQL on loopback, installed and started by the project's own script."""
    import subprocess

    script = Path(__file__).parents[1] / "infra" / "scripts" / "ensure-services.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"could not start PostgreSQL:\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh database on that server for one test."""
    import uuid

    import sqlalchemy

    name = f"archivist_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """A fresh bucket on the moto server, with credentials in the ARCHIVIST_S3_* settings."""
    import uuid

    import boto3

    name = f"archive-{uuid.uuid4().hex[:10]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=name)
    for key, value in {
        "ARCHIVIST_S3_ENDPOINT_URL": s3_endpoint,
        "ARCHIVIST_S3_ACCESS_KEY_ID": "testing",
        "ARCHIVIST_S3_SECRET_ACCESS_KEY": "testing",
        "ARCHIVIST_S3_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    return name, client


@pytest.fixture(scope="session")
def clip_writer():
    """Writes small synthetic clips with known cuts (see `write_clip`)."""
    return write_clip


def write_clip(
    path: Path,
    *,
    seconds: float = 2.0,
    size: tuple[int, int] = (320, 180),
    fps: int = 25,
    seed: int = 0,
    cuts: int = 1,
) -> Path:
    """A small H.264 clip of `cuts + 1` differently coloured, textured, moving shots."""
    import av
    import numpy as np

    rng = np.random.default_rng(seed)
    width, height = size
    frames = int(seconds * fps)
    looks = [(rng.integers(0, 256, 3), rng.integers(8, 40)) for _ in range(cuts + 1)]
    texture = rng.integers(0, 60, (height, width, 1), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            colour, period = looks[min(i * (cuts + 1) // frames, cuts)]
            x = np.arange(width)[None, :, None]
            wave = (40 * np.sin((x + 3 * i) / period)).astype(np.int16)
            image = np.clip(colour[None, None, :] + wave + texture, 0, 255).astype(np.uint8)
            image = np.broadcast_to(image, (height, width, 3))
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
