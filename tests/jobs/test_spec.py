"""Job specs: what an archive team writes, and what it is told when it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.stage import registry
from jobs.spec import SpecError, default_spec, load_spec, parse_spec


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nightly.yaml"
    path.write_text(text)
    return path


def test_a_full_spec_loads_with_its_sections(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            """
name: nightly
source:
  uri: s3://archive/incoming
  include: ["*.mov"]
stages:
  segment:
    analysis_width: 192
    resources: {min_actors: 1, max_actors: 4, batch_size: 1}
  keyframes:
    resources: {num_gpus: 0.25, batch_size: 32}
    visual: {top_k: 3}
    ocr: {enabled: false}
  speech: {enabled: false}
storage:
  home: s3://archive/catalog
  catalog_url: postgresql+psycopg://archivist@db/archive
schedule:
  cron: "0 2 * * *"
""",
        )
    )
    assert spec.source.include == ["*.mov"]
    params = {e.stage.name: e.params for e in spec.enabled()}
    assert params["segment"].analysis_width == 192
    assert spec.stages.keyframes.resources.num_gpus == 0.25
    models = {s.name for s in registry().values() if s.group and s.enabled_by_default} - {"ocr"}
    assert {e.stage.name for e in spec.enabled() if e.stage.group} == models
    assert {"visual", "objects", "faces", "safety", "technical", "phash"} <= models
    assert params["visual"].top_k == 3
    assert {e.resources.num_gpus for e in spec.enabled() if e.stage.group} == {0.25}
    assert not spec.stages.speech.enabled
    assert spec.settings().home == "s3://archive/catalog"
    assert spec.schedule is not None and spec.schedule.cron == "0 2 * * *"


def test_a_typo_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nsource: {uri: ./x}\nstages:\n  segment:\n    treshold: 3\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(path) in str(caught.value)
    assert "stages.segment.treshold" in str(caught.value)
    assert "spelling" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name: n\n", "source: required field is missing"),
        ("name: n\nsource: {uri: x}\nschedule: {cron: '61 * * * *'}\n", "schedule.cron"),
        (
            "name: n\nsource: {uri: x}\nstages: {keyframes: {resources: {num_gpus: 1.5}}}\n",
            "stages.keyframes.resources.num_gpus",
        ),
        ("name: 'bad name!'\nsource: {uri: x}\n", "name"),
        (
            "name: n\nsource: {uri: x}\nstages: {segment: {analysis_width: 8}}\n",
            "stages.segment.analysis_width",
        ),
    ],
)
def test_invalid_values_are_refused_with_their_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        load_spec(write(tmp_path, text))


def test_broken_yaml_says_where(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"line 3"):
        load_spec(write(tmp_path, "name: n\nsource:\n\turi: x\n"))


def test_a_missing_spec_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nowhere\.yaml"):
        load_spec(tmp_path / "nowhere.yaml")


def test_pipeline_version_follows_parameters_not_resources() -> None:
    base = default_spec("./footage")
    more_actors = parse_spec(
        {
            "name": "adhoc",
            "source": {"uri": "./footage"},
            "stages": {"segment": {"resources": {"max_actors": 8}}},
        }
    )
    other_width = parse_spec(
        {"name": "adhoc", "source": {"uri": "./footage"}, "stages": {"segment": {"analysis_width": 320}}}
    )
    assert base.pipeline_version() == more_actors.pipeline_version()
    assert base.pipeline_version() != other_width.pipeline_version()


def test_the_example_spec_in_the_repository_loads() -> None:
    spec = load_spec(Path(__file__).parents[2] / "jobs" / "specs" / "nightly.yaml")
    assert spec.name == "nightly" and spec.schedule is not None
