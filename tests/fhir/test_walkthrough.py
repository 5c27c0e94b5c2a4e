"""The FHIR walk-through of docs/fhir.md runs as written against a live server with the demo
clinic."""

import shutil
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from patient.models import Patient
from tests.scripts import documented_script, run_script

WALKTHROUGH = "# FHIR R4 (runs as written against `make run`; needs curl and python3)"


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
        documented_script(
            "docs/fhir.md", "# FHIR R4 (runs as written against `make run`; needs curl and python3)"
        )
        .replace("http://127.0.0.1:8000", live_server.url, 1)
        .replace("Patient/1", f"Patient/{first}")
    )

    result = run_script(script, tmp_path)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"resourceType":"CapabilityStatement"' in out
    assert '"system":"urn:pms:demo-clinic:mrn","value":"DEMO-0001"' in out
    assert 'ETag: W/"1"' in out
    assert '"requiresAccessToken":true' in out
    assert out.count('"resourceType":"Bundle"') == 3
    assert '{"resourceType":"Patient"' in out.splitlines()[-2]  # the first NDJSON line
    assert out.endswith('"diagnostics":"Export cancelled."}]}\n')
