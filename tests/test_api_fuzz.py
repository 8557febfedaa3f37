"""Hostile input against the whole HTTP API: schemathesis generates requests for every operation
of the running service's OpenAPI spec, both well-formed ones (positive) and ones that break the
spec (negative: wrong types, missing fields, garbage bodies), anonymously and as an admin.

Every answer must be a deliberate one: never a 5xx (the service turns every bad input into a 4xx
naming what was wrong). The service is the real ``misto-cloud serve`` on a real Mosquitto; new
endpoints are covered as soon as they appear in the spec.

Examples per operation: ``MISTO_FUZZ_EXAMPLES`` (default 15; CI keeps the default, a longer
local run is ``MISTO_FUZZ_EXAMPLES=500 scripts/test tests/test_api_fuzz.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.fixtures.chain import start_cloud
from tests.fixtures.mosquitto import BrokerInfo

EXAMPLES = int(os.environ.get("MISTO_FUZZ_EXAMPLES", "15"))
#: Operations that would stop or disturb the service under test rather than answer a request.
SKIP: frozenset[str] = frozenset()


def _fuzz(base_url: str, headers: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI spec is invalid: {result.err()}"
        operations.append(result.ok())
    labels = [operation.label for operation in operations]
    assert len(labels) >= 10, f"the spec lists too few operations to be the whole API: {labels}"
    strategies = [
        (mode, operation.as_strategy(generation_mode=mode))
        for operation in operations
        if operation.label not in SKIP
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    with httpx.Client(timeout=10) as client:
        for mode, strategy in strategies:
            _run(client, base_url, headers, mode, strategy)
    return labels


def _run(client: httpx.Client, base_url: str, headers: dict[str, str], mode: GenerationMode, strategy: Any) -> None:

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def answer_deliberately(case: Case[Any]) -> None:
        try:
            response = _send(client, case.as_transport_kwargs(base_url=base_url, headers=headers))
        except httpx.LocalProtocolError:
            reject()  # not a request HTTP can carry (e.g. a header value ending in a space)
        case.validate_response(response, checks=[not_a_server_error])

    try:
        answer_deliberately()
    except Unsatisfiable:
        # an operation without parameters or body has no request that breaks its spec
        if mode is not GenerationMode.NEGATIVE:
            raise


def _send(client: httpx.Client, kwargs: dict[str, Any]) -> httpx.Response:
    """Send what schemathesis built for ``requests`` with httpx (the project's HTTP client)."""
    data = kwargs.pop("data", None)
    if data is not None:
        kwargs["content" if isinstance(data, bytes | str) else "data"] = data
    kwargs.pop("allow_redirects", None)
    kwargs.pop("cookies", None)  # the API reads no cookies
    return client.request(**kwargs)


@pytest.mark.parametrize("caller", ["anonymous", "admin"])
def test_no_request_makes_the_api_fail(tmp_path: Path, mosquitto: BrokerInfo, caller: str) -> None:
    cloud = start_cloud(tmp_path, mosquitto)
    try:
        headers = {"Authorization": f"Bearer {cloud.operator_token}"} if caller == "admin" else {}
        labels = _fuzz(cloud.api, headers)
    finally:
        cloud.process.stop()
    assert "GET /health" in labels
