"""The admin and the API docs work under their Content-Security-Policy, in headless Chromium:
the pages render, and the browser's console reports no violation of the policy.

Uses the browser of test_browser.py (same offline Chromium, skipped where it is missing).
"""

from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from tests.factories import TEST_PASSWORD, PatientFactory, UserFactory
from tests.reliability import test_browser
from tests.reliability.test_browser import (
    SCREENSHOTS,
    WAIT_SECONDS,
    assert_only_loopback,
    requested_urls,
)

browser = test_browser.browser  # the fixture, shared

pytestmark = test_browser.pytestmark  # Chromium present; a live server's database

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

# ReDoc's sidebar always shows Redocly's logo from their CDN; the policy keeps it out.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def policy_violations(driver: Any) -> list[str]:
    """Console messages since the last call in which Chromium reports a refused resource."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]


def inline_scripts_run(driver: Any) -> bool:
    """Whether the page runs a script added inline: the policy in force says it must not."""
    return bool(
        driver.execute_script(
            "const probe = document.createElement('script');"
            "probe.textContent = 'window.inlineScriptRan = true;';"
            "document.head.appendChild(probe);"
            "return window.inlineScriptRan === true;"
        )
    )


def screenshot(driver: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(Path(SCREENSHOTS) / f"csp-{name}.png"))


def wait_for(driver: Any, css: str, at_least: int = 1) -> list[Any]:
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, css)) >= at_least
    )
    return list(driver.find_elements(By.CSS_SELECTOR, css))


def test_swagger_ui_renders_its_operations_under_the_policy(browser, live_server):
    browser.get(f"{live_server.url}/api/docs/")

    operations = wait_for(browser, ".opblock", at_least=20)
    operations[0].find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_for(browser, ".opblock.is-open .opblock-body")
    screenshot(browser, "swagger-ui")

    assert not browser.find_elements(By.CSS_SELECTOR, ".errors-wrapper")
    assert policy_violations(browser) == []
    assert not inline_scripts_run(browser)
    assert_only_loopback(requested_urls(browser), live_server.url)


def test_redoc_renders_and_searches_under_the_policy(browser, live_server):
    browser.get(f"{live_server.url}/api/redoc/")

    wait_for(browser, "[data-section-id*='operation/']", at_least=20)
    search = browser.find_element(By.CSS_SELECTOR, "input[placeholder='Search...']")
    search.send_keys("List patients")
    # Search runs in ReDoc's blob: worker: results prove the worker is allowed.
    found = wait_for(browser, "[data-role='search:results'] li")
    screenshot(browser, "redoc")

    assert "List patients" in "\n".join(item.text for item in found)
    violations = policy_violations(browser)
    assert len(violations) == 1
    assert REDOCLY_LOGO in violations[0]
    assert not inline_scripts_run(browser)
    assert_only_loopback(
        [url for url in requested_urls(browser) if url != REDOCLY_LOGO], live_server.url
    )


@pytest.fixture
def operator(db: None) -> User:
    return UserFactory.create(username="olga", organization=None, is_staff=True, is_superuser=True)


def test_the_admin_signs_in_and_edits_under_the_policy(browser, live_server, operator):
    patient = PatientFactory.create(full_name="Maria Lopez")

    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    wait_for(browser, "#login-form")
    assert policy_violations(browser) == []
    browser.find_element(By.NAME, "username").send_keys(operator.username)
    browser.find_element(By.NAME, "password").send_keys(TEST_PASSWORD, Keys.ENTER)
    WebDriverWait(browser, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.ID, "user-tools"))
    )
    browser.get(f"{live_server.url}/admin/patient/patient/")
    assert "Maria Lopez" in wait_for(browser, "#result_list")[0].text
    browser.get(f"{live_server.url}/admin/patient/patient/{patient.pk}/change/")
    wait_for(browser, "#patient_form")
    # The date widget is the admin's own script: its calendar link appears only if it ran.
    wait_for(browser, ".datetimeshortcuts")
    screenshot(browser, "admin-patient")

    assert policy_violations(browser) == []
    assert not inline_scripts_run(browser)
    assert_only_loopback(requested_urls(browser), live_server.url)


def test_swagger_ui_keeps_the_bearer_token_across_a_reload(browser, live_server):
    browser.get(f"{live_server.url}/api/docs/")
    wait_for(browser, ".opblock", at_least=20)
    browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .btn.authorize").click()
    wait_for(browser, ".dialog-ux input")[0].send_keys("token-typed-by-a-tester")
    browser.find_element(By.CSS_SELECTOR, ".dialog-ux .btn.modal-btn.auth.authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".dialog-ux .btn-done").click()

    browser.refresh()
    wait_for(browser, ".opblock", at_least=20)

    # persistAuthorization: Swagger UI keeps the token in local storage and applies it again.
    assert wait_for(browser, ".auth-wrapper .btn.authorize.locked")
    stored = browser.execute_script("return window.localStorage.getItem('authorized');")
    assert "token-typed-by-a-tester" in stored
    assert policy_violations(browser) == []
