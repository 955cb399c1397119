"""Operations benchmark: what resuming a killed run saves, and what a second Ray node costs.

Run ``.venv/bin/python tests/benchmarks/bench_ops.py [--clips N] [--json]``.

1. Resume vs full. N synthetic clips (3 s, 320x180, from ``write_clip`` in tests/conftest.py),
   the light stage set, staging every 2 assets / 1 s. A full run of ``archivist run`` in a
   subprocess with a fresh ``ARCHIVIST_HOME``; then, in another fresh home, a run killed with
   SIGKILL of its process group (driver and its local Ray) once about half the assets are
   staged, and the run that resumes it. Wall seconds are the subprocess's, Ray start included.

2. Two nodes vs one. The same clips on a Ray cluster of one node (head, 2 CPUs) and of two
   (head + worker, 2 CPUs each), each in a fresh loopback-only network namespace, with the
   segment and keyframes actors ``spread: true, min_actors: 2, max_actors: 2`` and
   ``num_cpus: 0.5`` (so the four actors also fit on the single 2-CPU node). Both nodes run
   on this machine's cores, so no speed-up is expected: the ratio shows overhead.

Everything started is killed by process group and every namespace deleted, even on failure.
Never ``ray stop``: other people's Ray may be running on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for entry in (REPO, REPO / "tests"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from conftest import LIGHT_STAGES, write_clip  # noqa: E402
from ray_cluster import start_node, wait_for_nodes  # noqa: E402

from catalog.settings import Settings  # noqa: E402
from catalog.state import StateStore  # noqa: E402
from jobs.spec import load_spec  # noqa: E402

BIN = Path(sys.executable).parent
ARCHIVIST = str(BIN / "archivist")
RUN_TIMEOUT = 900
DISTRIBUTION = "distribution: {spool_every_assets: 2, spool_every_seconds: 1}\n"


def base_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ARCHIVIST_HOME": str(home),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }
    for key in ("ARCHIVIST_CATALOG_URL", "ARCHIVIST_RAY_ADDRESS", "RAY_ADDRESS"):
        if key not in extra:
            env.pop(key, None)
    return env


def make_clips(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        write_clip(folder / f"tape{i:02d}.mp4", seconds=3, size=(320, 180), cuts=1 + i % 3, seed=i)
    return folder


def light_spec(path: Path, source: Path) -> Path:
    path.write_text(f"name: {path.stem}\nsource: {{uri: {source}}}\n{DISTRIBUTION}stages:\n{LIGHT_STAGES}")
    return path


def spread_spec(path: Path, source: Path) -> Path:
    actors = "min_actors: 2, max_actors: 2, num_cpus: 0.5, spread: true"
    path.write_text(
        f"name: {path.stem}\nsource: {{uri: {source}}}\n{DISTRIBUTION}stages:\n"
        "  speech: {enabled: false}\n"
        "  text: {enabled: false}\n"
        f"  segment: {{resources: {{{actors}, batch_size: 1}}}}\n"
        "  keyframes:\n"
        f"    resources: {{{actors}, batch_size: 8}}\n"
        "    objects: {enabled: false}\n"
        "    ocr: {enabled: false}\n"
        "    faces: {enabled: false}\n"
        "    safety: {enabled: false}\n"
    )
    return path


def kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


def parse_summary(out: str) -> dict:
    # Ray may print on the same stream: decode the summary object itself.
    start = out.find("\n{")
    start = start + 1 if start >= 0 else out.find("{")
    if start < 0:
        raise RuntimeError(f"no JSON summary in output: {out[-2000:]!r}")
    summary, _ = json.JSONDecoder().raw_decode(out[start:])
    return summary


def run_cli(spec: Path, env: dict[str, str], prefix: list[str] | None = None) -> tuple[float, dict]:
    """`archivist run SPEC --json` in its own process group: (wall seconds, summary)."""
    command = [*(prefix or []), ARCHIVIST, "run", str(spec), "--json"]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise RuntimeError(f"{' '.join(command)} timed out after {RUN_TIMEOUT} s") from None
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{err[-3000:]}")
    return wall, parse_summary(out)


# -- 1. resume vs full ------------------------------------------------------------------------


def bench_resume(work: Path, source: Path, clips: int) -> dict:
    full_home = work / "home-full"
    full_wall, full = run_cli(light_spec(work / "full.yaml", source), base_env(full_home))

    home = work / "home-resume"
    spec = light_spec(work / "resume.yaml", source)
    env = base_env(home)
    version = load_spec(spec).pipeline_version()
    state = StateStore(Settings(home=str(home)).catalog_url_resolved)
    target = max(1, clips // 2)
    started = time.perf_counter()
    driver = subprocess.Popen(
        [ARCHIVIST, "run", str(spec), "--json"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while len(state.spooled(version)) < target:
            if driver.poll() is not None:
                raise RuntimeError(
                    f"the run ended before it could be killed:\n{driver.stderr.read()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {target} assets staged in {RUN_TIMEOUT} s")
            time.sleep(0.05)
        killed_after = time.perf_counter() - started
    finally:
        kill_group(driver)
    staged_at_kill = len(state.spooled(version))

    resumed_wall, resumed = run_cli(spec, env)
    assets = resumed["assets"]
    if assets["ok"] != clips or assets["failed"]:
        raise RuntimeError(f"resumed run did not finish all {clips} assets: {assets}")
    return {
        "clips": clips,
        "full_wall_s": round(full_wall, 2),
        "full_total_s": full["seconds"].get("total"),
        "full_shots": full["shots"],
        "killed_after_s": round(killed_after, 2),
        "staged_at_kill": staged_at_kill,
        "resumed_wall_s": round(resumed_wall, 2),
        "resumed_total_s": resumed["seconds"].get("total"),
        "resumed_share_of_full": round(resumed_wall / full_wall, 3),
        "assets_resumed": assets.get("resumed"),
        "assets_processed": assets["ok"] - (assets.get("resumed") or 0),
        "resumed_shots": resumed["shots"],
    }


# -- 2. two nodes vs one -----------------------------------------------------------------------


def run_on_cluster(work: Path, source: Path, nodes: int) -> dict:
    name = f"archivist-bench-{uuid.uuid4().hex[:8]}"
    netns = ["ip", "netns", "exec", name]
    temp_dir = Path(f"/tmp/rb-{uuid.uuid4().hex[:6]}")
    started: list[subprocess.Popen] = []
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        subprocess.run([*netns, "ip", "link", "set", "lo", "up"], check=True, capture_output=True, timeout=30)
        address = "127.0.0.1:6379"  # free: the namespace is new
        started.append(
            start_node(
                netns,
                "--head",
                "--port=6379",
                "--include-dashboard=false",
                f"--temp-dir={temp_dir}",
            )
        )
        wait_for_nodes(netns, address, 1, started)
        if nodes == 2:
            started.append(start_node(netns, f"--address={address}"))
            wait_for_nodes(netns, address, 2, started)
        spec = spread_spec(work / f"nodes{nodes}.yaml", source)
        env = base_env(
            work / f"home-nodes{nodes}", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="1", ARCHIVIST_RAY_ADDRESS=address
        )
        wall, summary = run_cli(spec, env, prefix=netns)
    finally:
        for node in reversed(started):
            kill_group(node)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)
    return {
        "nodes": nodes,
        "wall_s": round(wall, 2),
        "total_s": summary["seconds"].get("total"),
        "shots": summary["shots"],
        "assets_ok": summary["assets"]["ok"],
        "shots_per_s": round(summary["shots"] / wall, 2),
    }


def bench_nodes(work: Path, source: Path) -> dict:
    one = run_on_cluster(work, source, 1)
    two = run_on_cluster(work, source, 2)
    return {"one_node": one, "two_nodes": two, "two_over_one_wall": round(two["wall_s"] / one["wall_s"], 3)}


# -- report ------------------------------------------------------------------------------------


def print_table(result: dict) -> None:
    r = result["resume"]
    print(
        f"archivist ops benchmark: {r['clips']} clips (3 s, 320x180), light stages, cores: {os.cpu_count()}"
    )
    print()
    print("1. Resume vs full (archivist run, local Ray, fresh ARCHIVIST_HOME)")
    rows = [
        ("full run", f"{r['full_wall_s']:.2f}", f"{r['full_total_s']}", f"{r['full_shots']}", "-"),
        (
            f"killed (SIGKILL at {r['staged_at_kill']} staged)",
            f"{r['killed_after_s']:.2f}",
            "-",
            "-",
            "-",
        ),
        (
            "resumed run",
            f"{r['resumed_wall_s']:.2f}",
            f"{r['resumed_total_s']}",
            f"{r['resumed_shots']}",
            f"{r['resumed_share_of_full']:.0%}",
        ),
    ]
    head = ("run", "wall s", "summary total s", "shots", "of full")
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)))
    print(
        f"  assets resumed from staging: {r['assets_resumed']}, "
        f"processed by the resumed run: {r['assets_processed']}"
    )
    print()
    n = result["nodes"]
    print("2. Two nodes vs one (Ray cluster in a loopback-only netns; segment+keyframes 2 actors, spread)")
    head = ("cluster", "wall s", "summary total s", "shots", "shots/s")
    rows = [
        (
            f"{x['nodes']} node{'s' if x['nodes'] > 1 else ''} ({2 * x['nodes']} CPUs declared)",
            f"{x['wall_s']:.2f}",
            f"{x['total_s']}",
            f"{x['shots']}",
            f"{x['shots_per_s']:.2f}",
        )
        for x in (n["one_node"], n["two_nodes"])
    ]
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)))
    print(f"  two-node / one-node wall time: {n['two_over_one_wall']:.2f}x")
    print(
        f"  note: both nodes share this machine's {os.cpu_count()} cores, so no speed-up is expected here;"
        " the ratio shows the overhead of a second node."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    try:
        source = make_clips(work / "tapes", args.clips)
        result = {"resume": bench_resume(work, source, args.clips), "nodes": bench_nodes(work, source)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
