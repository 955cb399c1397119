"""A real two-node Ray cluster on this machine (`ray start --head` and a second
`ray start --address`): runs spread across both nodes, survive losing the worker
node mid-run, and can be submitted as Ray Jobs.

A multi-node Ray listens on the host's own address, so the cluster and every
process that talks to it live in a network namespace of their own whose only
interface is loopback: nothing leaves it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import LIGHT_STAGES
from ray_cluster import ray_env, start_node, wait_for_nodes

from catalog.iceberg import open_catalog
from catalog.query import sql
from catalog.settings import Settings
from catalog.state import StateStore
from jobs.spec import load_spec

pytestmark = pytest.mark.slow


@pytest.fixture
def netns():
    """A network namespace with only loopback up; yields the prefix that runs a command in it."""
    name = f"archivist-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    yield ["ip", "netns", "exec", name]
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def cluster(netns: list[str]):
    """Head (2 CPUs, dashboard for Ray Jobs) and a worker node (2 CPUs) that a test may kill."""
    port, dashboard = 6379, 8265  # free: the namespace is new
    head = start_node(
        netns,
        "--head",
        f"--port={port}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--temp-dir=/tmp/rc-{uuid.uuid4().hex[:6]}",
    )
    address = f"127.0.0.1:{port}"
    wait_for_nodes(netns, address, 1)
    worker = start_node(netns, f"--address={address}")
    wait_for_nodes(netns, address, 2)
    yield {"address": address, "dashboard": f"http://127.0.0.1:{dashboard}", "worker": worker, "netns": netns}
    for node in (worker, head):
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)
        node.wait()


def tapes(folder: Path, clip_writer, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        clip_writer(folder / f"tape{i:02d}.mp4", seconds=3, size=(320, 180), seed=100 + i, cuts=2)
    return folder


def spread_spec(path: Path, source: Path) -> Path:
    path.write_text(f"""
name: {path.stem}
source: {{uri: {source}}}
stages:
  speech: {{enabled: false}}
  text: {{enabled: false}}
  segment: {{resources: {{min_actors: 2, max_actors: 2, spread: true, batch_size: 1}}}}
  keyframes:
    resources: {{min_actors: 1, max_actors: 2, spread: true, batch_size: 8}}
    objects: {{enabled: false}}
    ocr: {{enabled: false}}
    faces: {{enabled: false}}
    safety: {{enabled: false}}
distribution: {{spool_every_assets: 2, spool_every_seconds: 1}}
""")
    return path


def run_on(cluster: dict, spec: Path, home: Path) -> subprocess.Popen:
    env = {**ray_env(), "ARCHIVIST_HOME": str(home), "ARCHIVIST_RAY_ADDRESS": cluster["address"]}
    return subprocess.Popen(
        [*cluster["netns"], sys.executable, "-m", "jobs.cli", "run", str(spec), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(run: subprocess.Popen, timeout: float = 900) -> tuple[str, str]:
    """The run's output once it ends; a run still going after `timeout` is killed and the test
    fails with what it printed, so a hang says where it hung."""
    try:
        return run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        _, err = run.communicate()
        pytest.fail(f"the run did not end in {timeout:.0f} s; its log ends:\n{err[-4000:]}")


def actor_nodes(cluster: dict, class_fragment: str) -> set[str]:
    """The nodes on which actors of a class ran (asked from inside the namespace)."""
    probe = (
        "import json, sys; from ray.util.state import list_actors; "
        "print(json.dumps([[a.class_name, a.node_id] for a in "
        "list_actors(address=sys.argv[1], limit=1000, detail=True, raise_on_missing_output=False)]))"
    )
    done = subprocess.run(
        [*cluster["netns"], sys.executable, "-c", probe, cluster["dashboard"]],
        env=ray_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    actors = json.loads(done.stdout.strip().splitlines()[-1])
    return {node for name, node in actors if class_fragment in (name or "")}


def test_a_run_spreads_over_both_nodes(cluster: dict, home: Path, tmp_path: Path, clip_writer) -> None:
    spec = spread_spec(tmp_path / "spread.yaml", tapes(tmp_path / "tapes", clip_writer, 6))
    run = run_on(cluster, spec, home)
    out, err = finish(run)
    assert run.returncode == 0, err[-3000:]
    assert json.loads(out)["assets"]["ok"] == 6
    assert len(actor_nodes(cluster, "SegmentStep")) == 2


def test_losing_the_worker_node_mid_run_loses_nothing(
    cluster: dict, home: Path, tmp_path: Path, clip_writer
) -> None:
    clips = 16
    spec = spread_spec(tmp_path / "lossy.yaml", tapes(tmp_path / "tapes", clip_writer, clips))
    state = StateStore(Settings().catalog_url_resolved)
    version = load_spec(spec).pipeline_version()
    run = run_on(cluster, spec, home)
    deadline = time.monotonic() + 600
    while len(state.spooled(version)) < 2:
        assert run.poll() is None, run.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(cluster["worker"].pid, signal.SIGKILL)
    out, err = finish(run)
    assert run.returncode == 0, err[-3000:]
    # Ray prints what it saw of the lost node on the same stream: read the summary object itself.
    assert "{" in out, f"no summary in {out!r}"
    summary, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    assert summary["assets"]["ok"] == clips and summary["assets"]["failed"] == 0
    catalog = open_catalog(Settings())
    counts = sql(catalog, "SELECT count(*) AS n, count(DISTINCT shot_id) AS d FROM shots").to_pylist()[0]
    assert counts["n"] == counts["d"] == summary["shots"]
    assert sql(catalog, "SELECT sum(shot_count) AS n FROM assets")["n"][0].as_py() == summary["shots"]


def test_a_spec_submitted_as_a_ray_job_runs_on_the_cluster(
    cluster: dict, home: Path, tmp_path: Path, clip_writer
) -> None:
    source = tapes(tmp_path / "tapes", clip_writer, 2)
    spec = tmp_path / "submitted.yaml"
    spec.write_text(f"name: submitted\nsource: {{uri: {source}}}\nstages:\n{LIGHT_STAGES}")
    env = {**ray_env(), "ARCHIVIST_HOME": str(home)}
    done = subprocess.run(
        [
            *cluster["netns"],
            sys.executable,
            "-m",
            "jobs.cli",
            "submit",
            str(spec),
            "--address",
            cluster["dashboard"],
            "--wait",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SUCCEEDED" in done.stdout
    (run,) = StateStore(Settings().catalog_url_resolved).runs(job="submitted")
    assert run.status == "succeeded" and run.summary["assets"]["ok"] == 2
