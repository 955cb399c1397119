"""Storage and database faults, injected for real: S3 answering 500 and 503 SlowDown,
resetting a connection mid-upload or answering slowly (a fault proxy in front of moto's
server); a disk that fills (a small tmpfs); a warehouse that turns read-only (a read-only
remount); PostgreSQL dropping every connection, or refusing them for a while.

What a user should see: transient faults retried away with nothing lost; lasting ones a
clear error naming the object, path or database; never a half-written file or a catalog
version naming a file that is not there; and the next attempt completing the work.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from faults import (
    FaultProxy,
    MountNotPermittedError,
    Rule,
    allow_connections,
    asset_rows,
    commit_assets,
    fill,
    footage_folder,
    missing_files,
    partial_files,
    remount,
    segment_spec,
    small_disk,
    terminate_connections,
    visible_rows,
)

from catalog.iceberg import open_catalog
from catalog.settings import Settings
from catalog.state import DatabaseUnavailableError, StateStore
from catalog.storage import StorageError, write_atomic
from catalog.versions import latest_version
from jobs.run import run_job


@pytest.fixture
def proxy(s3_endpoint: str):
    with FaultProxy(s3_endpoint) as running:
        yield running


@pytest.fixture
def s3_settings(proxy: FaultProxy, s3_bucket, tmp_path: Path) -> Settings:
    """An S3 home reached through the fault proxy, the catalog in a local SQLite file; short
    timeouts so that a slow answer is a timeout within the test's time."""
    bucket, _ = s3_bucket
    return Settings(
        home=f"s3://{bucket}/archive",
        catalog_url=f"sqlite:///{tmp_path}/catalog.db",
        s3_endpoint_url=proxy.url,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        s3_region="us-east-1",
        s3_read_timeout=1.0,
        s3_connect_timeout=1.0,
    )


def _mounted(path: Path, size: str = "2m"):
    try:
        return small_disk(path, size)
    except MountNotPermittedError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))


# -- S3 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "times"),
    [("500", 2), ("503", 3), ("reset", 2), ("delay", 1)],
)
def test_a_transient_s3_fault_is_retried_and_the_object_lands_whole(
    proxy: FaultProxy, s3_settings: Settings, s3_bucket, fault: str, times: int
) -> None:
    bucket, client = s3_bucket
    proxy.add(Rule(fault, method="PUT", path="/spool/", times=times, seconds=2.0))  # type: ignore[arg-type]
    data = bytes(range(256)) * 2000  # 512 KB: a reset cuts it half-way

    write_atomic(s3_settings.location("spool", "run", "chunk.parquet"), data, s3_settings.storage_options())

    assert len(proxy.faults()) == times
    assert sum(s.method == "PUT" for s in proxy.log) == times + 1
    assert client.get_object(Bucket=bucket, Key="archive/spool/run/chunk.parquet")["Body"].read() == data


def test_an_s3_store_that_keeps_failing_is_an_error_naming_the_object(
    proxy: FaultProxy, s3_settings: Settings, s3_bucket
) -> None:
    bucket, client = s3_bucket
    proxy.add(Rule("500", method="PUT", times=1000))
    settings = s3_settings.model_copy(update={"s3_max_attempts": 2})
    uri = settings.location("keyframes", "k.jpg")

    with pytest.raises(StorageError) as failed:
        write_atomic(uri, b"x" * 1000, settings.storage_options())

    assert f"could not write s3://{bucket}/archive/keyframes/k.jpg" in str(failed.value)
    assert "internal error" in str(failed.value)
    assert "Contents" not in client.list_objects_v2(Bucket=bucket, Prefix="archive/keyframes/")


def test_iceberg_commits_to_s3_ride_out_throttling_and_resets(
    proxy: FaultProxy, s3_settings: Settings
) -> None:
    catalog = open_catalog(s3_settings)
    commit_assets(catalog, asset_rows(5, run_id="r1"), run_id="r1")
    proxy.add(Rule("503", method="PUT", path="/warehouse/", times=3))
    proxy.add(Rule("reset", method="PUT", path="/warehouse/.*/data/", times=1))
    proxy.add(Rule("delay", method="GET", path="/warehouse/.*metadata", times=1, seconds=2.0))

    commit_assets(catalog, asset_rows(8, run_id="r2", prefix="more"), run_id="r2")

    assert len(proxy.faults()) == 5
    assert visible_rows(catalog) == 13 and missing_files(catalog) == []
    assert latest_version(catalog).run_id == "r2"


