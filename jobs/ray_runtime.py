"""Connecting to Ray: the configured cluster, or a small local one."""

from __future__ import annotations

import os

from catalog.settings import Settings

# Kept on loopback and quiet on a shared machine (see DESIGN.md).
RAY_ENVIRONMENT = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}
LOCAL_OBJECT_STORE_BYTES = 512 << 20
LOCAL_LOGICAL_CPUS = 8
"""Every stage keeps at least one actor, holding a CPU slot, for the whole plan. On a
laptop with fewer cores than stages, a stage could wait for a slot that only stages
waiting for its output hold, and the run would stall; so a local Ray counts at least
this many logical CPUs and leaves the sharing of real cores to the operating system."""


def ensure_ray(settings: Settings) -> None:
    """Start or join Ray once per process; later calls are free."""
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
        ray.init(
            num_cpus=max(os.cpu_count() or 1, LOCAL_LOGICAL_CPUS),
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            log_to_driver=False,
            configure_logging=False,
        )
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = True
    context.enable_operator_progress_bars = True
    context.enable_rich_progress_bars = True
    context.print_on_execution_start = False
