"""Connecting to Ray: the configured cluster, or a small local one."""

from __future__ import annotations

import logging
import os

from catalog.settings import Settings

# Kept on loopback and quiet on a shared machine (see DESIGN.md).
RAY_ENVIRONMENT = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}
LOCAL_OBJECT_STORE_BYTES = 512 << 20

_local_cpus: float | None = None


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity: `taskset` narrows it), not the
    machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity
        return os.cpu_count() or 1


def local_cpus() -> float | None:
    """The CPUs of the local Ray this process started, which a plan fits its steps into
    (`jobs.plan.fit_to_cpus`); None when Ray is a cluster joined, whose autoscaler adds nodes."""
    return _local_cpus


def cluster_cpus() -> float:
    """The CPUs of the nodes alive now (after a node is lost, fewer than the run started with)."""
    import ray

    return float(sum(n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]))


def ensure_ray(settings: Settings) -> None:
    """Start or join Ray once per process; later calls are free. A local Ray counts the cores
    this process may use, no more: a plan with more actors than cores shrinks their CPU
    requests to fit (see `jobs.plan.fit_to_cpus`) rather than Ray pretending to more cores."""
    global _local_cpus
    for key, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        return
    # Inside a Ray Job the cluster tells its driver where it is through RAY_ADDRESS.
    address = settings.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        cores = machine_cores()
        ray.init(
            num_cpus=cores,
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            log_to_driver=False,
            configure_logging=False,
        )
        _local_cpus = float(cores)
    quiet_ray_data(verbose=os.environ.get(RAY_PROGRESS_VARIABLE, "") not in ("", "0"))


RAY_PROGRESS_VARIABLE = "ARCHIVIST_RAY_PROGRESS"
"""Set to 1 to see Ray Data's own progress bars and per-operator log lines (for debugging a
plan); by default a run shows archivist's progress (`jobs.progress`) alone."""


def quiet_ray_data(*, verbose: bool = False) -> None:
    """Ray Data's progress bars, execution plans and per-dataset log lines off (unless
    `verbose`): on a terminal they redraw a bar per operator, elsewhere they log a block
    of lines per operator every few seconds, hundreds in a demo. Its log file keeps them."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = verbose
    context.enable_operator_progress_bars = verbose
    context.enable_rich_progress_bars = verbose
    context.print_on_execution_start = verbose
    context.enable_auto_log_stats = False
    level = logging.INFO if verbose else logging.WARNING
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(level)
            if not verbose and not any(isinstance(f, _BarsOffNotice) for f in handler.filters):
                handler.addFilter(_BarsOffNotice())


class _BarsOffNotice(logging.Filter):
    """Drops Ray Data's warning that its bars are off, which they are on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Progress bars disabled")
