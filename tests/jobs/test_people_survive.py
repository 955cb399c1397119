"""A curator's work survives the machine: a person named and a caption fixed are still there, and
still found by the search, after the job runs again with a changed model parameter."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from skimage import data
from typer.testing import CliRunner

from catalog.corrections import Edit, correct
from catalog.iceberg import open_catalog, read
from catalog.people import find_people, list_people, name_person, person_detail
from catalog.settings import Settings
from jobs.cli import app
from jobs.run import run_job
from jobs.spec import only_stages, parse_spec

pytestmark = pytest.mark.slow


def portrait_clip(path: Path, *, fps: int = 25) -> Path:
    """Two shots of one woman (the astronaut portrait) on two backgrounds, placed differently: a cut
    between them, a second apart."""
    face = data.astronaut()[20:260, 120:340]  # her head and shoulders, 240 x 220
    width, height = 480, 320
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(2 * fps):
            second = i >= fps
            frame = np.full((height, width, 3), (30, 60, 140) if second else (150, 120, 40), np.uint8)
            x, y = (230, 50) if second else (30 + i, 40)
            frame[y : y + face.shape[0], x : x + face.shape[1]] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def spec(source: Path, threshold: float):
    stages = only_stages(segment={}, visual={}, faces={"score_threshold": threshold}, text={})
    return parse_spec({"name": "people", "source": {"uri": str(source)}, "stages": stages})


def cli_search(words: str) -> list[dict]:
    result = CliRunner().invoke(app, ["search", "--text", words, "--top", "5", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["hits"]


def test_a_name_and_a_caption_survive_a_rerun_with_changed_faces_settings(
    ray_session, home, tmp_path
) -> None:
    source = tmp_path / "tapes"
    source.mkdir()
    portrait_clip(source / "launch.mp4")
    first = run_job(spec(source, 0.5))
    assert first["assets"]["ok"] == 1 and first["shots"] == 2, first
    catalog = open_catalog(Settings())
    (person,) = list_people(catalog)
    assert person.appearances == 2 and person.name is None  # one woman, both shots; nobody named her
    name_person(catalog, person.person_id, "Jane Doe", curator="Ada")
    shot = person_detail(catalog, person.person_id).appearances[0].shot_id
    correct(catalog, shot, Edit("Ada", caption="Jane Doe before the launch."))

    second = run_job(spec(source, 0.6))  # a changed model parameter: a new pipeline version
    assert second["pipeline_version"] != first["pipeline_version"] and second["assets"]["ok"] == 1
    assert set(read(catalog, "faces")["run_id"].to_pylist()) == {second["run_id"]}  # the machine re-did it
    (jane,) = find_people(catalog, "Jane Doe")
    assert jane.person_id == person.person_id and jane.appearances == 2 and jane.named_by == "Ada"

    hits = cli_search("Jane Doe")
    assert {h["shot_id"] for h in hits[:2]} == {
        a.shot_id for a in person_detail(catalog, jane.person_id).appearances
    }
    assert next(h for h in hits if h["shot_id"] == shot)["caption"] == "Jane Doe before the launch."
