"""schemathesis, the real tool, against the live API over HTTP with an admin token.

It reads /api/v1/openapi.json, generates requests for every operation (documented examples,
boundary values, random data) and checks that no answer is a server error and every answer
matches the documented schema and status codes.
"""

import subprocess
import sys
import threading
from pathlib import Path

from werkzeug.serving import make_server

from tests.conftest import ROOT

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def test_the_api_holds_to_its_openapi_document(fresh_app, tmp_path: Path):
    token = fresh_app.extensions["test_tokens"]["admin"]
    server = make_server("127.0.0.1", 0, fresh_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/v1/openapi.json"
    try:
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "run",
                url,
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                CHECKS,
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "15",
                "--workers",
                "1",
                "--seed",
                "20261126",
                "--generation-database",
                "none",
                "--request-timeout",
                "30",
                "--no-color",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        server.shutdown()
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
