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
def test_the_readme_script_signs_in_uploads_and_downloads(
    live_server: Any, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", "--force", stdout=StringIO())
    script = documented_script("README.md", "API=http://127.0.0.1:8000").replace(
        "http://127.0.0.1:8000", live_server.url, 1
    )

    result = run_script(script, tmp_path)

    assert result.returncode == 0, result.stderr
    assert '"is_uploaded":true' in result.stdout
    assert result.stdout.endswith("Blood panel: all values in range.\n")
