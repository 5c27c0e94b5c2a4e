"""The README's sign-in and upload script runs as written against a live server with the demo
clinic, so the README stays true."""

import re
import shutil
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_script() -> str:
    blocks = re.findall(r"```sh\n(API=http://127\.0\.0\.1:8000\n.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "the README has one script that starts with API=..."
    return str(blocks[0])


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.django_db(transaction=True)
def test_the_readme_script_signs_in_uploads_and_downloads(
    live_server: Any, settings: Any, tmp_path: Path
) -> None:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", "--force", stdout=StringIO())
    script = readme_script().replace("http://127.0.0.1:8000", live_server.url, 1)

    result = subprocess.run(  # noqa: S603 - a fixed script from the README
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert '"is_uploaded":true' in result.stdout
    assert result.stdout.endswith("Blood panel: all values in range.\n")
