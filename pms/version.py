"""The product's version: `[project] version` in pyproject.toml, the one place it is written.

Shown in the OpenAPI schema and by /healthz; CHANGELOG.md says what each version changed.
"""

import tomllib
from pathlib import Path

_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

with _PYPROJECT.open("rb") as _file:
    VERSION: str = tomllib.load(_file)["project"]["version"]
