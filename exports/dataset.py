"""Training sets of the archive: WebDataset shards and a Parquet of shots, for a team that
trains on its own footage.

**WebDataset** (`webdataset/` under the target), in video2dataset's layout: `{shard:05d}.tar`
holding, per sample, `{key}.jpg` (the shot's keyframe), `{key}.txt` (its caption, where it
has one), `{key}.json` (what the catalog knows of the shot) and its vectors as `.npy`: the
visual (image) space as `{key}.npy`, every other space as `{key}.{space}.npy` (the last
extension is what decoders go by, so each decodes as NumPy); beside each tar, `{shard:05d}.parquet`
(a row per sample: `key`, `status`, `error_message`, `url`, `caption` and the shot's ids and
times) and `{shard:05d}_stats.json` (counts and statuses). Keys are video2dataset's: the
shard number (5 digits) then the sample's place in it (as many digits as the shard size
needs). No `.mp4`: a clip would mean cutting and re-encoding the access copy per shot, a
decode-and-encode each, where everything else here is rows and files already made; the json
names the access copy and the shot's seconds, which is what video2dataset's own clipping reads.

**Parquet** (`shots.parquet`): a row per shot with caption, tags, on-screen text, transcript,
and a `{space}_embedding` column per embedding space as `fixed_size_list<float32, dim>`; the
spaces, their models, dims and meanings are in the schema's metadata (`archivist.embeddings`)
and on each column's field metadata.

Both are deterministic: samples are ordered by asset id then shot, tar members carry fixed
times and owners, JSON is written with sorted keys, and the stats leave out video2dataset's
wall-clock fields (`start_time`, `end_time`, `duration`): the same rows give the same bytes.
Each shard is a `CollectionPart` keyed on its samples' rows and vectors, so an incremental
export renders and writes only the shards whose samples changed (adding an asset shifts the
shards after it: the order is the ids', not the order of arrival). A keyframe's bytes are not
in the key (they are read only to render): a keyframe is named by its shot, which is named by
its frames, so a re-run writes the same picture at the same URI.

What it costs: the selection's records are held together (the shards cut across assets), with
their vectors as float32 arrays, 8 KB a shot for the three spaces: about 8 GB for a million
shots. One shard's bytes are held at a time.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from catalog.schema import EMBEDDING_SPACES, ONSCREEN_TEXT_TAG, VISUAL_SPACE
from exports.formats import FORMAT_VERSION, CollectionPart
from exports.record import AssetRecord, ShotRecord

SHARD_SIZE = 1000
"""Samples per shard by default: 47 MB a shard measured with 384-pixel keyframes (segment's
default) and 1280 + 2 x 384 floats of vectors a sample, short of the 100 MB-1 GB WebDataset
suggests; raise it with `--shard-size` for larger keyframes or a fast store."""
DATASET_VERSION = "1"
"""Bumped when these files' bytes change for the same rows (on top of `FORMAT_VERSION`)."""
SHARD_FOLDER = "webdataset"
PARQUET_FILE = "shots.parquet"
SHARD_DIGITS = 5
"""video2dataset's `oom_shard_count` default: shard names and the first digits of keys."""
MEMBER_MTIME = 0
"""Every tar member's time: a fixed one, or the same rows would make new bytes each export."""
COMPRESSION = "zstd"

SHARD_PARQUET = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # 'success' or 'failed_to_download'
        pa.field("error_message", pa.string()),
        pa.field("url", pa.string()),  # the asset's source, video2dataset's `url`
        pa.field("caption", pa.string()),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("shot_index", pa.int32()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("keyframe_uri", pa.string()),
    ]
)
"""video2dataset's per-shard metadata (`key`, `status`, `error_message`, `url`, `caption`) and
the shot's ids and times, so a shard's rows can be joined back to the catalog."""

