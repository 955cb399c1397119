"""What an audit checks and how strictly: a job spec's ``audit`` section, or ``archivist audit --config``.

Every threshold has a default that the calibration or training behind it
justifies (see the module each belongs to); a deployment changes them here,
never in code. The signing key for content credentials is the exception:
it is a secret of the deployment, so it comes from ``ARCHIVIST_C2PA_*``
environment variables rather than from a spec that may sit in a repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.audit.identity import DRIFT_THRESHOLD, MIN_IOU

Attribute = Literal["perceived_gender", "perceived_age_band", "skin_tone_group"]
ATTRIBUTES: tuple[Attribute, ...] = get_args(Attribute)
"""The perceived attributes the faces table carries, all audited only in aggregate."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentityConfig(_Section):
    enabled: bool = True
    threshold: float = Field(
        DRIFT_THRESHOLD, gt=0, description="identity distance above which a face drifted"
    )
    frames_per_output: int = Field(4, ge=1, le=100, description="frames compared per output file")
    kinds: list[Literal["master", "access"]] = Field(["master"])  # pydantic copies a mutable default
    min_iou: float = Field(MIN_IOU, gt=0, le=1)


class ManipulationConfig(_Section):
    enabled: bool = True
    weights: str | None = Field(None, description="a detector JSON; default the committed one")
    threshold: float | None = Field(
        None, gt=0, lt=1, description="score threshold; default the detector's own"
    )


class C2paConfig(BaseSettings):
    """Content-credential signing: a PEM certificate chain (signer first) and its private key."""

    model_config = SettingsConfigDict(env_prefix="ARCHIVIST_C2PA_", extra="forbid")

    cert_chain: str | None = Field(None, description="path or URI of the PEM chain, signer first")
    private_key: str | None = Field(None, description="path or URI of the signer's PEM private key")
    algorithm: Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"] = "es256"
    seal: bool = Field(True, description="sign outputs that verify and carry no credentials yet")

    @property
    def configured(self) -> bool:
        return bool(self.cert_chain and self.private_key)


class ProvenanceConfig(_Section):
    enabled: bool = True
    c2pa: C2paConfig = Field(default_factory=C2paConfig)


class BiasConfig(_Section):
    enabled: bool = True
    attributes: list[Attribute] = Field(default_factory=lambda: list(ATTRIBUTES))
    reference: dict[str, Literal["uniform"] | dict[str, float]] = Field(
        {"perceived_gender": "uniform"},
        description="per attribute, the distribution the catalog's faces are held against; "
        "attributes without one are reported, not flagged",
    )
    disparity_threshold: float = Field(0.10, gt=0, lt=1, description="share points a gap must clear")
    confidence: float = Field(0.95, gt=0.5, lt=1)
    bootstrap: int = Field(400, ge=50, le=20_000, description="bootstrap resamples per interval")
    unit: Literal["face", "shot", "asset"] = Field(
        "shot", description="what the bootstrap resamples: faces of one shot are one person seen once"
    )
    min_faces: int = Field(20, ge=1, description="fewer faces than this: nothing is assessed")
    queries: list[str] = Field(default_factory=list, description="shot ids to search by example")
    sample_queries: int = Field(
        30, ge=0, description="without queries: this many shots drawn at random (and users with events)"
    )
    top_k: int = Field(10, ge=1, le=1000)
    max_gini: float = Field(0.6, gt=0, le=1, description="exposure concentration across assets to flag")
    quality_parity: bool = Field(True, description="measure detection/tagging rates on the labelled set")
    seed: int = 0

    @field_validator("reference")
    @classmethod
    def _shares(cls, value: dict[str, str | dict[str, float]]) -> dict[str, str | dict[str, float]]:
        for attribute, target in value.items():
            if attribute not in ATTRIBUTES:
                raise ValueError(f"unknown attribute {attribute!r}; one of {', '.join(ATTRIBUTES)}")
            shares = target.values() if isinstance(target, dict) else [1.0]
            if any(share < 0 for share in shares) or abs(sum(shares) - 1.0) > 0.01:
                raise ValueError(f"the reference shares of {attribute} must be non-negative and sum to 1")
        return value


class AuditConfig(_Section):
    identity: IdentityConfig = IdentityConfig()
    manipulation: ManipulationConfig = ManipulationConfig()
    provenance: ProvenanceConfig = Field(default_factory=ProvenanceConfig)
    bias: BiasConfig = BiasConfig()
    report: bool = Field(True, description="render the HTML report")


def load_config(path: str | Path | None) -> AuditConfig:
    """The config in a YAML file (its top level, or its ``audit`` section), or the defaults."""
    from jobs.spec import SpecError  # here: jobs.spec may hold an AuditConfig section itself

    if path is None:
        return AuditConfig()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read the audit config ({exc})") from exc
    data = data.get("audit", data) if isinstance(data, dict) else data
    try:
        return AuditConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SpecError("\n".join(lines)) from None
