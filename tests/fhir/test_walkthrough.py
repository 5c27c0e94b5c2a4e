"""The FHIR walk-through of docs/fhir.md runs as written against a live server with the demo
clinic."""

import re
import shutil
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from patient.models import Patient

FHIR_DOC = Path(__file__).resolve().parents[2] / "docs" / "fhir.md"


def fhir_script() -> str:
    blocks = re.findall(r"```sh\n# FHIR R4[^\n]*\n(.*?)```", FHIR_DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/fhir.md has one FHIR script"
    return str(blocks[0])


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.django_db(transaction=True)
def test_the_readme_fhir_script_reads_searches_and_exports(
    live_server: Any, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", "--force", stdout=StringIO())
    # Patient 1 of a fresh `make run` is DEMO-0001; here the ids depend on earlier tests.
    first = Patient.objects.get(mrn="DEMO-0001").pk
    script = (
        fhir_script()
        .replace("http://127.0.0.1:8000", live_server.url, 1)
        .replace("Patient/1", f"Patient/{first}")
    )

    result = subprocess.run(  # noqa: S603 - a fixed script from the README
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"resourceType":"CapabilityStatement"' in out
    assert '"system":"urn:pms:demo-clinic:mrn","value":"DEMO-0001"' in out
    assert 'ETag: W/"1"' in out
    assert '"requiresAccessToken":true' in out
    assert out.count('"resourceType":"Bundle"') == 3
    assert '{"resourceType":"Patient"' in out.splitlines()[-2]  # the first NDJSON line
    assert out.endswith('"diagnostics":"Export cancelled."}]}\n')
