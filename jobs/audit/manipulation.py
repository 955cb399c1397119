"""Manipulation signals on face crops, and the small detector the project trains on them.

No pretrained deepfake detector can be had offline, so the signals are ones
that need none, after the literature's observations:

- the azimuthally averaged power spectrum (Durall et al. 2020): generated
  or re-synthesised pixels do not reproduce the 1/f fall-off of a camera
  image, and up-convolutions leave peaks at fractions of the sampling rate;
- the blending boundary (Li et al., Face X-ray 2020): a pasted face is
  joined along a closed curve where noise level, sharpness and gradients
  change, even when the colours were matched;
- colour mismatch: the inner face and its surround come from different
  pictures and rarely agree in chroma.

``face_features`` turns a face crop into these numbers; a one-hidden-layer
network over them (standardised) is the detector. Small, because the data
are a few thousand crops made from a hundred people: a bigger model would
learn the people. Not linear, because a cue means different things in
different company (a noise step between face and surround is a swap's mark
in a noisy frame and nothing in a clean one); a logistic regression over
the same features reached a held-out AUC of 0.73 where this reaches about
0.85. Its weights are a few kilobytes of JSON.

The training data are made by ``jobs.audit.synth``: real faces (degraded as
archives are, sometimes honestly denoised or upscaled) against swaps, blends
and generative upscales between different people. The people are split:
faces 70-99 and the astronaut are never seen in training, and the held-out
ROC AUC is measured on them only. It says how well these cues separate
*these* manipulations; it does not say how a modern deepfake would fare.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from actors.restore.damage import jpeg_roundtrip
from jobs.audit import synth

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "actors" / "data" / "manipulation_detector.json"
MODEL_NAME = "archivist-manipulation-mlp"
CROP = 96
"""Face crops are resized to this side before the features are taken."""
BINS = 16
"""Radial bins of the azimuthally averaged spectrum."""
TRAIN_FACES = range(0, 70)
VALIDATION_FACES = range(55, 70)
"""Training people set aside to choose the network's size and the operating point; then refitted on."""
HELD_OUT_FACES = range(70, 100)
GRID = tuple((hidden, alpha) for hidden in (16, 32) for alpha in (0.3, 1.0, 3.0))
"""Hidden units and L2 penalty tried; the best validation AUC wins."""
KINDS = ("swap", "blend", "generative")
FALSE_POSITIVE_RATE = 0.05
"""The operating point: the score threshold that flags 5 % of real validation faces."""


# -- features -------------------------------------------------------------------------------------


