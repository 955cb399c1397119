"""What every model-backed stage needs: where to run, and how to fail at load time.

A stage loads its model in ``__init__``, so a missing weights file or package
must surface there, once, as one readable error that names the model and the
package that ships it, rather than as a stack trace from the first batch of
every worker. The same code runs on a CPU laptop and a GPU cluster, so device
choice is made here and nowhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import onnxruntime


THREAD_ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Where OpenMP, MKL and OpenBLAS read their pool size when they load; CTranslate2 reads OpenMP's."""

_thread_budget: int | None = None


def set_thread_budget(threads: int) -> None:
    """Hold this process's thread pools (torch, OpenCV, onnxruntime sessions opened from now on,
    and the OpenMP/MKL/OpenBLAS pools of libraries loaded later) to `threads`.

    Every library sizes its pool to every core of the machine by default; several actors on
    one node, each with a pool per library, then fight over the same cores and spend their
    time waiting for one another. A stage's actor is given its CPU share once, before its
    models load, and every pool in it keeps to that share."""
    global _thread_budget
    if threads < 1:
        raise ValueError(f"a thread budget is at least 1 thread, not {threads}")
    _thread_budget = threads
    for key in THREAD_ENVIRONMENT:
        os.environ[key] = str(threads)
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # settable only before torch's first parallel work
        torch.set_num_interop_threads(1)
    import cv2

    cv2.setNumThreads(threads)


def thread_budget() -> int | None:
    """The threads this process's pools keep to (`set_thread_budget`), None when not set."""
    return _thread_budget


class ModelLoadError(RuntimeError):
    """A model could not be loaded; says which one, from where, and what to install.

    Picklable with all its fields, because a stage raising it inside a Ray
    actor has it shipped back to the driver.
    """

    def __init__(
        self,
        model: str,
        source: str | None = None,
        package: str | None = None,
        reason: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.model = model
        self.source = source
        self.package = package
        self.reason = reason
        self.hint = hint
        message = f"cannot load {model} weights from {source or 'its default location'}"
        if reason:
            message += f" ({reason})"
        if hint:
            message += f": {hint}"
        elif package:
            message += f": install the package '{package}'"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ModelLoadError], tuple[str | None, ...]]:
        return (type(self), (self.model, self.source, self.package, self.reason, self.hint))


def load_checkpoint(
    path: Path, build: Callable[..., torch.nn.Module], *, model: str, trainer: str
) -> tuple[torch.nn.Module, str]:
    """A network this project trained (``{"config", "state_dict"}`` as its trainer saves it) in
    eval mode, and its version: the weights' sha256 prefix. A file that cannot be loaded is a
    ModelLoadError naming it and the command that makes it (``trainer``)."""
    try:
        blob = path.read_bytes()
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        net = build(**checkpoint["config"])
        net.load_state_dict(checkpoint["state_dict"])
    except Exception as exc:
        hint = f"run `{trainer}` to produce it"
        raise ModelLoadError(model, str(path), reason=f"{type(exc).__name__}: {exc}", hint=hint) from exc
    return net.eval(), hashlib.sha256(blob).hexdigest()[:12]


def pick_device(preferred: str | None = None) -> torch.device:
    """CUDA when there is one, else CPU; an explicit choice wins.

    ``None`` or ``"auto"`` picks. An explicit CUDA device on a machine without
    CUDA raises now, at load time, instead of failing on the first batch.
    """
    if preferred is None or preferred == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preferred)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {preferred!r} was asked for but torch sees no CUDA device here")
    return device


