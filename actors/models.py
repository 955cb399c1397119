"""What every model-backed stage needs: where to run, and how to fail at load time.

A stage loads its model in ``__init__``, so a missing weights file or package
must surface there, once, as one readable error that names the model and the
package that ships it, rather than as a stack trace from the first batch of
every worker. The same code runs on a CPU laptop and a GPU cluster, so device
choice is made here and nowhere else.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch


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
