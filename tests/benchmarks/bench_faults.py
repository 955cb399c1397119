"""Faults benchmark: per injected fault, what the run did, rows lost, and time to recover.

Run ``python tests/benchmarks/bench_faults.py`` (``--clips N``, default 4; ``--json`` for
machine-readable output). Every scenario is a whole run (segment stage only, one actor, over
N small synthetic clips: shots, keyframes, assets) into a fresh home, against real services
on loopback: moto's S3 server behind the fault proxy of ``tests/faults.py``, a tmpfs for the
disk, the test PostgreSQL (``infra/scripts/ensure-services.sh``; faults are confined to a
database of the benchmark's own, so other users of the server are not disturbed).

- *rows lost*: assets and shots a clean run of the same clips writes, minus what the catalog
  shows (at its latest version) after the fault and, where the run failed, one more run.
- *time to recover*: for a fault the run rides out, its extra wall time over the same run
  without the fault (for S3, a clean run into S3 through the proxy; for PostgreSQL, of the
  commit step, where the outage falls, against a clean run's on PostgreSQL); for one that fails the
  run, the wall time of the next run, started once the fault is gone (the failing run's own
  time to fail is in "what the run did").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
for _path in (REPO, REPO / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import conftest  # noqa: E402,F401 - the Ray environment variables for a shared machine
from conftest import write_clip  # noqa: E402
from faults import (  # noqa: E402
    FaultProxy,
    Rule,
    allow_connections,
    fill,
    footage_folder,
    partial_files,
    remount,
    segment_spec,
    small_disk,
    terminate_connections,
    visible_rows,
)

from catalog.iceberg import open_catalog  # noqa: E402
from catalog.settings import Settings  # noqa: E402
from jobs.run import run_job  # noqa: E402


@dataclass
class Figure:
    fault: str
    injected: str
    run: str
    rows_lost: int
    recover_s: float


@dataclass
class Services:
    s3: str
    postgres: str
    work: Path
    clips: Path
    expected: tuple[int, int] = (0, 0)
    clean_s: float = 0.0


def _rows(settings: Settings) -> tuple[int, int]:
    catalog = open_catalog(settings)
    return visible_rows(catalog), visible_rows(catalog, "shots")


def _lost(services: Services, settings: Settings) -> int:
    assets, shots = _rows(settings)
    return (services.expected[0] - assets) + (services.expected[1] - shots)


def _timed(step: Callable[[], Any]) -> tuple[float, Any, BaseException | None]:
    started = time.perf_counter()
    try:
        result = step()
        return time.perf_counter() - started, result, None
    except Exception as exc:  # a failed run is a figure, not the end of the benchmark
        return time.perf_counter() - started, None, exc


def _bucket(services: Services) -> str:
    import boto3

    name = f"bench-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3",
        endpoint_url=services.s3,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)
    return name


def _s3_settings(services: Services, proxy: FaultProxy, **extra: Any) -> Settings:
    folder = services.work / uuid.uuid4().hex[:8]
    folder.mkdir()
    return Settings(
        home=f"s3://{_bucket(services)}/archive",
        catalog_url=f"sqlite:///{folder}/catalog.db",
        s3_endpoint_url=proxy.url,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        s3_region="us-east-1",
        s3_read_timeout=1.0,
        s3_connect_timeout=1.0,
        **extra,
    )


def _failed_then_recovered(
    services: Services, settings: Settings, fault: str, injected: str, heal: Callable[[], None]
) -> Figure:
    took, summary, error = _timed(lambda: run_job(segment_spec(services.clips), settings=settings))
    heal()
    said = (
        f"failed after {took:.1f} s: {error}"
        if error
        else f"completed ({summary['outcome']}): {summary['failed'][:1]}"
    )
    recover, _, late = _timed(lambda: run_job(segment_spec(services.clips), settings=settings))
    if late is not None:
        said += f"; the next run failed too: {late}"
    return Figure(fault, injected, _short(said), _lost(services, settings), round(recover, 1))


def _short(text: str, limit: int = 220) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean(services: Services) -> Figure:
    warm = Settings(home=str(services.work / "warm"), catalog_url=f"sqlite:///{services.work}/warm.db")
    run_job(segment_spec(services.clips), settings=warm)  # Ray's workers started and warm, untimed
    settings = Settings(home=str(services.work / "clean"), catalog_url=f"sqlite:///{services.work}/clean.db")
    seconds, summary, _ = _timed(lambda: run_job(segment_spec(services.clips), settings=settings))
    services.expected, services.clean_s = _rows(settings), seconds
    return Figure("none (baseline)", "-", f"completed ({summary['outcome']}) in {seconds:.1f} s", 0, 0.0)


def s3_transient(services: Services) -> Figure:
    with FaultProxy(services.s3) as proxy:
        # The same run into S3 through the proxy without faults: what the faults cost is the rest.
        baseline, _, _ = _timed(
            lambda: run_job(segment_spec(services.clips), settings=_s3_settings(services, proxy))
        )
        settings = _s3_settings(services, proxy)
        for rule in (
            Rule("503", method="PUT", path="/keyframes/", times=5),
            Rule("reset", method="PUT", path="/spool/", times=3),
            Rule("500", method="PUT", path="/warehouse/.*/data/", times=3),
            Rule("delay", method="GET", path="/warehouse/", times=2, seconds=2.0),
        ):
            proxy.add(rule)
        seconds, summary, error = _timed(lambda: run_job(segment_spec(services.clips), settings=settings))
        met, lost = len(proxy.faults()), _lost(services, settings)
    said = (
        f"failed: {error}"
        if error
        else f"completed ({summary['outcome']}) in {seconds:.1f} s ({baseline:.1f} s without faults), "
        f"{met} faults retried"
    )
    return Figure(
        "S3 transient",
        "503 SlowDown x5 (keyframe PUTs), reset mid-PUT x3 (spool), 500 x3 (data files), "
        "2 s delay x2 (GETs, 1 s timeout)",
        said,
        lost,
        round(max(seconds - baseline, 0.0), 1),
    )


def s3_persistent(services: Services) -> Figure:
    with FaultProxy(services.s3) as proxy:
        settings = _s3_settings(services, proxy, s3_max_attempts=3)
        proxy.add(Rule("500", method="PUT", path="/warehouse/", times=10**6))
        return _failed_then_recovered(
            services, settings, "S3 persistent", "500 on every warehouse PUT, until cleared", proxy.clear
        )


def disk_full(services: Services) -> Figure:
    with small_disk(services.work / "full", "16m") as disk:
        settings = Settings(home=str(disk), catalog_url=f"sqlite:///{services.work}/full.db")
        ballast = fill(disk)
        figure = _failed_then_recovered(
            services, settings, "disk full", "tmpfs home filled to 0 bytes free, then freed", ballast.unlink
        )
        if partial_files(disk):
            figure.run += f"; PARTIAL FILES LEFT: {partial_files(disk)}"
    return figure


def read_only(services: Services) -> Figure:
    with small_disk(services.work / "ro", "16m") as disk:
        settings = Settings(home=str(disk), catalog_url=f"sqlite:///{services.work}/ro.db")
        remount(disk, "ro")
        return _failed_then_recovered(
            services,
            settings,
            "read-only warehouse",
            "home remounted read-only, then read-write",
            lambda: remount(disk, "rw"),
        )


def _postgres_db(services: Services) -> str:
    import sqlalchemy

    name = f"bench_faults_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(services.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return name


def _drop_db(services: Services, name: str) -> None:
    import sqlalchemy

    admin = sqlalchemy.create_engine(services.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _after_first_commit(action: Callable[[], None]) -> Callable[[], None]:
    """Have `action` happen right after a run's first table commit; returns the undo."""
    import jobs.commit

    commit = jobs.commit.replace_matching
    done: list[bool] = []

    def then(*args: Any, **kwargs: Any) -> Any:
        result = commit(*args, **kwargs)
        if not done:
            done.append(True)
            action()
        return result

    jobs.commit.replace_matching = then  # type: ignore[assignment]
    return lambda: setattr(jobs.commit, "replace_matching", commit)


