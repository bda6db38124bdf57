"""A property-based fuzz run of the live service over its own /openapi.json (Schemathesis).

Schemathesis generates requests for every operation from the document and
checks each response: never a 5xx, a documented status, content type and
headers, and a body that matches its schema. The run is sized for CI (a few
examples per operation, a fixed seed) and bounded in time. The event feed is
left out: its response is a stream that never ends by itself (its own tests
are in test_client.py).
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.http.conftest import Clients, Server

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)


@pytest.mark.slow
def test_the_service_keeps_its_openapi_document(
    server: Server, clients: Clients, tmp_path: Path
) -> None:
    """Generated requests to every operation get no 5xx and responses that match the schema."""
    token = server.token("fuzz", clients.add("fuzz", "*"))
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server.url}/openapi.json",
        "--url",
        server.url,
        "--checks",
        CHECKS,
        "--max-examples",
        "15",
        "--seed",
        "16",
        "--exclude-path",
        "/events",
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    result = subprocess.run(  # noqa: S603  (our own interpreter and an installed tool)
        command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path
    )
    assert 0 == result.returncode, result.stdout[-6000:] + result.stderr[-2000:]
