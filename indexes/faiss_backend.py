"""The one FAISS in this environment.

faiss-cpu and faiss-gpu install the same `faiss` module over each other; with
both present, which one answers depends on install order. Refuse that state
instead of guessing, and say how to get out of it.
"""

from __future__ import annotations

from importlib import metadata
from types import ModuleType

CPU, GPU = "faiss-cpu", "faiss-gpu"


class FaissInstallError(ImportError):
    pass


def installed_faiss() -> list[str]:
    found = []
    for name in (CPU, GPU):
        try:
            metadata.version(name)
            found.append(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def load_faiss() -> ModuleType:
    found = installed_faiss()
    if len(found) > 1:
        raise FaissInstallError(
            "both faiss-cpu and faiss-gpu are installed and overwrite each other; keep one: "
            "pip uninstall -y faiss-cpu faiss-gpu && pip install 'archivist[cpu]' (or [gpu])"
        )
    if not found:
        raise FaissInstallError("FAISS is not installed: pip install 'archivist[cpu]' (or 'archivist[gpu]')")
    import faiss

    return faiss


def gpu_count(faiss: ModuleType) -> int:
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