def test_a_commit_whose_s3_keeps_failing_names_the_table_and_object_and_commits_nothing(
    proxy: FaultProxy, s3_settings: Settings, s3_bucket
) -> None:
    bucket, _ = s3_bucket
    settings = s3_settings.model_copy(update={"s3_max_attempts": 2})
    catalog = open_catalog(settings)
    commit_assets(catalog, asset_rows(5, run_id="r1"), run_id="r1")
    proxy.add(Rule("500", method="PUT", path="/warehouse/", times=1000))

    with pytest.raises(StorageError) as failed:
        commit_assets(catalog, asset_rows(8, run_id="r2", prefix="more"), run_id="r2")

    message = str(failed.value)
    assert message.startswith("commit to table assets failed: could not write ")
    assert f"s3://{bucket}/archive/warehouse/archive/assets/" in message
    assert visible_rows(catalog) == 5 and latest_version(catalog).run_id == "r1"
    assert missing_files(catalog) == []

    proxy.clear()  # the store recovers: the same commit lands
    commit_assets(catalog, asset_rows(8, run_id="r2", prefix="more"), run_id="r2")
    assert visible_rows(catalog) == 13 and missing_files(catalog) == []


# -- a local disk -----------------------------------------------------------------------------


def test_a_full_disk_is_no_space_left_on_the_path_and_leaves_no_partial_file(tmp_path: Path) -> None:
    with _mounted(tmp_path / "small") as disk:
        target = f"{disk}/masters/reel.mkv"
        with pytest.raises(StorageError) as failed:
            write_atomic(target, b"\0" * 3 * 2**20)
        assert str(failed.value) == f"no space left on {disk}/masters (writing {target})"
        assert partial_files(disk) == [] and not Path(target).exists()

        write_atomic(target, b"\0" * 2**20)  # what fits is written
        assert Path(target).stat().st_size == 2**20


def test_a_commit_onto_a_full_disk_fails_clearly_and_the_next_completes(tmp_path: Path) -> None:
    with _mounted(tmp_path / "small", "4m") as disk:
        settings = Settings(home=str(disk), catalog_url=f"sqlite:///{tmp_path}/catalog.db")
        catalog = open_catalog(settings)
        commit_assets(catalog, asset_rows(5, run_id="r1"), run_id="r1")
        ballast = fill(disk, leave=4096)

        with pytest.raises(StorageError) as failed:
            commit_assets(catalog, asset_rows(400, run_id="r2", prefix="more"), run_id="r2")

        assert str(failed.value).startswith(
            f"commit to table assets failed: no space left on {disk}/warehouse/"
        )
        assert partial_files(disk) == []
        assert visible_rows(catalog) == 5 and latest_version(catalog).run_id == "r1"

        ballast.unlink()  # space is freed: the same commit completes
        commit_assets(catalog, asset_rows(400, run_id="r2", prefix="more"), run_id="r2")
        assert visible_rows(catalog) == 405 and missing_files(catalog) == []


def test_a_read_only_warehouse_is_one_clear_error_and_nothing_is_committed(tmp_path: Path) -> None:
    with _mounted(tmp_path / "small") as disk:
        settings = Settings(home=str(disk), catalog_url=f"sqlite:///{tmp_path}/catalog.db")
        catalog = open_catalog(settings)
        commit_assets(catalog, asset_rows(5, run_id="r1"), run_id="r1")
        remount(disk, "ro")
        try:
            with pytest.raises(StorageError) as failed:
                commit_assets(catalog, asset_rows(3, run_id="r2", prefix="more"), run_id="r2")
            assert f"{disk}/warehouse/archive/assets/" in str(failed.value)
            assert "is on a read-only file system" in str(failed.value)
            assert visible_rows(catalog) == 5 and latest_version(catalog).run_id == "r1"
        finally:
            remount(disk, "rw")
        commit_assets(catalog, asset_rows(3, run_id="r2", prefix="more"), run_id="r2")
        assert visible_rows(catalog) == 8