TAG = pa.struct(
    [
        pa.field("kind", pa.string()),
        pa.field("label", pa.string()),
        pa.field("score", pa.float32()),
        pa.field("rank", pa.int32()),
        pa.field("model", pa.string()),
    ]
)
SHOTS_COLUMNS = [
    pa.field("asset_id", pa.string(), nullable=False),
    pa.field("shot_id", pa.string(), nullable=False),
    pa.field("shot_index", pa.int32()),
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("source_uri", pa.string()),
    pa.field("keyframe_uri", pa.string()),
    pa.field("caption", pa.string()),
    pa.field("caption_method", pa.string()),
    pa.field("caption_version", pa.string()),
    pa.field("description", pa.string()),
    pa.field("tags", pa.list_(TAG)),
    pa.field("onscreen_text", pa.list_(pa.string())),
    pa.field("transcript", pa.string()),
    pa.field("pipeline_version", pa.string()),
]
"""The Parquet's columns before the embedding columns, which follow the spaces the shots have."""

Sample = tuple[AssetRecord, ShotRecord]


def samples(records: Sequence[AssetRecord]) -> list[Sample]:
    """Every shot of the records, by asset id and then the asset's shot order: the order of
    the rows, not of the selection, so the same rows make the same shards."""
    ordered = sorted({r.asset_id: r for r in records}.values(), key=lambda r: r.asset_id)
    return [(record, shot) for record in ordered for shot in record.shots]


def spaces_of(items: Sequence[Sample]) -> list[str]:
    """The embedding spaces the shots have vectors in: the catalog's order, then any other."""
    found = {space for _, shot in items for space in shot.embeddings}
    return [s for s in EMBEDDING_SPACES if s in found] + sorted(found - set(EMBEDDING_SPACES))


def vector_file(space: str) -> str:
    """The sample member a space's vector is: `npy` for the image embedding, `{space}.npy` else."""
    return "npy" if space == VISUAL_SPACE else f"{space}.npy"


def metadata(record: AssetRecord, shot: ShotRecord) -> dict[str, Any]:
    """What a sample's `.json` says: the shot, its description and where each came from."""
    row, caption = shot.shot, shot.caption or {}
    access = record.remaster("access")
    return {
        "asset_id": record.asset_id,
        "shot_id": row["shot_id"],
        "shot_index": row.get("shot_index"),
        "start_s": row.get("start_s"),
        "end_s": row.get("end_s"),
        "url": record.asset.get("uri"),
        "access_uri": access["output_uri"] if access else None,
        "keyframe_uri": row.get("keyframe_uri"),
        "caption": caption.get("caption"),
        "caption_model": caption.get("method"),
        "caption_version": caption.get("pipeline_version"),
        "tags": [_tag(t) for t in shot.tags if t.get("kind") != ONSCREEN_TEXT_TAG],
        "onscreen_text": [t["label"] for t in shot.tags if t.get("kind") == ONSCREEN_TEXT_TAG],
        "transcript": shot.transcript,
        "embeddings": {
            space: {"file": vector_file(space), "model": e.model, "dim": int(e.vector.shape[0])}
            for space, e in sorted(shot.embeddings.items())
        },
        "pipeline_version": row.get("pipeline_version"),
    }


def _tag(tag: dict[str, Any]) -> dict[str, Any]:
    return {name: tag.get(name) for name in ("kind", "label", "score", "rank", "model")}


def _digest(items: Sequence[Sample]) -> str:
    """A hash of everything the samples' files are rendered from but the keyframes' bytes."""
    digest = hashlib.sha256(f"{DATASET_VERSION}|{FORMAT_VERSION}|{len(items)}".encode())
    for record, shot in items:
        extra = {"description": (shot.caption or {}).get("description")}
        digest.update(json.dumps([metadata(record, shot), extra], sort_keys=True, default=str).encode())
        for space, embedding in sorted(shot.embeddings.items()):
            digest.update(space.encode())
            digest.update(np.ascontiguousarray(embedding.vector, np.float32).tobytes())
    return digest.hexdigest()


# ---- WebDataset ----------------------------------------------------------------------------------


def key_digits(shard_size: int) -> int:
    """video2dataset's `oom_sample_per_shard`: the digits a sample's place in its shard needs."""
    return len(str(max(shard_size - 1, 0)))


