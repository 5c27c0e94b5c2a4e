"""Security headers: which proxy headers are believed, and the pages' Content-Security-Policy."""

import os
import re
import subprocess
import sys

import pytest

from pms.middleware import CONTENT_SECURITY_POLICY
from tests.reliability.servers import BASE_DIR


def _proxy_ssl_header(num_proxies: str) -> str:
    """SECURE_PROXY_SSL_HEADER as the production settings compute it for this NUM_PROXIES."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "header-tests-" + "k" * 48,
        "NUM_PROXIES": num_proxies,
    }
    script = "import pms.settings.base as s; print(getattr(s, 'SECURE_PROXY_SSL_HEADER', None))"
    result = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, check=True
    )
    return result.stdout.decode().strip()


@pytest.mark.parametrize(
    ("num_proxies", "header"),
    [
        ("0", "None"),
        ("1", "('HTTP_X_FORWARDED_PROTO', 'https')"),
        ("2", "('HTTP_X_FORWARDED_PROTO', 'https')"),
    ],
)
def test_x_forwarded_proto_is_believed_only_behind_a_proxy(num_proxies, header):
    assert _proxy_ssl_header(num_proxies) == header


@pytest.mark.parametrize("path", ["/admin/login/", "/api/docs/", "/api/redoc/"])
def test_the_browser_pages_send_the_policy_and_carry_no_inline_script(client, db, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    html = response.content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "fonts.googleapis.com" not in html


def test_swagger_uis_init_script_is_a_file_of_the_page(client, db):
    response = client.get("/api/docs/", {"script": ""})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in response.content
