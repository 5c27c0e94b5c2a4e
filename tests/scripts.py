"""Shell scripts that documentation shows: found in their Markdown file, run as written."""

import re
import subprocess
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]


def documented_script(document: str, first_line: str) -> str:
    """The one ```sh block of `document` (a path from the repository's root) whose first line
    is `first_line`, that line included."""
    blocks = re.findall(
        rf"```sh\n({re.escape(first_line)}\n.*?)```", (BASE_DIR / document).read_text(), re.S
    )
    assert len(blocks) == 1, f"{document} has one script starting with {first_line!r}"
    return str(blocks[0])


def run_script(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs the script with bash, stopping at the first failing command."""
    return subprocess.run(  # noqa: S603 - a script of the repository's own documentation
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