def shard_names(shard: int) -> tuple[str, str, str]:
    stem = f"{SHARD_FOLDER}/{shard:0{SHARD_DIGITS}d}"
    return f"{stem}.tar", f"{stem}.parquet", f"{stem}_stats.json"


def shard_parts(
    records: Sequence[AssetRecord], storage_options: dict[str, Any], shard_size: int = SHARD_SIZE
) -> list[CollectionPart]:
    """The shards of the records' shots, `shard_size` samples each (the last may hold fewer),
    each keyed on its samples and the shard size, rendered only when asked."""
    if shard_size < 1:
        raise ValueError(f"a shard holds at least one sample (shard_size={shard_size})")
    items = samples(records)
    parts = []
    for shard, first in enumerate(range(0, len(items), shard_size)):
        chunk = items[first : first + shard_size]
        key = hashlib.sha256(f"{shard}|{shard_size}|{_digest(chunk)}".encode()).hexdigest()
        parts.append(
            CollectionPart(
                files=shard_names(shard),
                key=key,
                render=_shard_renderer(shard, chunk, storage_options, shard_size),
            )
        )
    return parts


def _shard_renderer(
    shard: int, chunk: list[Sample], storage_options: dict[str, Any], shard_size: int
) -> Callable[[], dict[str, bytes]]:
    """A closure over this shard's own samples (a lambda in the loop would see the last's)."""
    return lambda: render_shard(shard, chunk, storage_options, shard_size)


def render_shard(
    shard: int, chunk: Sequence[Sample], storage_options: dict[str, Any], shard_size: int = SHARD_SIZE
) -> dict[str, bytes]:
    """One shard's tar, per-shard Parquet and stats, in memory (one shard at a time is held)."""
    tar_name, parquet_name, stats_name = shard_names(shard)
    buffer = io.BytesIO()
    rows = []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for place, (record, shot) in enumerate(chunk):
            key = f"{shard:0{SHARD_DIGITS}d}{place:0{key_digits(shard_size)}d}"
            picture, error = _keyframe(shot.shot.get("keyframe_uri"), storage_options)
            meta = metadata(record, shot)
            status = "success" if picture is not None else "failed_to_download"
            members = dict(_members(key, picture, shot, {**meta, "key": key, "status": status}))
            for name, data in members.items():
                _add(tar, name, data)
            rows.append(
                {
                    "key": key,
                    "status": status,
                    "error_message": error,
                    "url": meta["url"],
                    "caption": meta["caption"],
                    **{f: meta[f] for f in ("asset_id", "shot_id", "shot_index", "start_s", "end_s")},
                    "keyframe_uri": meta["keyframe_uri"],
                }
            )
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    stats = {
        "count": len(rows),
        "successes": statuses.get("success", 0),
        "failed_to_download": statuses.get("failed_to_download", 0),
        "failed_to_subsample": 0,
        "status_dict": dict(sorted(statuses.items())),
        "assets": len({row["asset_id"] for row in rows}),
        "shard": f"{shard:0{SHARD_DIGITS}d}",
    }
    return {
        tar_name: buffer.getvalue(),
        parquet_name: _parquet_bytes(pa.Table.from_pylist(rows, schema=SHARD_PARQUET)),
        stats_name: _json_bytes(stats),
    }


def _members(
    key: str, picture: bytes | None, shot: ShotRecord, meta: dict[str, Any]
) -> Iterator[tuple[str, bytes]]:
    if picture is not None:
        yield f"{key}.jpg", picture
    caption = (shot.caption or {}).get("caption")
    if caption is not None:
        yield f"{key}.txt", caption.encode("utf-8")
    yield f"{key}.json", _json_bytes(meta)
    for space, embedding in sorted(shot.embeddings.items()):
        yield f"{key}.{vector_file(space)}", _npy(embedding.vector)


def _keyframe(uri: str | None, storage_options: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """The keyframe's JPEG, or None and why: a missing picture is a sample without `.jpg` and a
    `failed_to_download` status (video2dataset's word for it), not a failed export."""
    if not uri:
        return None, "the shot has no keyframe"
    import fsspec

    try:
        with fsspec.open(uri, "rb", **storage_options) as handle:
            return handle.read(), None
    except (OSError, ValueError) as exc:
        return None, f"cannot read the keyframe {uri}: {exc}"[:300]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = MEMBER_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _npy(vector: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(vector, np.float32), allow_pickle=False)
    return buffer.getvalue()


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=COMPRESSION)
    return buffer.getvalue()