def package_file(module: str, *parts: str, model: str, package: str) -> Path:
    """A file shipped inside an installed package, found without importing it.

    Several model packages fail on import (``pkg_resources``) or import heavy
    code; only their data files are wanted. ``module`` is the import name,
    ``package`` the distribution name to tell the user to install.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise ModelLoadError(model, module, package=package, reason=str(exc)) from exc
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelLoadError(model, module, package=package, reason=f"no module named {module!r}")
    path = Path(locations[0]).joinpath(*parts)
    if not path.is_file():
        raise ModelLoadError(model, str(path), package=package, reason="file not found")
    return path


def model_file(
    weights: str | Path | None,
    module: str,
    *parts: str,
    model: str,
    package: str,
    default_model: str | None = None,
) -> Path:
    """The weights to load: a local override when given, else the file a package ships.

    Every loader takes an override so a cluster holding larger or retrained
    weights swaps them in by configuration; a wrong override path must fail
    at load time with the same readable error as a missing package. A model
    name other than ``default_model`` without ``weights`` is refused: the
    package only ships the default, and loading it under another name would
    mislabel every row.
    """
    if weights is None:
        if default_model is not None and model != default_model:
            raise ModelLoadError(
                model,
                None,
                reason="no package ships its weights",
                hint=f"pass the path to its weights, or use {default_model} from the package '{package}'",
            )
        return package_file(module, *parts, model=model, package=package)
    path = Path(weights)
    if not path.is_file():
        raise ModelLoadError(
            model,
            str(path),
            package=package,
            reason="file not found",
            hint=f"check the path, or leave it unset to use the file in the package '{package}'",
        )
    return path


def onnx_providers(device: str | None = None) -> list[str | tuple[str, dict[str, int]]]:
    """ONNX Runtime execution providers for a device choice, CUDA first when it is used.

    onnxruntime lists a cloud provider first by default, so the list is always
    explicit. ``None``/``"auto"`` takes CUDA when torch sees a GPU and this
    onnxruntime build has the CUDA provider; an explicit ``"cuda"`` that the
    build cannot serve raises now rather than silently running on the CPU.
    """
    import onnxruntime

    wanted = pick_device(device)
    available = onnxruntime.get_available_providers()
    if wanted.type == "cuda":
        if "CUDAExecutionProvider" in available:
            return [("CUDAExecutionProvider", {"device_id": wanted.index or 0}), "CPUExecutionProvider"]
        if device not in (None, "auto"):
            raise ValueError(
                f"device {device!r} was asked for but this onnxruntime has no CUDA provider "
                "(install onnxruntime-gpu)"
            )
    return ["CPUExecutionProvider"]


def onnx_session(
    source: str | Path | bytes,
    *,
    model: str,
    package: str,
    device: str | None = None,
    threads: int | None = None,
    hint: str | None = None,
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on the chosen device, or a ModelLoadError naming the model.

    ``source`` is a file path or serialized model bytes (for graphs patched
    in memory, e.g. made shape-dynamic). Runtime log noise about the graph is
    kept below errors: it would repeat once per worker and says nothing the
    user can act on. ``threads`` caps onnxruntime's intra-op pool (default: the
    process's `thread_budget`, else one thread per core), for an actor given a CPU
    share on a busy node; within a budget its threads sleep rather than spin while
    waiting for work, so they leave the cores to the node's other actors.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelLoadError(model, None, package="onnxruntime", reason=str(exc)) from exc
    providers = onnx_providers(device)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    threads = threads or _thread_budget
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    where = "<in-memory graph>" if isinstance(source, bytes) else str(source)
    try:
        return onnxruntime.InferenceSession(
            source if isinstance(source, bytes) else str(source), options, providers=providers
        )
    except Exception as exc:
        raise ModelLoadError(
            model, where, package=package, reason=f"{type(exc).__name__}: {exc}"[:500], hint=hint
        ) from exc


def clip_box(box: Sequence[float], width: int, height: int, scale: float = 1.0) -> list[float]:
    """``x0, y0, x1, y1`` divided by ``scale`` and kept inside a ``width`` × ``height`` keyframe.

    Detectors work on resized copies and may reach past the frame's edge;
    the catalog promises boxes in keyframe pixels that a viewer can draw.
    """
    x0, y0, x1, y1 = (float(v) / scale for v in box)
    return [
        round(min(max(x0, 0.0), width), 1),
        round(min(max(y0, 0.0), height), 1),
        round(min(max(x1, 0.0), width), 1),
        round(min(max(y1, 0.0), height), 1),
    ]
