"""A whole audit over a run with planted truth: findings land in `audits`, the report says them plainly,
and `archivist audit` runs it from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_helpers import catalog_of, face_clip, face_rows, remaster, rewrite_master, skewed, swapper
from typer.testing import CliRunner

from actors.faces import FaceAnalyzer
from catalog.iceberg import open_catalog, read
from catalog.settings import Settings
from jobs.audit.config import AuditConfig, BiasConfig, IdentityConfig, load_config
from jobs.audit.report import NOTICE, render
from jobs.audit.run import audit_run
from jobs.cli import app

FAST = {"bias": {"quality_parity": False, "attributes": ["perceived_gender"]}}


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(device="cpu", threads=1)


@pytest.fixture(scope="module")
def audited_run(tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer) -> tuple[dict, Settings]:
    """Run 'run-1': two remastered clips, one master then face-swapped in place; a catalog of 80 % 'male'."""
    tmp_path = tmp_path_factory.mktemp("audited")
    settings = Settings(home=str(tmp_path / "archive"), catalog_url=None)
    honest_source, _ = face_clip(tmp_path / "a", frames=6)
    swapped_source, boxes = face_clip(tmp_path / "b", frames=7)
    out = settings.location("masters")
    rows = remaster(honest_source, Path(out)) + remaster(swapped_source, Path(out))
    master = next(r for r in rows[2:] if r["kind"] == "master")
    rewrite_master(master["output_uri"], master["output_uri"] + ".tmp.mkv", swapper(boxes, scale=2))
    Path(master["output_uri"] + ".tmp.mkv").replace(master["output_uri"])
    faces = face_rows({"perceived_gender": skewed(200, 0.8)}, shots=100, run_id="run-1")
    catalog_of(settings, "run-1", rows, faces, keyframes={rows[0]["asset_id"]: [2], master["asset_id"]: [3]})
    config = AuditConfig.model_validate({**FAST, "identity": {"kinds": ["master", "access"]}})
    return audit_run(settings, "run-1", config, analyzer=analyzer), settings


def test_planted_truth_is_found_and_nothing_else(audited_run: tuple[dict, Settings]) -> None:
    summary, settings = audited_run
    audits = summary["audits"]
    assert audits["identity_drift"] == {"checked": 4, "flagged": 1}
    assert audits["manipulation"]["flagged"] == 1
    assert audits["provenance"] == {"checked": 4, "flagged": 1}
    flagged = {
        (f["audit"], f["subject"].rsplit("/", 2)[-1] if f["subject"] else None) for f in summary["flagged"]
    }
    assert ("identity_drift", "master.mkv") in flagged and ("provenance", "master.mkv") in flagged
    assert {f["subject"] for f in summary["flagged"] if f["audit"] == "bias"} == {
        "perceived_gender=male",
        "perceived_gender=female",
    }
    assert summary["seconds"]["total"] > 0

    rows = [
        r for r in read(open_catalog(settings), "audits").to_pylist() if r["audit_id"] == summary["audit_id"]
    ]
    assert {r["run_id"] for r in rows} == {"run-1"} and len(rows) == sum(
        a["checked"] for a in audits.values()
    )
    drift = [r for r in rows if r["audit"] == "identity_drift" and r["flagged"]]
    assert len(drift) == 1 and Path(drift[0]["evidence_uri"]).stat().st_size > 1000
    assert json.loads(drift[0]["detail"])["kind"] == "master"


def test_report_reads_as_findings(audited_run: tuple[dict, Settings]) -> None:
    summary, _ = audited_run
    html = Path(summary["report"]).read_text()
    assert summary["report"].endswith("reports/run-1/audit.html")
    for text in (
        "Identity drift",
        "Manipulation signals",
        "Provenance",
        "Representation in the catalog",
        NOTICE,
        "data:image/jpeg;base64,",
        "the person may have been replaced",
        "makes up 80% of the catalog",
        "ROC AUC",
    ):
        assert text in html, text
    for private in ('perceived_age"', "skin_ita", "perceived_gender_score", 'identity":'):
        assert private not in html


def test_a_second_audit_appends(audited_run: tuple[dict, Settings], analyzer: FaceAnalyzer) -> None:
    first, settings = audited_run
    second = audit_run(settings, "run-1", AuditConfig.model_validate(FAST), analyzer=analyzer)
    ids = {r["audit_id"] for r in read(open_catalog(settings), "audits").to_pylist()}
    assert {first["audit_id"], second["audit_id"]} <= ids and first["audit_id"] != second["audit_id"]


def test_empty_audit_says_nothing_was_flagged() -> None:
    html = render(
        {
            "run_id": "r",
            "audit_id": "a",
            "config": AuditConfig().model_dump(mode="json"),
            "summary": {"audits": {}, "flagged": [], "seconds": {"total": 0.1}},
            "rows": [],
            "evidence": {},
        }
    )
    assert "Nothing was flagged" in html and "wrote no remastered outputs" in html


def test_cli_audits_a_run_and_refuses_an_unknown_one(settings: Settings, tmp_path: Path) -> None:
    source, _ = face_clip(tmp_path / "c", frames=3)
    catalog_of(
        settings, "run-2", remaster(source, Path(settings.location("masters")), restore="off", upscale=1)
    )
    config = tmp_path / "audit.yaml"
    config.write_text(
        "audit:\n  identity: {enabled: false}\n  manipulation: {enabled: false}\n"
        "  bias: {quality_parity: false}\n"
    )
    runner = CliRunner()
    done = runner.invoke(app, ["audit", "run-2", "--json", "--config", str(config)])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert summary["audits"]["provenance"] == {"checked": 2, "flagged": 0}
    assert Path(summary["report"]).is_file()
    missing = runner.invoke(app, ["audit", "no-such-run"])
    assert missing.exit_code == 2 and "no run 'no-such-run'" in missing.output
    (tmp_path / "bad.yaml").write_text("bias: {disparity_threshold: 3}\n")
    bad = runner.invoke(app, ["audit", "run-2", "--config", str(tmp_path / "bad.yaml")])
    assert bad.exit_code == 2 and "disparity_threshold" in bad.output


def test_config_defaults_and_sections(tmp_path: Path) -> None:
    assert load_config(None) == AuditConfig()
    assert AuditConfig().identity == IdentityConfig() and AuditConfig().bias == BiasConfig()
    (tmp_path / "top.yaml").write_text("identity: {frames_per_output: 2}\n")
    assert load_config(tmp_path / "top.yaml").identity.frames_per_output == 2
