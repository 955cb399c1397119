"""Ray nodes for the cluster tests and benchmark: started with `ray start` inside a
network namespace whose only interface is loopback (a multi-node Ray listens on the
host's own address otherwise), each in its own process group so that killing one
node kills only it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def ray_env() -> dict[str, str]:
    # Multi-node needs this on; the namespace keeps what it opens on loopback. The nodes run
    # with this environment's Python first on PATH, as they would in the project's image.
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
    }


def start_node(netns: list[str], *args: str) -> subprocess.Popen:
    """A node with 2 CPUs, in its own process group."""
    command = [
        *netns,
        RAY,
        "start",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--object-store-memory=300000000",
        "--disable-usage-stats",
        "--block",
        *args,
    ]
    return subprocess.Popen(
        command, env=ray_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_for_nodes(
    netns: list[str], address: str, count: int, nodes: Sequence[subprocess.Popen] = ()
) -> None:
    """Until the cluster has `count` live nodes; fails early if one of `nodes` exits."""
    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for node in nodes:
            if node.poll() is not None:
                raise RuntimeError(f"a Ray node exited ({node.returncode}) while starting")
        try:
            done = subprocess.run(
                [*netns, sys.executable, "-c", probe, address],
                env=ray_env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            continue
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines and lines[-1] == str(count):
            return
        time.sleep(1)
    raise RuntimeError(f"the cluster at {address} never had {count} live nodes")
