"""Column contracts shared by the stages and the catalog.

Stages exchange ``pyarrow.Table`` batches whose columns are named here, so a
stage can be written and tested knowing only this module, and the catalog
tables are the same schemas with the run's bookkeeping columns added.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

NAMESPACE = "archive"

VISUAL_DIM = 1280
"""Width of the visual embedding (EfficientNet-Lite0 pooled features)."""

# What `discover` hands to `segment`: one row per media file to process.
ASSET_REF = pa.schema(
    [
        pa.field("asset_id", pa.string(), nullable=False),  # sha256 of the file's bytes
        pa.field("uri", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
    ]
)

ASSET_STATUSES: dict[str, str] = {
    "ok": "decoded whole",
    "damaged": "decoded in part: some frames are usable, `error` says how many of how many and where "
    "decoding stopped",
    "failed": "nothing usable: `error` says why",
}
"""What an asset's `status` can be. Damage is a status an archive counts and filters, not a note."""

# Technical description of an asset, filled by `segment` from the probe.
ASSET_PROBE = pa.schema(
    [
        pa.field("status", pa.string(), nullable=False),  # one of ASSET_STATUSES
        pa.field("error", pa.string()),
        pa.field("container", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("fps", pa.float64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("frame_count", pa.int64()),
        pa.field("video_codec", pa.string()),
        pa.field("pix_fmt", pa.string()),
        pa.field("audio_streams", pa.int32()),
        pa.field("audio_codec", pa.string()),
    ]
)

# One shot as `segment` finds it. Metrics are means over the shot's analysed
# frames at analysis resolution; `keyframe_jpeg` is the only image that travels.
SHOT = pa.schema(
    [
        pa.field("shot_id", pa.string()),  # null on the single row of a failed asset
        pa.field("shot_index", pa.int32()),
        pa.field("start_frame", pa.int64()),
        pa.field("end_frame", pa.int64()),  # exclusive
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("transition", pa.string()),  # how the shot begins: 'start', 'cut' or 'gradual'
        # 0 for the shot's keyframe, the one its `shots` row names; a long take whose content
        # changes has more rows, one per further keyframe (`keyframes` lists them all)
        pa.field("keyframe_index", pa.int32()),
        pa.field("keyframe_frame", pa.int64()),
        pa.field("keyframe_s", pa.float64()),  # from the asset's first frame, like start_s
        pa.field("keyframe_uri", pa.string()),
        pa.field("keyframe_jpeg", pa.binary()),
        pa.field("sharpness", pa.float32()),  # variance of the Laplacian of luma
        pa.field("brightness", pa.float32()),  # mean luma, 0..255
        pa.field("contrast", pa.float32()),  # standard deviation of luma
        pa.field("noise", pa.float32()),  # estimated noise sigma of luma, 0..255 scale
        pa.field("saturation", pa.float32()),  # mean HSV saturation, 0..255
        pa.field("black_fraction", pa.float32()),  # share of frames that are black
        pa.field("is_blank", pa.bool_()),  # every analysed frame flat (black, white or one colour)
        pa.field("is_monochrome", pa.bool_()),
    ]
)

KEYFRAME_ONLY = ("keyframe_index", "keyframe_s")
"""Columns of a shot row that only the `keyframes` table keeps."""

TRACK_FRAMES = pa.schema(
    [
        pa.field("track_jpegs", pa.list_(pa.binary())),  # at the keyframe's size and quality
        pa.field("track_s", pa.list_(pa.float64())),  # each one's time, like keyframe_s
    ]
)
"""A few more frames of a shot, on its own keyframe's row only, for the faces stage to follow a
face through the shot (`actors.faces`). They travel with the row and are stored nowhere: what is
kept of them is the faces seen on them (`face_sightings`)."""

SEGMENT_OUTPUT = pa.schema(list(ASSET_REF) + list(ASSET_PROBE) + list(SHOT) + list(TRACK_FRAMES))
"""A row per shot, carrying its asset's columns; a failed asset is one row
with ``status='failed'``, its ``error`` and null shot columns."""

# What the visual stage adds to each shot row.
VISUAL = pa.schema(
    [
        pa.field("tag_labels", pa.list_(pa.string())),
        pa.field("tag_scores", pa.list_(pa.float32())),
        pa.field("visual_embedding", pa.list_(pa.float32(), VISUAL_DIM)),
        pa.field("visual_model", pa.string()),
    ]
)

# What the understanding stages add to each shot row. A stage that finds
# nothing on a keyframe gives an empty list (or null score), never an error.
DETECTION = pa.struct(
    [
        pa.field("label", pa.string()),  # class name, or the text read
        pa.field("score", pa.float32()),
        pa.field("box", pa.list_(pa.float32())),  # x0, y0, x1, y1 in keyframe pixels
    ]
)
OBJECTS = pa.schema([pa.field("objects", pa.list_(DETECTION)), pa.field("objects_model", pa.string())])
ONSCREEN_TEXT = pa.schema([pa.field("texts", pa.list_(DETECTION)), pa.field("text_model", pa.string())])
TECHNICAL = pa.schema([pa.field("technical", pa.list_(DETECTION))])  # box null
SAFETY = pa.schema([pa.field("nsfw_score", pa.float32()), pa.field("safety_model", pa.string())])

FACE = pa.struct(
    [
        pa.field("box", pa.list_(pa.float32())),
        pa.field("score", pa.float32()),
        # Perceptions of a model, for aggregate audits only; never shown per person.
        pa.field("perceived_age", pa.float32()),
        pa.field("perceived_age_band", pa.string()),  # '0-12', '13-19', '20-34', '35-49', '50-64', '65+'
        pa.field("perceived_gender", pa.string()),
        pa.field("perceived_gender_score", pa.float32()),
        pa.field("skin_ita", pa.float32()),  # individual typology angle, degrees
        pa.field("skin_tone_group", pa.string()),  # ITA bands: very light … dark
        pa.field("identity", pa.list_(pa.float32())),  # 128-d face embedding, for identity-drift audits
    ]
)
FACE_SIGHTING = pa.struct(
    [
        pa.field("keyframe_index", pa.int32()),  # the keyframe it was seen on; null on a track frame
        pa.field("track_frame", pa.int32()),  # the track frame (position in track_jpegs); null on a keyframe
        pa.field("time_s", pa.float64()),
        pa.field("face_index", pa.int32()),  # its place among that picture's faces, from 0
        pa.field("box", pa.list_(pa.float32())),  # x0, y0, x1, y1 in keyframe pixels
        pa.field("score", pa.float32()),
        pa.field("identity", pa.list_(pa.float32())),  # null: too small to identify
    ]
)
"""One face on one picture of a shot, what a track is linked from: no perceptions, only where it
is and who it looks like."""
FACES_OUT = pa.schema(
    [
        pa.field("faces", pa.list_(FACE)),
        pa.field("faces_model", pa.string()),
        pa.field("face_sightings", pa.list_(FACE_SIGHTING)),
    ]
)

PHASH = pa.schema([pa.field("phash", pa.uint64())])  # 64-bit perceptual hash of the keyframe

DESCRIPTION = pa.schema(
    [
        pa.field("caption", pa.string()),
        pa.field("caption_method", pa.string()),  # 'composed/v1', or the VLM's name
        pa.field("description", pa.string()),  # caption + tags + text + transcript: what is embedded
        pa.field("text_embedding", pa.list_(pa.float32())),  # MiniLM of the description
        pa.field("concept_embedding", pa.list_(pa.float32())),  # ConSE: the image in the text space
        pa.field("text_embedding_model", pa.string()),
        pa.field("caption_confidence", pa.float32()),  # the caption's least sure noun; null: names none
    ]
)

# One row per transcribed speech segment of an asset.
TRANSCRIPT_SEGMENT = pa.schema(
    [
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("segment_index", pa.int32()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("text", pa.string()),
        pa.field("language", pa.string()),
        pa.field("avg_logprob", pa.float32()),
        pa.field("no_speech_prob", pa.float32()),
        pa.field("model", pa.string()),
    ]
)

# What the speech stage adds to each asset row (and segment carries to its shots),
# and what the text stage derives from it for each shot.
SPEECH = pa.schema(
    [pa.field("speech", pa.list_(pa.struct([f for f in TRANSCRIPT_SEGMENT if f.name != "asset_id"])))]
)
SHOT_TRANSCRIPT = pa.schema([pa.field("transcript", pa.string())])

# One row per remastered output file (preservation master or access copy).
REMASTER = pa.schema(
    [
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("kind", pa.string()),  # 'master' (FFV1/Matroska) or 'access' (H.264/MP4)
        pa.field("output_uri", pa.string()),
        pa.field("output_sha256", pa.string()),
        pa.field("manifest_uri", pa.string()),
        pa.field("codec", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("frame_count", pa.int64()),
        pa.field("fps", pa.float64()),
        pa.field("upscale", pa.int32()),
        pa.field("operations", pa.string()),  # JSON: the operations applied, with parameters
        pa.field("decisions", pa.string()),  # JSON: what `auto` measured and why it chose them
        pa.field("model", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("noise_before", pa.float32()),
        pa.field("noise_after", pa.float32()),
        pa.field("sharpness_before", pa.float32()),
        pa.field("sharpness_after", pa.float32()),
        pa.field("flicker_before", pa.float32()),
        pa.field("flicker_after", pa.float32()),
        pa.field("seconds", pa.float64()),
        pa.field("status", pa.string(), nullable=False),  # 'ok' or 'failed'
        pa.field("error", pa.string()),
        pa.field("pix_fmt", pa.string()),  # the output's pixel format (a 10-bit source: gbrp10le master)
        pa.field("bit_depth", pa.int32()),
        pa.field("field_order", pa.string()),  # 'progressive', 'tff' or 'bff' (access copies: progressive)
        pa.field("sample_aspect_ratio", pa.string()),  # 'num:den', the source's; None for square/unset
        pa.field("audio_tracks", pa.int32()),
        pa.field("audio", pa.string()),  # JSON: per track, copied untouched or transcoded (to what)
        # The access copy as decoded against its source (there is no pristine original in production):
        # how far restoration, upscaling and the encoder together moved the picture, at the access
        # picture's size (at most 1080p), on evenly spaced frames. VMAF v0.6.1 (vmaf-torch), luma PSNR
        # (dB) and SSIM. Null on master rows, on failed rows and with `quality_frames: 0`. Benchmarks with
        # an original score source and output against it instead (bench_access_copies.py).
        pa.field("vmaf_vs_source", pa.float32()),
        pa.field("psnr_vs_source", pa.float32()),
        pa.field("ssim_vs_source", pa.float32()),
    ]
)

# Bookkeeping columns every catalog row carries.
PROVENANCE = [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("pipeline_version", pa.string(), nullable=False),
]

ASSETS = pa.schema(
    list(ASSET_REF)
    + list(ASSET_PROBE)
    + [pa.field("shot_count", pa.int32()), pa.field("processed_at", pa.timestamp("us", tz="UTC"))]
    + PROVENANCE
)

SHOTS = pa.schema(
    [pa.field("asset_id", pa.string(), nullable=False)]
    + [f for f in SHOT if f.name not in ("keyframe_jpeg", *KEYFRAME_ONLY)]
    + list(SAFETY)
    # the hash's 64 bits as a signed integer: Iceberg has no unsigned types
    + [pa.field("phash", pa.int64())]
    + PROVENANCE
)

TAGS = pa.schema(
    [
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # 'imagenet', 'object', 'technical', …
        pa.field("label", pa.string(), nullable=False),
        pa.field("score", pa.float32()),
        pa.field("rank", pa.int32()),
        pa.field("box", pa.list_(pa.float32())),  # x0, y0, x1, y1 in keyframe pixels, where located
        pa.field("model", pa.string()),
    ]
    + PROVENANCE
)

# Every keyframe of every shot: a shot's `keyframe_index` 0 is the one its `shots` row names;
# a long take gets more where its content changes (actors.keyframe_choice).
KEYFRAMES = pa.schema(
    [
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("keyframe_index", pa.int32(), nullable=False),
        pa.field("keyframe_frame", pa.int64()),
        pa.field("keyframe_s", pa.float64()),
        pa.field("keyframe_uri", pa.string()),
    ]
    + PROVENANCE
)

EMBEDDINGS = pa.schema(
    [
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("space", pa.string(), nullable=False),  # 'visual', 'text', …
        pa.field("model", pa.string(), nullable=False),
        pa.field("dim", pa.int32(), nullable=False),
        pa.field("vector", pa.list_(pa.float32())),
        pa.field("keyframe_index", pa.int32()),  # whose picture or description it is; null: 0
    ]
    + PROVENANCE
)

# ---- Shared facts: embedding spaces and tag kinds, defined here once --------------------------------
# Everything else (the row splitting, the indexes built after a run, which spaces a kind of query
# searches, the filters) names these constants rather than spelling the strings again.

VISUAL_SPACE = "visual"
TEXT_SPACE = "text"
CONCEPT_SPACE = "concept"
EMBEDDING_SPACES: dict[str, str] = {
    VISUAL_SPACE: "what a keyframe looks like: EfficientNet-Lite0 pooled features of the image",
    TEXT_SPACE: "what a shot is said to show: MiniLM of its description (caption, tags, on-screen text, "
    "transcript)",
    CONCEPT_SPACE: "a keyframe placed in the text space (ConSE: the score-weighted MiniLM vectors of its "
    "ImageNet tags and detected objects), so that words find images nobody described",
}
"""Every embedding space by its EMBEDDINGS ``space`` value, with what its vectors mean. Each space
is one FAISS index; the order is the order indexes are built in."""

IMAGENET_TAG = "imagenet"
OBJECT_TAG = "object"
ONSCREEN_TEXT_TAG = "text"
TECHNICAL_TAG = "technical"
TAG_KINDS: dict[str, str] = {
    IMAGENET_TAG: "an ImageNet class of the whole keyframe (the visual stage's tags)",
    OBJECT_TAG: "an object detected on the keyframe, with its box",
    ONSCREEN_TEXT_TAG: "text read on screen (OCR), with its box",
    TECHNICAL_TAG: "a measured condition of the shot (monochrome, grainy, blurry, underexposed, sd, "
    "blank, …)",
}
"""Every TAGS ``kind``, with what a row of that kind is. A query's ``tag`` filter matches every kind
but objects (its ``object`` filter) and on-screen text."""
# ---- end of the shared facts -------------------------------------------------------------------------

REMASTERS = pa.schema(list(REMASTER) + PROVENANCE)

# What the remaster stage adds to each asset row: its output rows, carried to the
# asset's shot rows like speech, so a remastered asset is staged and resumed with them.
REMASTERED = pa.schema([pa.field("remasters", pa.list_(pa.struct(list(REMASTER))))])

FACES = pa.schema(
    [
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("face_index", pa.int32()),
    ]
    + list(FACE)
    + [pa.field("model", pa.string())]
    + PROVENANCE
)

# Every face seen on every picture of a shot (its keyframes and its track frames), the input of the
# people step's tracks. `faces` keeps keyframe 0's faces with their perceptions, for the audits'
# counts, where a face seen on several pictures of one shot must count once.
FACE_SIGHTINGS = pa.schema(
    [pa.field("shot_id", pa.string(), nullable=False), pa.field("asset_id", pa.string(), nullable=False)]
    + list(FACE_SIGHTING)
    + [pa.field("model", pa.string())]
    + PROVENANCE
)

CAPTIONS = pa.schema(
    [
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("caption", pa.string()),
        pa.field("method", pa.string()),
        pa.field("description", pa.string()),
    ]
    + PROVENANCE
    + [pa.field("caption_confidence", pa.float32())]  # added with composed/v2 (issue 17)
)

TRANSCRIPTS = pa.schema(list(TRANSCRIPT_SEGMENT) + [pa.field("shot_ids", pa.list_(pa.string()))] + PROVENANCE)

# ---- Voices: who speaks when in an asset (actors/diarize.py), and across the archive (catalog.voices) --
VOICE_DIM = 256
"""Width of the GE2E speaker embedding (resemblyzer's pretrained encoder)."""
SPEAKER_TURN = pa.struct([pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64())])
SPEAKER = [
    pa.field("speaker", pa.string()),  # 'S1', 'S2', … in order of first speech in the asset; null: error
    pa.field("seconds", pa.float64()),  # of speech
    pa.field("turns", pa.list_(SPEAKER_TURN)),
    pa.field("embedding", pa.list_(pa.float32(), VOICE_DIM)),  # unit mean of its speech's windows
    pa.field("model", pa.string()),
    pa.field("error", pa.string()),  # why the asset's voices could not be told apart
]
# What the diarize stage adds to each asset row (carried to its shots like speech).
DIARIZATION = pa.schema([pa.field("speakers", pa.list_(pa.struct(SPEAKER)))])
SPEAKERS = pa.schema([pa.field("asset_id", pa.string(), nullable=False)] + SPEAKER + PROVENANCE)
# Derived after each commit from `speakers`: which archive-wide voice each asset's speaker is.
# A voice's id is given once and never renumbered; a curator names it in `people_corrections`.
VOICES = pa.schema(
    [
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("speaker", pa.string(), nullable=False),
        pa.field("voice_id", pa.string(), nullable=False),  # 'V000001', …
        pa.field("distance", pa.float32()),  # cosine distance to the voice's centroid when it joined
        pa.field("run_id", pa.string()),
    ]
)
# ---- end of voices -----------------------------------------------------------------------------------

# One row per measurement of a shot by a keyframe model whose result is one number (a quality
# score, say): a stage that adds such a measure owns the rows of its `metric`, so adding one
# needs no new table or column.
SCORES = pa.schema(
    [
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float32()),
        pa.field("model", pa.string()),
    ]
    + PROVENANCE
)

# Derived over the whole catalog after each commit (not per asset): which shots
# are the same material. `dup_group` is the smallest shot_id of the group, so it
# is stable across runs; a shot with no duplicate is its own group.
DUP_GROUPS = pa.schema(
    [
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("dup_group", pa.string(), nullable=False),
        pa.field("group_size", pa.int32()),
        pa.field("run_id", pa.string()),
    ]
)

# What users did, for recommendations: appended, never replaced.
EVENTS = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # 'view', 'like', 'save'
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

# What curators corrected, one row per change: appended by the service, never replaced and
# never written by a run, so a re-run's machine rows (captions, tags) cannot undo a person's fix;
# readers fold them over the machine rows (catalog.corrections).
CORRECTIONS = pa.schema(
    [
        pa.field("correction_id", pa.string(), nullable=False),
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("field", pa.string(), nullable=False),  # 'caption', 'tag_added' or 'tag_removed'
        pa.field("value", pa.string()),  # the new caption, or the tag's label
        pa.field("before", pa.string()),  # what the curator saw: the caption, or the shot's tags
        pa.field("curator", pa.string(), nullable=False),  # who, as they named themselves
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("note", pa.string()),
    ]
)

# ---- People: faces followed through shots, grouped across the archive (catalog.people) -------------
# Derived after each commit from the `face_sightings` rows, like the duplicate groups: written by
# the people step (jobs.people), never by a stage. A track is one appearance of a face in one shot
# (its sightings on the shot's keyframes and track frames linked by identity and position); a person
# is a cluster of tracks whose id, once given, is never renumbered. Names, merges, splits and
# opt-outs are curators' rows of `people_corrections`, kept apart from these machine rows and folded
# over them by readers.
IDENTITY_DIM = 128
"""Width of the dlib face descriptor the faces stage writes as `identity`."""
FACE_TRACKS = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),  # from the shot and its first observation
        pa.field("shot_id", pa.string(), nullable=False),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("start_s", pa.float64()),  # the shot's span: where the appearance can be seen
        pa.field("end_s", pa.float64()),
        pa.field("keyframe_indexes", pa.list_(pa.int32())),  # the keyframes it was seen on
        pa.field("face_indexes", pa.list_(pa.int32())),  # its face on each of them
        pa.field("seen_s", pa.list_(pa.float64())),  # every time it was seen: keyframes, track frames
        # its surest sighting on a keyframe (the picture kept): box in keyframe pixels, and which;
        # null for a face seen only on track frames (someone passing between keyframes)
        pa.field("box", pa.list_(pa.float32())),
        pa.field("keyframe_index", pa.int32()),
        pa.field("score", pa.float32()),  # the detector's best score for it
        pa.field("identity", pa.list_(pa.float32(), IDENTITY_DIM)),  # mean of its descriptors
        pa.field("person_id", pa.string(), nullable=False),  # the machine's cluster
        pa.field("run_id", pa.string()),
    ]
)
PEOPLE = pa.schema(
    [
        pa.field("person_id", pa.string(), nullable=False),  # 'P000001', …: given once, never reused
        pa.field("kind", pa.string(), nullable=False),  # 'person' (a voice cluster: 'voice')
        pa.field("centroid", pa.list_(pa.float32(), IDENTITY_DIM)),  # mean of its tracks' descriptors
        pa.field("track_count", pa.int32()),
        pa.field("created_run_id", pa.string()),  # the run (or 'curator' split) that made it
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("run_id", pa.string()),
    ]
)
# What curators did to clusters of people (or voices), one row per action: appended by the service
# and the CLI, never by a run, so no re-run undoes a name, a merge, a split or an opt-out.
PEOPLE_CORRECTIONS = pa.schema(
    [
        pa.field("correction_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # 'person' or 'voice'
        pa.field("cluster_id", pa.string(), nullable=False),  # the person (or voice) acted on
        pa.field("action", pa.string(), nullable=False),  # 'name', 'merge', 'split', 'exclude', 'include'
        pa.field("value", pa.string()),  # the name; the cluster merged into; the split's JSON
        pa.field("before", pa.string()),  # what the curator saw: the name, or the membership
        pa.field("curator", pa.string(), nullable=False),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("note", pa.string()),
    ]
)
# ---- end of people ----------------------------------------------------------------------------------

# Findings of the audits, one row per check and subject.
AUDITS = pa.schema(
    [
        pa.field("audit_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),  # the run audited
        # 'identity_drift', 'manipulation', 'provenance', 'bias', …
        pa.field("audit", pa.string(), nullable=False),
        pa.field("subject", pa.string()),  # what was checked: an output URI, a shot id, a group, a query
        pa.field("asset_id", pa.string()),
        pa.field("shot_id", pa.string()),
        pa.field("metric", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("threshold", pa.float64()),
        pa.field("flagged", pa.bool_()),
        pa.field("detail", pa.string()),  # JSON
        pa.field("evidence_uri", pa.string()),  # a frame or crop that shows it
        pa.field("audited_at", pa.timestamp("us", tz="UTC")),
    ]
)

# ---- Preservation QC: one record per asset (actors/qc.py) -------------------------------------------
# What QCTools and MediaConch tell an archivist about a file, measured on one decode of it: what it
# is (container, codec, bit depth, field order, aspect, colour tags), whether it decodes whole
# (declared against decoded frames, errors with their positions, timestamp gaps), what the picture
# and the sound do (black and frozen spans, luma outside broadcast range, levels, clipping,
# silence), and whether it meets the job's policy. Seconds are from the start of the file.
QC_SPAN = pa.struct([pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64())])
QC_DECODE_ERROR = pa.struct(
    [
        pa.field("stream", pa.int32()),  # the stream's index in the container
        pa.field("frame", pa.int64()),  # video frames decoded before it
        pa.field("seconds", pa.float64()),
        pa.field("message", pa.string()),
    ]
)
QC_TIMESTAMP = pa.struct(
    [
        pa.field("kind", pa.string()),  # 'gap' (over 1.5 frame durations), 'jump' (not after the last)
        pa.field("frame", pa.int64()),  # the frame (decoded order) whose timestamp it is
        pa.field("at_s", pa.float64()),
        pa.field("delta_s", pa.float64()),  # its distance from the frame before
    ]
)
QC_AUDIO_TRACK = pa.struct(
    [
        pa.field("stream", pa.int32()),
        pa.field("codec", pa.string()),
        pa.field("sample_format", pa.string()),
        pa.field("channels", pa.int32()),
        pa.field("layout", pa.string()),
        pa.field("sample_rate", pa.int32()),
        pa.field("duration_s", pa.float64()),  # of the samples decoded
        pa.field("peak_dbfs", pa.float32()),  # -120: digital silence
        pa.field("rms_dbfs", pa.float32()),
        pa.field("clipped_samples", pa.int64()),  # samples at full scale, over all channels
        pa.field("silence_spans", pa.list_(QC_SPAN)),
    ]
)
QC_RECORD = [
    pa.field("status", pa.string()),  # 'ok', 'damaged' (decode errors or frames missing), 'failed'
    pa.field("error", pa.string()),  # why it failed, or the first thing found wrong
    pa.field("container", pa.string()),
    pa.field("duration_s", pa.float64()),
    pa.field("video_codec", pa.string()),
    pa.field("video_profile", pa.string()),
    pa.field("pix_fmt", pa.string()),
    pa.field("bit_depth", pa.int32()),
    pa.field("chroma_subsampling", pa.string()),  # '4:2:0', '4:2:2', '4:1:1', '4:4:4', '4:0:0'
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("fps", pa.float64()),
    pa.field("field_order", pa.string()),  # decided: 'progressive', 'tff' or 'bff'
    pa.field("field_order_declared", pa.string()),  # what the stream says ('unknown' when silent)
    pa.field("field_order_measured", pa.string()),  # what combing says ('undetermined': no motion)
    pa.field("combing", pa.float32()),  # mean share of comb teeth over the sampled frames
    pa.field("sample_aspect_ratio", pa.string()),  # 'num:den'
    pa.field("display_aspect_ratio", pa.string()),
    pa.field("color_primaries", pa.string()),
    pa.field("color_transfer", pa.string()),
    pa.field("color_matrix", pa.string()),
    pa.field("color_range", pa.string()),  # 'tv' (limited), 'pc' (full) or 'unknown'
    pa.field("timecode", pa.string()),  # of the stream or the container, where present
    pa.field("frames_declared", pa.int64()),
    pa.field("frames_decoded", pa.int64()),
    pa.field("decode_error_count", pa.int64()),
    pa.field("decode_errors", pa.list_(QC_DECODE_ERROR)),  # the first of them
    pa.field("timestamp_gap_count", pa.int64()),
    pa.field("timestamp_jump_count", pa.int64()),
    pa.field("timestamp_issues", pa.list_(QC_TIMESTAMP)),  # the first of them
    pa.field("black_spans", pa.list_(QC_SPAN)),
    pa.field("frozen_spans", pa.list_(QC_SPAN)),
    pa.field("luma_min", pa.int32()),  # code values at the source's bit depth
    pa.field("luma_max", pa.int32()),
    pa.field("broadcast_range", pa.string()),  # the legal luma, e.g. '16-235' (8 bit), '64-940' (10 bit)
    pa.field("luma_out_of_range", pa.float32()),  # share of luma samples outside it; null: full range
    pa.field("audio_track_count", pa.int32()),
    pa.field("audio_tracks", pa.list_(QC_AUDIO_TRACK)),
    # Filled where every packet is read (a remaster's check of its own master, actors.fixity):
    pa.field("non_keyframes", pa.int64()),  # video packets not flagged as keyframes
    pa.field("slice_crcs_verified", pa.bool_()),  # every FFV1 slice's CRC matches; null: not FFV1
    pa.field("policy_passed", pa.bool_()),
    pa.field("policy_failures", pa.list_(pa.string())),  # each failed rule, in words
    pa.field("qc_seconds", pa.float64()),  # what measuring the file took
]
QC = pa.schema(
    [pa.field("asset_id", pa.string(), nullable=False), pa.field("uri", pa.string())] + QC_RECORD + PROVENANCE
)
QC_COLUMN = pa.schema([pa.field("qc", pa.struct(QC_RECORD))])
"""What the qc stage adds to each asset row: its record, which `catalog_rows` makes the `qc` row."""
# ---- end of preservation QC ---------------------------------------------------------------------------

TABLES: dict[str, pa.Schema] = {
    "assets": ASSETS,
    "shots": SHOTS,
    "keyframes": KEYFRAMES,
    "tags": TAGS,
    "embeddings": EMBEDDINGS,
    "remasters": REMASTERS,
    "faces": FACES,
    "face_sightings": FACE_SIGHTINGS,
    "captions": CAPTIONS,
    "transcripts": TRANSCRIPTS,
    "scores": SCORES,
    "dup_groups": DUP_GROUPS,
    "events": EVENTS,
    "audits": AUDITS,
    "qc": QC,
    "corrections": CORRECTIONS,
    "face_tracks": FACE_TRACKS,
    "people": PEOPLE,
    "people_corrections": PEOPLE_CORRECTIONS,
    "speakers": SPEAKERS,
    "voices": VOICES,
}
"""Every catalog table by name. Later stages add theirs here."""

DERIVED_TABLES = frozenset(
    {"dup_groups", "events", "audits", "corrections", "face_tracks", "people", "people_corrections", "voices"}
)
"""Tables written outside a run's commit (index builds, the service, audits). Every other
table is a run's, read at the latest catalog version (catalog.versions)."""

ROW_KEYS: dict[str, str] = {"assets": "asset_id", "shots": "shot_id"}
"""The column naming a row of the tables whose columns several stages own, by which a
stage's columns are matched to the rows of the stage that owns the rows."""


def shot_id(asset_id: str, start_frame: int, end_frame: int) -> str:
    """A shot is named by its asset and frame range, so re-runs name it alike."""
    return hashlib.sha256(f"{asset_id}:{start_frame}:{end_frame}".encode()).hexdigest()[:32]
