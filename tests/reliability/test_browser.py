"""A real browser (Debian's headless Chromium) on the docs and the admin, offline.

Chromium gets no network beyond loopback: every host name but 127.0.0.1 resolves to nothing, and
the test also checks, from the browser's own network log, that every request it made went to the
live server. Screenshots land in var/browser/ (CI keeps them as artifacts).
Skipped when /usr/bin/chromium or /usr/bin/chromedriver is missing (`apt-get install chromium
chromium-driver`).
"""

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from accounts.models import Organization, Role, User
from accounts.onboarding import user_sync_admin_access
from audit.models import AuditEvent
from document.storage import get_storage
from patient.models import Patient
from tests.factories import TEST_PASSWORD, DocumentFactory, PatientFactory, UserFactory
from tests.reliability.servers import BASE_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = BASE_DIR / "var" / "browser"
WAIT_SECONDS = 30
PDF = b"%PDF-1.7 a lab report"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver packages",
    ),
    pytest.mark.django_db(transaction=True),
]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        # Any name but loopback fails to resolve: nothing can leave the machine.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_SECONDS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        # Chromium takes about a second to shut down, waiting on its own processes: the next
        # test goes on meanwhile (the thread is not a daemon, so the run waits for the last one).
        threading.Thread(target=driver.quit, name="chromium quit").start()


def requested_urls(driver: Any) -> list[str]:
    """Every URL the browser asked for since the last call, from its DevTools network log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def assert_only_loopback(urls: list[str], live_server_url: str) -> None:
    """Every network request (http, https, ws, wss) went to the live server; data:, blob: and
    chrome:// (the browser's own pages) never leave the machine."""
    origin = urlsplit(live_server_url).netloc
    network = [url for url in urls if urlsplit(url).scheme in {"http", "https", "ws", "wss"}]
    assert network, "the browser's network log has no request"
    assert [url for url in network if urlsplit(url).netloc != origin] == []


def test_swagger_ui_renders_every_operation_offline(browser, live_server, api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = sum(
        1
        for path_item in schema["paths"].values()
        for method in path_item
        if method in {"get", "post", "put", "patch", "delete"}
    )

    browser.get(f"{live_server.url}/api/docs/")
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) >= operations
    )
    browser.save_screenshot(str(SCREENSHOTS / "swagger-ui.png"))

    rendered = browser.find_elements(By.CSS_SELECTOR, ".opblock .opblock-summary-path")
    paths = {element.get_attribute("data-path") for element in rendered}
    assert paths == set(schema["paths"])
    assert len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) == operations
    assert not browser.find_elements(By.CSS_SELECTOR, ".errors-wrapper")
    assert_only_loopback(requested_urls(browser), live_server.url)


@pytest.fixture
def clinic_admin(organization: Organization) -> User:
    """A clinic's administrator as create_clinic makes one: staff in the clinic admins' group,
    not a superuser."""
    user = UserFactory.create(username="dana", role=Role.ADMIN, organization=organization)
    user_sync_admin_access(user=user)
    return user


def test_a_clinic_admin_runs_their_clinic_from_the_admin_and_sees_nothing_of_another(
    browser, live_server, clinic_admin: User, other_organization: Organization, settings, tmp_path
):
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    downloads = tmp_path / "downloads"
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    patient: Patient = PatientFactory.create(
        organization=clinic_admin.organization, full_name="Maria Lopez"
    )
    report = DocumentFactory.create(
        patient=patient,
        title="Blood panel",
        filename="blood.pdf",
        size_bytes=len(PDF),
        uploaded=True,
    )
    get_storage().write(  # type: ignore[attr-defined]
        report.object_name, [PDF], content_type="application/pdf", max_bytes=len(PDF)
    )
    foreign: Patient = PatientFactory.create(
        organization=other_organization, full_name="Other Clinic Patient"
    )
    UserFactory.create(username="other-clinic-user", organization=other_organization)

    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(clinic_admin.username)
    browser.find_element(By.NAME, "password").send_keys(TEST_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.ID, "user-tools"))
    )
    browser.save_screenshot(str(SCREENSHOTS / "admin-index.png"))

    # The clinic's patient list shows its own patient and not the other clinic's.
    browser.get(f"{live_server.url}/admin/patient/patient/")
    listed = browser.find_element(By.ID, "result_list").text
    assert "Maria Lopez" in listed
    assert "Other Clinic Patient" not in listed
    browser.save_screenshot(str(SCREENSHOTS / "admin-patients.png"))

    browser.find_element(By.LINK_TEXT, patient.mrn).click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.ID, "patient_form"))
    )
    assert browser.find_element(By.NAME, "full_name").get_attribute("value") == "Maria Lopez"
    # The MRN is fixed once assigned: shown, not editable.
    assert browser.find_element(By.CSS_SELECTOR, ".field-mrn .readonly").text == patient.mrn
    # The patient's documents are listed read-only, and one downloads through a signed URL.
    documents = browser.find_element(By.ID, "documents-group").text
    assert "Blood panel" in documents
    browser.save_screenshot(str(SCREENSHOTS / "admin-patient.png"))
    browser.find_element(By.LINK_TEXT, "Download").click()
    WebDriverWait(browser, WAIT_SECONDS).until(lambda _: (downloads / "blood.pdf").exists())
    assert (downloads / "blood.pdf").read_bytes() == PDF

    # Another clinic's patient does not open, even by its URL; its users are not listed.
    browser.get(f"{live_server.url}/admin/patient/patient/{foreign.pk}/change/")
    assert "Other Clinic Patient" not in browser.page_source
    assert browser.find_elements(By.NAME, "full_name") == []
    browser.get(f"{live_server.url}/admin/patient/patient/?q=Other")
    assert "Other Clinic Patient" not in browser.page_source
    browser.get(f"{live_server.url}/admin/accounts/user/")
    assert "dana" in browser.find_element(By.ID, "result_list").text
    assert "other-clinic-user" not in browser.page_source
    assert "Southside" not in browser.page_source
    browser.save_screenshot(str(SCREENSHOTS / "admin-users.png"))
    assert_only_loopback(requested_urls(browser), live_server.url)

    # Each read is on record, marked as coming through the admin.
    events = AuditEvent.objects.filter(actor=clinic_admin, source="admin")
    assert set(events.values_list("action", flat=True)) == {
        "patient.list",
        "patient.retrieve",
        "patient.search",
        "document.download_url",
    }
    assert events.get(action="patient.retrieve", status_code=200).patient_ids == [patient.pk]
    assert events.get(action="patient.retrieve", status_code=404).resource_id == str(foreign.pk)
    assert events.get(action="document.download_url").resource_id == str(report.pk)
