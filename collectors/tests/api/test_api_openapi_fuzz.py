"""schemathesis against the published OpenAPI of the real server (uvicorn + PostgreSQL).

Every operation gets up to 15 generated requests that fit the schema and 5 that do not, sent with an
admin's token so authorised paths are reached. Checked: no 5xx, status codes, content
types, headers and bodies as documented.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from marketdash_testing.api_server import PASSWORD, cli_env, run_cli, served_api

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]

EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 5}


@pytest.fixture
def live_api(migrated_db: str) -> Iterator[tuple[str, dict[str, str]]]:
    env = cli_env(
        migrated_db,
        jwt_secret="fuzz-" + "k" * 40,
        rate_limit_user_per_minute="1000000",
        rate_limit_ip_per_minute="1000000",
        rate_limit_login_per_minute="1000000",
        log_level="WARNING",
    )
    created = run_cli(
        "ensure-user", "fuzz-admin", "--role", "admin", "--password-stdin", env=env, stdin=PASSWORD
    )
    assert created.returncode == 0, created.stderr
    with served_api(env) as served:
        base_url = served.base_url
        token = httpx.post(
            f"{base_url}/api/auth/token", json={"username": "fuzz-admin", "password": PASSWORD}
        ).json()["access_token"]
        yield base_url, {"Authorization": f"Bearer {token}"}


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_published_api_has_no_server_error_and_keeps_to_its_schema(live_api):
    base_url, headers = live_api
    # schemathesis' pytest plugin (from_fixture) does not run on pytest 9: its Python API instead.
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    session = requests.Session()  # keep-alive: the run is then bound by generation, not TCP set-ups
    for operation in operations:
        has_input = bool(operation.path_parameters or operation.query or operation.body)
        for mode, examples in EXAMPLES_PER_OPERATION.items():
            if mode is GenerationMode.NEGATIVE and not has_input:
                continue  # nothing to make invalid: Hypothesis would find no example at all

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: schemathesis.Case) -> None:
                case.call_and_validate(session=session, headers=headers, checks=CHECKS)

            exercise()