# ---- Parquet of shots ----------------------------------------------------------------------------


def parquet_part(records: Sequence[AssetRecord]) -> CollectionPart:
    """The one Parquet file of the records' shots, keyed on all of them."""
    items = samples(records)
    key = hashlib.sha256(f"parquet|{_digest(items)}".encode()).hexdigest()
    return CollectionPart(files=(PARQUET_FILE,), key=key, render=lambda: {PARQUET_FILE: shots_parquet(items)})


def embedding_spaces(items: Sequence[Sample]) -> dict[str, dict[str, Any]]:
    """Per space the shots have: its model, dim and meaning. A space whose vectors differ in
    dim or model is an error: such vectors are not comparable, and one column cannot hold them."""
    from exports.run import ExportError

    found: dict[str, dict[str, Any]] = {}
    for space in spaces_of(items):
        models = sorted({s.embeddings[space].model for _, s in items if space in s.embeddings})
        dims = sorted({int(s.embeddings[space].vector.shape[0]) for _, s in items if space in s.embeddings})
        if len(models) > 1 or len(dims) > 1:
            raise ExportError(
                f"the {space} space holds vectors of {len(models)} models ({', '.join(models)}) and "
                f"{len(dims)} dims: re-embed the older shots before exporting them as one dataset"
            )
        found[space] = {"model": models[0], "dim": dims[0], "meaning": EMBEDDING_SPACES.get(space)}
    return found


def _vectors(items: Sequence[Sample], space: str, dim: int, field: pa.Field) -> pa.Array:
    """A space's vectors as one fixed-size list column, null where a shot has none."""
    values = np.zeros((len(items), dim), np.float32)
    missing = np.ones(len(items), bool)
    for i, (_, shot) in enumerate(items):
        if space in shot.embeddings:
            values[i] = shot.embeddings[space].vector
            missing[i] = False
    flat = pa.array(values.reshape(-1), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, type=field.type, mask=pa.array(missing))


def shots_parquet(items: Sequence[Sample]) -> bytes:
    """The shots as one Parquet file; the embedding spaces named in its schema metadata."""
    spaces = embedding_spaces(items)
    vector_fields = [
        pa.field(
            f"{space}_embedding",
            pa.list_(pa.field("item", pa.float32()), about["dim"]),
            metadata={"space": space, "model": about["model"], "meaning": about["meaning"] or ""},
        )
        for space, about in spaces.items()
    ]
    schema = pa.schema(
        SHOTS_COLUMNS + vector_fields,
        metadata={
            "archivist.embeddings": json.dumps(spaces, sort_keys=True),
            "archivist.dataset_version": DATASET_VERSION,
        },
    )
    rows = []
    for record, shot in items:
        meta, caption = metadata(record, shot), shot.caption or {}
        rows.append(
            {
                "asset_id": meta["asset_id"],
                "shot_id": meta["shot_id"],
                "shot_index": meta["shot_index"],
                "start_s": meta["start_s"],
                "end_s": meta["end_s"],
                "source_uri": meta["url"],
                "keyframe_uri": meta["keyframe_uri"],
                "caption": meta["caption"],
                "caption_method": meta["caption_model"],
                "caption_version": meta["caption_version"],
                "description": caption.get("description"),
                "tags": meta["tags"],
                "onscreen_text": meta["onscreen_text"],
                "transcript": meta["transcript"],
                "pipeline_version": meta["pipeline_version"],
            }
        )
    table = pa.Table.from_pylist(rows, schema=pa.schema(SHOTS_COLUMNS))
    for field in vector_fields:
        space = field.name.removesuffix("_embedding")
        table = table.append_column(field, _vectors(items, space, spaces[space]["dim"], field))
    return _parquet_bytes(table.replace_schema_metadata(schema.metadata))
