"""The API keeps its own OpenAPI contract: schemathesis generates requests from the document
the service publishes (every check on: status codes, content types, response schemas,
headers, auth) and every answer must match it."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from catalog_helpers import SAMPLE, FakeText, fake_image, write_catalog
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from catalog.settings import Settings
from indexes.query import QueryEngine
from serve.app import create_app

pytestmark = pytest.mark.slow

TOKEN = "contract-token"
EXAMPLES = 30  # per operation: bounded, so the test takes seconds
KNOWN_GAPS = {
    # "exactly one of shot_id or user" is a rule between two query parameters, which OpenAPI
    # cannot state: a request with neither is schema-valid and refused with a 400.
    "GET /recommend": [positive_data_acceptance],
    # Any bytes are a schema-valid picture; bytes that do not decode are refused (415), and
    # schemathesis sends a file part without a file name, which FastAPI takes for a field.
    "POST /search": [positive_data_acceptance],
}


def _app(root: Path):
    config = Settings(home=str(root / "home"), catalog_url=None, api_token=TOKEN)
    write_catalog(config, SAMPLE, access_copies=["reel-c"])
    engine = QueryEngine(config, encode_text=FakeText(), embed_image=fake_image("car"))
    return create_app(config, engine=engine)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):
    app = _app(tmp_path_factory.mktemp("contract"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_keeps_the_contract(api_schema) -> None:
    failures: dict[str, str] = {}
    cases = 0
    for found in api_schema.get_all_operations():
        operation = found.ok()

        @given(operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def keeps_it(case) -> None:
            nonlocal cases
            cases += 1
            skip = KNOWN_GAPS.get(f"{case.method.upper()} {case.path}", [])
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=skip)

        try:
            keeps_it()
        except BaseException as exc:  # schemathesis raises a group; every operation is tried
            if not isinstance(exc, (AssertionError, BaseExceptionGroup)):
                raise
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:1500]
    print(f"schemathesis: {cases} generated requests over the API's operations")
    assert not failures, "\n\n".join(f"{name}: {text}" for name, text in failures.items())