# -- PostgreSQL -------------------------------------------------------------------------------


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_postgres_dropping_every_connection_between_commits_costs_nothing(
    postgres_server: str, postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=postgres_url)
    catalog = open_catalog(settings)
    state = StateStore(postgres_url)
    commit_assets(catalog, asset_rows(5, run_id="r1"), run_id="r1")
    run = state.start_run("faults", {}, "v")

    assert terminate_connections(postgres_server, _database(postgres_url)) >= 1  # as a restart would
    commit_assets(catalog, asset_rows(4, run_id="r2", prefix="more"), run_id="r2")
    state.finish_run(run, "succeeded", summary={})

    assert visible_rows(catalog) == 9 and latest_version(catalog).run_id == "r2"
    assert state.run(run).status == "succeeded"


def test_postgres_down_for_a_while_mid_commit_is_waited_out(
    postgres_server: str, postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=postgres_url)
    catalog = open_catalog(settings)
    commit_assets(catalog, asset_rows(5, run_id="r1"), run_id="r1")
    database = _database(postgres_url)
    allow_connections(postgres_server, database, False)
    terminate_connections(postgres_server, database)
    back = threading.Timer(2.0, allow_connections, (postgres_server, database, True))
    back.start()
    try:
        started = time.monotonic()
        commit_assets(catalog, asset_rows(4, run_id="r2", prefix="more"), run_id="r2")
        assert time.monotonic() - started >= 1.5  # it waited for the database to come back
    finally:
        back.join()
    assert visible_rows(catalog) == 9


