"""`archivist train`: the project's own models, trained reproducibly from a seed.

Registered in `jobs.cli`, which gives each command its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def upscaler(
    out_path: Annotated[
        Path | None, typer.Option("--out", help="where the weights go; default: the committed file")
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    steps: Annotated[int, typer.Option(min=1)] = 1500,
) -> None:
    """Train the x2 upscaler on the bundled stills and sample frames under synthetic archive damage."""
    from actors.upscale import DEFAULT_WEIGHTS
    from jobs.train_upscaler import train_upscaler as train

    print(json.dumps(train(out_path or DEFAULT_WEIGHTS, seed=seed, steps=steps), indent=2, default=str))


def restorer(
    out_path: Annotated[
        Path | None, typer.Option("--out", help="where the weights go; default: the committed file")
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    steps: Annotated[int, typer.Option(min=1)] = 2500,
    clips: Annotated[int, typer.Option(min=1, help="damaged training clips to cut patches from")] = 300,
) -> None:
    """Train the artefact-removal network on bundled stills and sample clips through real codec damage."""
    from actors.restore.learned import DEFAULT_WEIGHTS
    from jobs.train_restorer import train_restorer as train

    trained = train(out_path or DEFAULT_WEIGHTS, seed=seed, steps=steps, clips=clips)
    print(json.dumps(trained, indent=2, default=str))


def manipulation(
    out_path: Annotated[
        Path | None, typer.Option("--out", help="where the detector goes; default: the committed file")
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train the face-manipulation detector on real faces against swaps, blends and upscaling artefacts."""
    from jobs.audit.manipulation import DEFAULT_WEIGHTS, train_manipulation_detector

    trained = train_manipulation_detector(out_path or DEFAULT_WEIGHTS, seed=seed)
    print(json.dumps(trained, indent=2, default=str))


TRAIN_COMMANDS = {"upscaler": upscaler, "restorer": restorer, "manipulation": manipulation}
