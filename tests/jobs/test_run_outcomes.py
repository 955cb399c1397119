"""`archivist run` says how a run over real archive media came out: a folder holding a whole
clip, a cut-short copy and an empty file completes, counts the damaged copy apart from the failed
file and the ok clip, says so in its last line and exits with status 3; with `--json` its standard
output is exactly one JSON document (Ray, logging and progress all go to standard error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest
import yaml

from jobs.spec import only_stages

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _faststart(source: Path, target: Path) -> None:
    """The clip remuxed with its index first, as streaming copies are: a cut-short copy still
    decodes up to where it was cut."""
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory, clip_writer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("outcomes")
    folder = root / "footage"
    folder.mkdir()
    clip_writer(folder / "whole.mp4", seconds=2.0, seed=1)
    long = clip_writer(root / "long.mp4", seconds=4.0, seed=2)
    _faststart(long, root / "long-faststart.mp4")
    data = (root / "long-faststart.mp4").read_bytes()
    (folder / "cut-short.mp4").write_bytes(data[: int(len(data) * 0.55)])
    (folder / "empty.mp4").write_bytes(b"")
    spec = root / "segment-only.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "outcomes",
                "source": {"uri": str(folder)},
                "stages": only_stages(segment={"resources": {"min_actors": 1, "max_actors": 1}}),
            }
        )
    )
    return {"spec": spec, "home": root / "home", "folder": folder}


def _archivist(footage: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COLUMNS": "240",  # wide enough that rich tables keep each cell on one line
        "ARCHIVIST_HOME": str(footage["home"]),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
    }
    env.pop("ARCHIVIST_CATALOG_URL", None)
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )


def test_json_run_over_damaged_media_is_one_document_and_exit_status_3(footage: dict[str, Path]) -> None:
    done = _archivist(footage, "run", str(footage["spec"]), "--json")
    assert done.returncode == 3, (done.returncode, done.stderr[-3000:])
    summary = json.loads(done.stdout)  # nothing but the document: Ray and logging went to stderr
    assert "run started" in done.stderr  # the log is there, on stderr
    assert summary["outcome"] == "problems"
    assert summary["assets"]["ok"] == 1 and summary["assets"]["damaged"] == 1, summary
    assert summary["assets"]["failed"] == 1, summary
    assert [Path(d["uri"]).name for d in summary["damaged"]] == ["cut-short.mp4"]
    assert "decoded" in summary["damaged"][0]["error"]
    assert [Path(f["uri"]).name for f in summary["failed"]] == ["empty.mp4"]

    history = _archivist(footage, "jobs", "history", "--json")
    assert history.returncode == 0, history.stderr[-2000:]
    (last, *_) = json.loads(history.stdout)
    assert last["run_id"] == summary["run_id"] and last["outcome"] == "problems"
    assert (last["assets_ok"], last["assets_damaged"], last["assets_failed"]) == (1, 1, 1)
    table = _archivist(footage, "jobs", "history")
    (row,) = [line for line in table.stdout.splitlines() if summary["run_id"] in line]
    assert "completed with problems" in row and "damaged" in table.stdout
    assert [c.strip() for c in row.split("│")][6:9] == ["1", "1", "1"]  # ok, damaged, failed


def test_a_second_run_with_nothing_to_do_is_ok_and_says_so_last(footage: dict[str, Path]) -> None:
    """Everything was done before (the damaged and failed files are settled): nothing failed in
    this run, so it exits 0, and its last line says it completed."""
    done = _archivist(footage, "run", str(footage["spec"]))
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    last = done.stdout.strip().splitlines()[-1]
    assert "completed" in last and "problems" not in last, done.stdout


def test_a_retried_failure_is_said_in_the_last_line_and_exits_3(footage: dict[str, Path]) -> None:
    done = _archivist(footage, "run", str(footage["spec"]), "--retry-failed")
    assert done.returncode == 3, (done.stdout[-2000:], done.stderr[-2000:])
    last = " ".join(done.stdout.split()).rsplit(" run ", 1)[-1]
    assert "completed with problems" in last and "1 assets failed, 0 damaged" in last, done.stdout