def test_postgres_that_stays_down_is_an_error_naming_the_database(
    postgres_server: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("catalog.state.DATABASE_ATTEMPTS", 2)
    settings = Settings(home=str(tmp_path / "home"), catalog_url=postgres_url)
    catalog = open_catalog(settings)
    commit_assets(catalog, asset_rows(5, run_id="r1"), run_id="r1")
    database = _database(postgres_url)
    allow_connections(postgres_server, database, False)
    terminate_connections(postgres_server, database)
    try:
        with pytest.raises(DatabaseUnavailableError) as failed:
            commit_assets(catalog, asset_rows(4, run_id="r2", prefix="more"), run_id="r2")
    finally:
        allow_connections(postgres_server, database, True)
    assert f"/{database} is unreachable after 2 attempts" in str(failed.value)
    assert str(failed.value).startswith("taking the lock of '~catalog-commit': the database postgresql")

    commit_assets(catalog, asset_rows(4, run_id="r2", prefix="more"), run_id="r2")
    assert visible_rows(catalog) == 9 and latest_version(catalog).run_id == "r2"


# -- whole runs (Ray) -------------------------------------------------------------------------

CLIPS = 2


@pytest.fixture
def reels(tmp_path: Path, clip_writer) -> Path:
    return footage_folder(tmp_path / "reels", CLIPS, clip_writer)


@pytest.mark.slow
def test_a_run_into_s3_through_throttling_resets_and_slow_answers_completes(
    ray_session, proxy: FaultProxy, s3_settings: Settings, reels: Path
) -> None:
    for rule in (
        Rule("503", method="PUT", path="/keyframes/", times=3),
        Rule("reset", method="PUT", path="/spool/", times=2),
        Rule("500", method="PUT", path="/warehouse/.*/data/", times=2),
        Rule("delay", method="GET", path="/warehouse/", times=1, seconds=2.0),
    ):
        proxy.add(rule)

    summary = run_job(segment_spec(reels), settings=s3_settings)

    assert summary["outcome"] == "ok" and summary["assets"]["ok"] == CLIPS, summary["failed"]
    assert len(proxy.faults()) == 8  # every fault was met, and retried away
    catalog = open_catalog(s3_settings)
    assert visible_rows(catalog) == CLIPS and visible_rows(catalog, "shots") == summary["shots"] > 0
    assert missing_files(catalog) == [] and missing_files(catalog, "shots") == []


@pytest.mark.slow
def test_a_run_whose_s3_refuses_its_commit_fails_naming_the_object_and_the_next_run_completes(
    ray_session, proxy: FaultProxy, s3_settings: Settings, s3_bucket, reels: Path
) -> None:
    bucket, _ = s3_bucket
    settings = s3_settings.model_copy(update={"s3_max_attempts": 2})
    proxy.add(Rule("500", method="PUT", path="/warehouse/", times=10_000))

    with pytest.raises(StorageError) as failed:
        run_job(segment_spec(reels), settings=settings)

    assert f"could not write s3://{bucket}/archive/warehouse/archive/" in str(failed.value)
    state = StateStore(settings.catalog_url_resolved)
    (run,) = state.runs(job="faults")
    assert run.status == "failed" and str(failed.value) in (run.error or "")
    proxy.clear()  # the store recovers
    catalog = open_catalog(settings)
    assert latest_version(catalog) is None and visible_rows(catalog) == 0  # nothing half-committed

    again = run_job(segment_spec(reels), settings=settings)
    assert again["assets"]["resumed"] == CLIPS and again["assets"]["ok"] == CLIPS
    assert visible_rows(catalog) == CLIPS and missing_files(catalog, "shots") == []


@pytest.mark.slow
def test_a_run_onto_a_full_disk_says_where_and_the_run_after_space_is_freed_completes(
    ray_session, tmp_path: Path, reels: Path
) -> None:
    with _mounted(tmp_path / "small", "8m") as disk:
        settings = Settings(home=str(disk), catalog_url=f"sqlite:///{tmp_path}/catalog.db")
        ballast = fill(disk, leave=0)

        with pytest.raises(StorageError) as failed:
            run_job(segment_spec(reels), settings=settings)

        # The first write of the run (a keyframe, or the spool of its rows) is refused: the run
        # fails naming the full disk in one line, and nothing of it is committed or half-written.
        assert str(failed.value).startswith(f"no space left on {disk}/") and "\n" not in str(failed.value)
        (run,) = StateStore(settings.catalog_url_resolved).runs(job="faults")
        assert run.status == "failed" and f"no space left on {disk}/" in (run.error or "")
        assert partial_files(disk) == []
        assert latest_version(open_catalog(settings)) is None

        ballast.unlink()
        again = run_job(segment_spec(reels), settings=settings)
        assert again["outcome"] == "ok" and again["assets"]["ok"] == CLIPS, again["failed"]
        catalog = open_catalog(settings)
        assert visible_rows(catalog) == CLIPS and missing_files(catalog, "shots") == []


@pytest.mark.slow
@pytest.mark.parametrize("down_for", [0.0, 2.0], ids=["restarted", "down-2s"])
def test_a_run_whose_postgres_goes_away_between_table_commits_completes(
    ray_session, postgres_server: str, postgres_url: str, tmp_path: Path, reels: Path, monkeypatch, down_for
) -> None:
    """Every connection dropped after the first table's commit (as a restart does), and with
    `down_for`, new connections refused that long: the remaining commits wait it out."""
    import jobs.commit

    settings = Settings(home=str(tmp_path / "home"), catalog_url=postgres_url)
    database = _database(postgres_url)
    commit = jobs.commit.replace_matching
    dropped: list[int] = []
    back = threading.Timer(down_for, allow_connections, (postgres_server, database, True))

    def then_go_away(*args, **kwargs):
        done = commit(*args, **kwargs)
        if not dropped:
            if down_for:
                allow_connections(postgres_server, database, False)
                back.start()
            dropped.append(terminate_connections(postgres_server, database))
        return done

    monkeypatch.setattr(jobs.commit, "replace_matching", then_go_away)
    try:
        summary = run_job(segment_spec(reels), settings=settings)
    finally:
        if back.is_alive():
            back.join()
        allow_connections(postgres_server, database, True)

    assert dropped and dropped[0] >= 1
    assert summary["outcome"] == "ok" and summary["assets"]["ok"] == CLIPS
    catalog = open_catalog(settings)
    assert visible_rows(catalog) == CLIPS and visible_rows(catalog, "shots") == summary["shots"]
    assert missing_files(catalog, "shots") == []
    assert StateStore(postgres_url).run(summary["run_id"]).status == "succeeded"