def _clean_postgres_commit(services: Services) -> float:
    """Seconds of the commit step of a run on PostgreSQL without faults (a run's wall time
    on this shared machine varies more than an outage of seconds costs)."""
    name = _postgres_db(services)
    url = services.postgres.rsplit("/", 1)[0] + f"/{name}"
    try:
        summary = run_job(
            segment_spec(services.clips), settings=Settings(home=str(services.work / name), catalog_url=url)
        )
    finally:
        _drop_db(services, name)
    return float(summary["seconds"]["commit"])


def postgres(services: Services, *, down_for: float) -> Figure:
    clean_commit = _clean_postgres_commit(services)
    name = _postgres_db(services)
    url = services.postgres.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(home=str(services.work / name), catalog_url=url)
    timers: list[threading.Timer] = []

    def outage() -> None:
        if down_for:
            allow_connections(services.postgres, name, False)
            timers.append(threading.Timer(down_for, allow_connections, (services.postgres, name, True)))
            timers[-1].start()
        terminate_connections(services.postgres, name)

    undo = _after_first_commit(outage)
    try:
        _, summary, error = _timed(lambda: run_job(segment_spec(services.clips), settings=settings))
    finally:
        undo()
        for timer in timers:
            timer.join()
    recover = 0.0
    if error is None:
        commit = float(summary["seconds"]["commit"])
        said = (
            f"completed ({summary['outcome']}); commit step {commit:.1f} s "
            f"({clean_commit:.1f} s without faults)"
        )
        recover = max(commit - clean_commit, 0.0)
    else:
        said = f"failed: {error}"
    if error is not None:
        recover, _, late = _timed(lambda: run_job(segment_spec(services.clips), settings=settings))
        if late is not None:
            said += f"; the next run failed too: {late}"
    lost = _lost(services, settings)
    injected = "every connection terminated after the first table commit"
    if down_for:
        injected += f", new connections refused for {down_for:.0f} s"
    _drop_db(services, name)
    return Figure(
        f"PostgreSQL {'down' if down_for else 'restart'}",
        injected,
        _short(said),
        lost,
        round(recover, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import subprocess

    from moto.server import ThreadedMotoServer

    from jobs.ray_runtime import ensure_ray

    started = subprocess.run(
        ["bash", str(REPO / "infra" / "scripts" / "ensure-services.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    ensure_ray(Settings(home="/dev/null"))
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        work = Path(tmp)
        services = Services(
            s3=f"http://{host}:{port}",
            postgres=started.stdout.strip().splitlines()[-1],
            work=work,
            clips=footage_folder(work / "reels", args.clips, write_clip),
        )
        for scenario in (
            clean,
            s3_transient,
            s3_persistent,
            disk_full,
            read_only,
            lambda s: postgres(s, down_for=0.0),
            lambda s: postgres(s, down_for=3.0),
        ):
            figures.append(scenario(services))
            print(f"  {figures[-1].fault}: {figures[-1].run}", file=sys.stderr)
    moto.stop()
    expected = f"{services.expected[0]} assets + {services.expected[1]} shots"
    if args.json:
        print(json.dumps({"expected_rows": expected, "figures": [asdict(f) for f in figures]}, indent=2))
        return
    print(f"\n{args.clips} clips; a clean run writes {expected} in {services.clean_s:.1f} s\n")
    print("| fault | injected | what the run did | rows lost | time to recover (s) |")
    print("| --- | --- | --- | --- | --- |")
    for f in figures:
        print(f"| {f.fault} | {f.injected} | {f.run.replace('|', '/')} | {f.rows_lost} | {f.recover_s} |")


if __name__ == "__main__":
    main()