def _ellipse(side: int, scale: float) -> np.ndarray:
    """The inner-face ellipse of a crop (where swaps paste), grown or shrunk by ``scale``."""
    mask = np.zeros((side, side), np.uint8)
    centre = (side // 2, round(side * 0.56))
    axes = (round(side * 0.34 * scale), round(side * 0.40 * scale))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    return mask.astype(bool)


@cache
def _regions(side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inside the inner face, the band around its edge, and the surround (inside the crop)."""
    inner, outer = _ellipse(side, 0.8), _ellipse(side, 1.2)
    band = outer & ~inner
    return inner, band, ~outer


@cache
def _radius(side: int) -> np.ndarray:
    y, x = np.indices((side, side)) - side // 2
    return np.hypot(x, y) / (side // 2)


def radial_spectrum(luma: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Azimuthal mean of the log power spectrum (Hann-windowed), in ``bins`` rings up to Nyquist.

    The profile's mean is removed: brightness and contrast move it as a whole,
    manipulation changes its shape.
    """
    side = luma.shape[0]
    window = np.outer(np.hanning(side), np.hanning(side))
    power = np.abs(np.fft.fftshift(np.fft.fft2((luma - luma.mean()) * window))) ** 2
    logp = np.log(power + 1e-6)
    radius = _radius(side)
    edges = np.linspace(1.0 / (side // 2), 1.0, bins + 1)
    profile = np.array([logp[(radius >= lo) & (radius < hi)].mean() for lo, hi in pairwise(edges)])
    return profile - profile.mean()


def _noise_map(luma: np.ndarray) -> np.ndarray:
    """Local noise level: spread of the high-pass residual in 7x7 windows."""
    residual = luma - cv2.medianBlur(luma.astype(np.uint8), 3).astype(np.float32)
    return np.sqrt(cv2.blur(residual**2, (7, 7)) + 1e-3)


def _log_ratio(a: float, b: float) -> float:
    return float(np.log((a + 1e-3) / (b + 1e-3)))


def _peak_ratio(luma: np.ndarray) -> float:
    """Power on the half-sampling-rate lines (where x2 up-convolutions put their residue) against the rest."""
    side = min(luma.shape[:2]) // 2 * 2
    if side < 16:
        return 0.0
    patch = luma[:side, :side] - luma[:side, :side].mean()
    power = np.abs(np.fft.fft2(patch * np.outer(np.hanning(side), np.hanning(side)))) ** 2
    half = side // 2
    lines = np.concatenate([power[half, :], power[:, half]])
    return float(
        np.log(
            (lines.mean() + 1e-6)
            / (power[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4].mean() + 1e-6)
        )
    )


FEATURES = (
    *(f"spectrum_{i}" for i in range(BINS)),
    "high_frequency_ratio",
    "half_rate_peaks",
    "noise_inner_vs_surround",
    "noise_step_on_band",
    "sharpness_inner_vs_surround",
    "gradient_band_vs_rest",
    "lightness_inner_minus_surround",
    "chroma_a_difference",
    "chroma_b_difference",
    "chroma_spread_inner_vs_surround",
)


def face_features(crop: np.ndarray) -> np.ndarray:
    """The manipulation cues of one face crop (RGB uint8, any size), in the order of ``FEATURES``."""
    rgb = synth.to_rgb(crop)
    native = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    interpolation = cv2.INTER_AREA if min(rgb.shape[:2]) > CROP else cv2.INTER_CUBIC
    image = cv2.resize(rgb, (CROP, CROP), interpolation=interpolation)
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    inner, band, surround = _regions(CROP)
    profile = radial_spectrum(luma)
    high = float(profile[-BINS // 4 :].mean() - profile[BINS // 4 : BINS // 2].mean())
    noise = _noise_map(luma)
    noise_step = np.hypot(cv2.Sobel(noise, cv2.CV_32F, 1, 0), cv2.Sobel(noise, cv2.CV_32F, 0, 1))
    laplace = np.abs(cv2.Laplacian(luma, cv2.CV_32F))
    gradient = np.hypot(cv2.Sobel(luma, cv2.CV_32F, 1, 0), cv2.Sobel(luma, cv2.CV_32F, 0, 1))
    chroma = np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)
    return np.array(
        [
            *profile,
            high,
            _peak_ratio(native),
            _log_ratio(float(np.median(noise[inner])), float(np.median(noise[surround]))),
            _log_ratio(float(noise_step[band].mean()), float(noise_step[inner | surround].mean())),
            _log_ratio(float(laplace[inner].mean()), float(laplace[surround].mean())),
            _log_ratio(float(gradient[band].mean()), float(gradient[inner | surround].mean())),
            float(lab[..., 0][inner].mean() - lab[..., 0][surround].mean()) / 25.0,
            abs(float(lab[..., 1][inner].mean() - lab[..., 1][surround].mean())) / 10.0,
            abs(float(lab[..., 2][inner].mean() - lab[..., 2][surround].mean())) / 10.0,
            _log_ratio(float(chroma[inner].std()), float(chroma[surround].std())),
        ],
        np.float32,
    )


# -- the detector ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManipulationDetector:
    """Scores face crops: the network's probability that a crop was manipulated."""

    mean: np.ndarray
    scale: np.ndarray
    hidden_weights: np.ndarray
    hidden_bias: np.ndarray
    output_weights: np.ndarray
    output_bias: float
    threshold: float
    version: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> ManipulationDetector:
        """The committed detector (or another JSON written by ``train_manipulation_detector``)."""
        path = Path(path) if path is not None else DEFAULT_WEIGHTS
        try:
            blob = path.read_bytes()
            model = json.loads(blob)["model"]
            if tuple(model["features"]) != FEATURES:
                raise ValueError("its features are not the ones this code computes: retrain it")
            arrays = {
                key: np.asarray(model[key], np.float32)
                for key in ("mean", "scale", "hidden_weights", "hidden_bias", "output_weights")
            }
            return cls(
                **arrays,
                output_bias=float(model["output_bias"]),
                threshold=float(model["threshold"]),
                version=hashlib.sha256(blob).hexdigest()[:12],
            )
        except (OSError, ValueError, KeyError) as exc:
            from actors.models import ModelLoadError

            raise ModelLoadError(
                MODEL_NAME,
                str(path),
                reason=f"{type(exc).__name__}: {exc}",
                hint="run python -m jobs.audit.manipulation to train it",
            ) from exc

    @property
    def model(self) -> str:
        return f"{MODEL_NAME}/{self.version}"

    def score_features(self, features: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(features) - self.mean) / self.scale
        hidden = np.maximum(z @ self.hidden_weights + self.hidden_bias, 0.0)
        return 1.0 / (1.0 + np.exp(-(hidden @ self.output_weights + self.output_bias)))

    def score(self, crop: np.ndarray) -> float:
        return float(self.score_features(face_features(crop))[0])


def face_crop(image: np.ndarray, box: Any, margin: float = 0.0) -> np.ndarray:
    """The face box (grown by ``margin`` of its size each side), clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    left, top = max(0, round(x0 - margin * w)), max(0, round(y0 - margin * h))
    right, bottom = min(image.shape[1], round(x1 + margin * w)), min(image.shape[0], round(y1 + margin * h))
    return image[top:bottom, left:right]


# -- training data --------------------------------------------------------------------------------


def _honest(
    image: np.ndarray, box: synth.Box, rng: np.random.Generator, upscale: Any
) -> tuple[np.ndarray, synth.Box]:
    """What remastering may do to the whole frame before we look at it: nothing, denoise, x2 upscale."""
    choice = rng.integers(0, 4)
    if choice == 1:
        return synth.denoise(image), box
    if choice == 2:
        x0, y0, x1, y1 = box
        return upscale(image), (2 * x0, 2 * y0, 2 * x1, 2 * y1)
    if choice == 3:
        return jpeg_roundtrip(image, int(rng.integers(70, 95))), box
    return image, box


def _host(face: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, synth.Box]:
    """A face as a shot would show it: some size, some colour cast, archive damage."""
    side = int(rng.integers(48, 129))
    coloured = face if face.ndim == 3 else synth.tint(face, synth.skin_gains(rng))
    image, box = synth.face_canvas(
        coloured, side=side, canvas=(side + 32, side + 32), background=int(rng.integers(40, 200))
    )
    return synth.degrade(image, rng), box


def make_samples(
    people: list[np.ndarray], per_person: int, rng: np.random.Generator, upscale: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels (1 = manipulated) and kinds ('real', 'swap', 'blend', 'generative').

    Each person appears as ``per_person`` real crops and as many manipulated
    ones (as host; donors are the other people of the same list), so both
    classes hold the same faces and the detector cannot learn who is real.
    """
    features, labels, kinds = [], [], []
    for index, face in enumerate(people):
        for _ in range(per_person):
            image, box = _host(face, rng)
            image, box = _honest(image, box, rng, upscale)
            features.append(face_features(face_crop(image, box)))
            labels.append(0)
            kinds.append("real")

            image, box = _host(face, rng)
            kind = KINDS[int(rng.integers(0, len(KINDS)))]
            donor_index = (index + 1 + int(rng.integers(0, len(people) - 1))) % len(people)
            donor, donor_box = _host(people[donor_index], rng)
            donor_face = donor[donor_box[1] : donor_box[3], donor_box[0] : donor_box[2]]
            if kind == "swap":
                image = synth.swap_face(image, box, donor_face, rng)
            elif kind == "blend":
                image = synth.blend_faces(image, box, donor_face, rng)
            else:
                image = synth.generative_upscale(image, box, rng)
            image = jpeg_roundtrip(image, int(rng.integers(70, 96)))
            image, box = _honest(image, box, rng, upscale)
            features.append(face_features(face_crop(image, box)))
            labels.append(1)
            kinds.append(kind)
    return np.asarray(features), np.asarray(labels), np.asarray(kinds)


def _auc_by_kind(labels: np.ndarray, scores: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    result = {"all": round(float(roc_auc_score(labels, scores)), 4)}
    for kind in KINDS:
        keep = (kinds == "real") | (kinds == kind)
        result[kind] = round(float(roc_auc_score(labels[keep], scores[keep])), 4)
    return result


def _span(people: range) -> str:
    return f"{people.start}-{people.stop - 1}"


def _network(hidden: int, alpha: float, seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier((hidden,), alpha=alpha, max_iter=3000, random_state=seed)


def train_manipulation_detector(
    out_path: str | Path = DEFAULT_WEIGHTS,
    *,
    seed: int = 0,
    per_person: int = 10,
) -> dict[str, Any]:
    """The whole recipe: make the data, choose and fit, measure on held-out people, write the JSON.

    Deterministic for a seed (one generator draws every sample, the network's
    initialisation is seeded, torch runs the upscaler on one thread), so the
    committed file can be reproduced.
    """
    import torch
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    from actors.upscale import Upscaler

    torch.set_num_threads(1)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    upscaler = Upscaler(2, device="cpu")
    faces = synth.lfw_faces()
    fitting = [i for i in TRAIN_FACES if i not in VALIDATION_FACES]
    fx, fy, _ = make_samples([faces[i] for i in fitting], per_person, rng, upscaler)
    vx, vy, _ = make_samples([faces[i] for i in VALIDATION_FACES], per_person, rng, upscaler)
    held_people = [faces[i] for i in HELD_OUT_FACES] + [synth.astronaut_face()]
    hx, hy, hkinds = make_samples(held_people, per_person, rng, upscaler)

    scaler = StandardScaler().fit(fx)
    validation = {}
    for hidden, alpha in GRID:
        scores = (
            _network(hidden, alpha, seed)
            .fit(scaler.transform(fx), fy)
            .predict_proba(scaler.transform(vx))[:, 1]
        )
        validation[(hidden, alpha)] = (float(roc_auc_score(vy, scores)), scores)
    (hidden, alpha), (validation_auc, val_scores) = max(validation.items(), key=lambda item: item[1][0])
    threshold = float(np.quantile(val_scores[vy == 0], 1.0 - FALSE_POSITIVE_RATE))
    # Refit on every training person now that the size and the operating point are fixed.
    x, y = np.concatenate([fx, vx]), np.concatenate([fy, vy])
    scaler = StandardScaler().fit(x)
    network = _network(hidden, alpha, seed).fit(scaler.transform(x), y)
    held_scores = network.predict_proba(scaler.transform(hx))[:, 1]
    flagged = held_scores > threshold
    result = {
        "model": {
            "name": MODEL_NAME,
            "features": list(FEATURES),
            "mean": scaler.mean_.round(6).tolist(),
            "scale": scaler.scale_.round(6).tolist(),
            "hidden_weights": network.coefs_[0].round(6).tolist(),
            "hidden_bias": network.intercepts_[0].round(6).tolist(),
            "output_weights": network.coefs_[1][:, 0].round(6).tolist(),
            "output_bias": round(float(network.intercepts_[1][0]), 6),
            "threshold": round(threshold, 6),
        },
        "recipe": {
            "seed": seed,
            "per_person": per_person,
            "train_faces": f"lfw_subset faces {_span(TRAIN_FACES)} ({_span(VALIDATION_FACES)} first set "
            "aside for validation)",
            "held_out": f"lfw_subset faces {_span(HELD_OUT_FACES)} and the astronaut",
            "real": "face on a canvas, colour cast, blur/noise/JPEG; then nothing, denoise, x2 network "
            "upscale or JPEG re-encode of the whole frame",
            "manipulated": "swap (feathered inner-face ellipse, partial Lab colour match), blend (morph, "
            "alpha 0.35-0.65), generative upscale (face from a 1/4 copy + up-convolution "
            "residue); then JPEG and the same honest processing as the real ones",
            "classifier": f"standardised features, MLP ({hidden} ReLU units, L2 alpha {alpha}) chosen from "
            f"{[list(g) for g in GRID]} by validation AUC",
            "operating_point": f"score threshold that flags {FALSE_POSITIVE_RATE:.0%} of the validation "
            "people's real faces",
            "samples": {"train": len(y), "held_out": len(hy)},
            "seconds": round(time.perf_counter() - started, 1),
        },
        "validation_auc": round(validation_auc, 4),
        "held_out": {
            "roc_auc": _auc_by_kind(hy, held_scores, hkinds),
            "at_threshold": {
                "false_positive_rate": round(float(flagged[hy == 0].mean()), 4),
                "true_positive_rate": {
                    kind: round(float(flagged[hkinds == kind].mean()), 4) for kind in KINDS
                },
            },
        },
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="Train the face manipulation detector (archivist train manipulation)."
    )
    parser.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-person", type=int, default=10)
    args = parser.parse_args()
    print(
        json.dumps(
            train_manipulation_detector(args.out, seed=args.seed, per_person=args.per_person)["held_out"],
            indent=2,
        )
    )
