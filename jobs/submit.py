"""Submitting a run to a Ray cluster as a Ray Job.

The project folder travels as the job's working directory, the spec travels
inside the entrypoint (so it need not exist on the cluster), and the
ARCHIVIST_* settings of the submitting shell travel as environment variables:
the run on the cluster sees the same catalog and warehouse the user meant.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = [
    ".venv",
    ".git",
    "archive-data",
    "**/__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    "tests/benchmarks/out",
]
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def entrypoint(spec_yaml: str) -> str:
    """The driver runs from a private copy of the working directory: Ray re-extracts the
    shared copy whenever it starts workers on the head node (Ray 2.60 runtime_env
    working_dir, overwrite on create), which would pull the driver's cwd from under it."""
    return (
        'copy="$(mktemp -d)" && cp -a . "$copy" && cd "$copy" && '
        f"printf %s {shlex.quote(spec_yaml)} | python -m jobs.cli run - --json"
    )


def runtime_env() -> dict[str, Any]:
    env_vars = {
        k: v for k, v in os.environ.items() if k.startswith("ARCHIVIST_") and k != "ARCHIVIST_RAY_ADDRESS"
    }
    env_vars.update({"RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"})
    return {"working_dir": str(PROJECT), "excludes": NOT_SHIPPED, "env_vars": env_vars}


def submit(spec_yaml: str, address: str, *, wait: bool = False, poll_seconds: float = 2.0) -> dict[str, Any]:
    """Submit; with `wait`, block until the job ends and return its status and logs."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    job_id = client.submit_job(entrypoint=entrypoint(spec_yaml), runtime_env=runtime_env())
    result: dict[str, Any] = {
        "job_id": job_id,
        "address": address,
        "status": str(client.get_job_status(job_id)),
    }
    if wait:
        while (status := str(client.get_job_status(job_id)).split(".")[-1]) not in TERMINAL:
            time.sleep(poll_seconds)
        result.update(status=status, logs=client.get_job_logs(job_id))
    return result
