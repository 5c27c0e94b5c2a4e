"""The README's sign-in and upload script runs as written against a live server with the demo
clinic, so the README stays true."""

import shutil
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.scripts import documented_script, run_script


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.django_db(transaction=True)
def test_the_readme_scripts_sign_in_upload_download_and_read_fhir(
    live_server: Any, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", "--force", stdout=StringIO())
    upload = documented_script("README.md", "API=http://127.0.0.1:8000").replace(
        "http://127.0.0.1:8000", live_server.url, 1
    )
    fhir = documented_script("README.md", "# FHIR R4, after the script above")

    result = run_script(upload + "echo\n" + fhir, tmp_path)

    assert result.returncode == 0, result.stderr
    out, fhir_out = result.stdout.split("Blood panel: all values in range.\n\n")
    assert '"is_uploaded":true' in out
    version, total, attachment, location = fhir_out.splitlines()
    assert version == "4.0.1"
    assert int(total) >= 1  # the demo clinic's Garcias
    assert "'contentType': 'text/plain'" in attachment
    assert "'url': '" + live_server.url + "/fhir/R4/DocumentReference/" in attachment
    assert location.lower().startswith("content-location: " + live_server.url + "/fhir/r4/")
